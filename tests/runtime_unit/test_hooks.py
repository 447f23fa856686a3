"""Hook runner: state on stdin, env, failures and timeouts (config.md "POSIX-platform Hooks")."""

from __future__ import annotations

import json

import pytest

from ketch.runtime.linux.hooks import HookError, hook_state, run_hooks

DOC = {"ociVersion": "1.0.2", "id": "c1", "bundle": "/b", "annotations": {"a": "b"}}


def _spec(*hooks: dict, kind: str = "createRuntime") -> dict:
    return {"hooks": {kind: list(hooks)}}


def test_state_on_stdin_and_env(tmp_path):
    out, env = tmp_path / "out", tmp_path / "env"
    spec = _spec({"path": "/bin/sh", "args": ["sh", "-c", f'cat > {out}; echo "$X" > {env}'],
                  "env": ["X=from-env"]})
    run_hooks(spec, "createRuntime", hook_state(DOC, "creating", 42))
    env_line = env.read_text().strip()
    assert json.loads(out.read_text()) == {"ociVersion": "1.0.2", "id": "c1", "status": "creating",
                                      "pid": 42, "bundle": "/b", "annotations": {"a": "b"}}
    assert env_line == "from-env"


def test_zero_pid_is_omitted():
    assert "pid" not in hook_state(DOC, "stopped", 0)


def test_hooks_run_in_order_and_stop_at_first_failure(tmp_path):
    log = tmp_path / "log"
    spec = _spec({"path": "/bin/sh", "args": ["sh", "-c", f"echo 1 >> {log}"]},
                 {"path": "/bin/sh", "args": ["sh", "-c", "echo bad >&2; exit 2"]},
                 {"path": "/bin/sh", "args": ["sh", "-c", f"echo 3 >> {log}"]})
    with pytest.raises(HookError, match=r"createRuntime hook /bin/sh: exit status 2.*bad"):
        run_hooks(spec, "createRuntime", hook_state(DOC, "creating", 1))
    assert log.read_text() == "1\n"


def test_timeout_uses_runc_wording():
    spec = _spec({"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}, kind="poststart")
    with pytest.raises(HookError, match=r"hook ran past specified timeout of 1\.0s"):
        run_hooks(spec, "poststart", hook_state(DOC, "running", 1))


def test_missing_hook_binary():
    with pytest.raises(HookError, match="/nonexistent"):
        run_hooks(_spec({"path": "/nonexistent"}), "createRuntime", hook_state(DOC, "creating", 1))


def test_no_hooks_is_a_no_op():
    run_hooks({}, "poststop", hook_state(DOC, "stopped", 0))

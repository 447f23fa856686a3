"""Run POSIX-platform hooks (runtime-spec config.md "POSIX-platform Hooks").

Each hook is ``{"path", "args"?, "env"?, "timeout"?}``; it gets the container's
state JSON on stdin (runtime.md "State"). A hook that exits non-zero or runs
past ``timeout`` seconds is an error, with runc's wording. Which namespace a
hook runs in is the caller's business: ``prestart``/``createRuntime``/
``poststart``/``poststop`` run from the runtime, ``createContainer`` and
``startContainer`` from the container's init.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from ketch.runtime.errors import KetchError

# runtime.md "Lifecycle": hooks in the order they run
KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


class HookError(KetchError):
    """A hook failed; the message names the hook kind and path."""


def hook_state(doc: dict, status: str, pid: int) -> dict:
    """The state object written to a hook's stdin."""
    state: dict = {"ociVersion": doc.get("ociVersion", ""), "id": doc["id"], "status": status}
    if pid:  # runc omits a zero pid
        state["pid"] = pid
    state["bundle"] = doc["bundle"]
    if doc.get("annotations"):
        state["annotations"] = doc["annotations"]
    return state


def hooks_of(spec: dict, kind: str) -> list[dict]:
    return list((spec.get("hooks") or {}).get(kind) or [])


def preload(spec: dict, kind: str) -> None:
    """Import what ``run_hooks`` needs for ``kind`` hooks now: the init runs
    ``startContainer`` hooks after pivot_root, when the host's standard library
    is out of reach."""
    if hooks_of(spec, kind):
        import subprocess  # noqa: F401


def run_hooks(spec: dict, kind: str, state: dict, cwd: str | None = None, *,
              inherit_env: bool = False, warn: Callable[[str], None] | None = None) -> None:
    """Run every ``kind`` hook of ``spec`` in order (in ``cwd`` if given); raises
    ``HookError`` on the first failure.

    A hook without ``env`` gets an empty environment, or with ``inherit_env`` the
    runtime's own (runc's hooks are Go commands with a nil ``Env``: the runtime
    side ones see what the caller gave runc, e.g. PATH). With ``warn``
    (poststart, poststop: runtime.md "Lifecycle" has a failure there logged as a
    warning, the remaining hooks and the lifecycle continuing), each failure goes
    to ``warn`` and the next hook still runs.
    """
    hooks = hooks_of(spec, kind)
    if not hooks:
        return
    data = json.dumps(state, separators=(",", ":")).encode()
    for hook in hooks:
        try:
            _run_hook(kind, hook, data, cwd, inherit_env)
        except HookError as e:
            if warn is None:
                raise
            warn(str(e))


def _run_hook(kind: str, hook: dict, data: bytes, cwd: str | None, inherit_env: bool) -> None:
    import subprocess  # only when hooks exist: it costs a few ms to import

    path = hook["path"]
    args = hook.get("args") or [path]
    timeout = hook.get("timeout")
    try:
        proc = subprocess.run(args, executable=path, input=data, env=_env(hook, inherit_env),
                              capture_output=True, timeout=timeout, close_fds=True, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise HookError(f"error running {kind} hook {path}: hook ran past specified timeout of "
                        f"{float(timeout):.1f}s") from None
    except OSError as e:
        raise HookError(f"error running {kind} hook {path}: {e.strerror}") from None
    if proc.returncode != 0:
        status = (f"exit status {proc.returncode}" if proc.returncode > 0
                  else f"signal {-proc.returncode}")
        # runc's "stdout: ..., stderr: ..." (each folded to one line here)
        out, err = (" ".join(b.decode(errors="replace").split())
                    for b in (proc.stdout, proc.stderr))
        raise HookError(f"error running {kind} hook {path}: {status}, "
                        f"stdout: {out}, stderr: {err}")


def _env(hook: dict, inherit: bool) -> dict[str, str] | None:
    if hook.get("env") is None and inherit:
        return None
    env: dict[str, str] = {}
    for item in hook.get("env") or []:
        name, _, value = item.partition("=")
        env[name] = value
    return env

"""Hooks, user namespaces and the hardening cases, end to end with real containers."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .conftest import Runtime, alive, cgroup_leftovers


def _hook(kind: str, log: Path) -> dict:
    return {"path": "/bin/sh", "args": ["sh", "-c", f'read s; echo "{kind} $s" >> {log}']}


def test_hooks_run_in_order_with_state_on_stdin(runc: Runtime, ketch: Runtime, make_bundle,
                                                tmp_path: Path) -> None:
    seen = {}
    for rt in (runc, ketch):
        log = tmp_path / f"{rt.name}.log"

        def edit(c: dict, log: Path = log) -> None:
            c["hooks"] = {k: [_hook(k, log)] for k in
                          ("prestart", "createRuntime", "createContainer", "poststart", "poststop")}

        bundle = make_bundle(["true"], edit=edit, name=f"hooks-{rt.name}")
        cid = rt.new_id("hooks")
        assert rt("run", "-b", str(bundle), cid).rc == 0
        lines = log.read_text().splitlines()
        seen[rt.name] = [line.split(" ", 1)[0] for line in lines]
        states = [json.loads(line.split(" ", 1)[1]) for line in lines]
        assert all(s["id"] == cid and s["bundle"] == str(bundle) for s in states)
    assert seen["ketch"] == seen["runc"] == ["prestart", "createRuntime", "createContainer",
                                             "poststart", "poststop"]


def test_failing_hook_leaves_nothing(ketch: Runtime, make_bundle) -> None:
    for hook in ({"path": "/nonexistent-hook"},
                 {"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]},
                 {"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}):
        bundle = make_bundle(["true"], edit=lambda c, h=hook: c.update(hooks={"createRuntime": [h]}))
        cid = ketch.new_id("hookfail")
        r = ketch("run", "-b", str(bundle), cid)
        assert r.rc == 1 and "createRuntime hook" in r.msg, r
        assert not (ketch.root / cid).exists()
        assert cgroup_leftovers(cid) == []


def test_user_namespace_maps_ids_and_ownership(ketch: Runtime, make_bundle) -> None:
    def edit(c: dict) -> None:
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]

    bundle = make_bundle(["sh", "-c", "id; cat /proc/self/uid_map; stat -c '%u:%g' /owned /"],
                         edit=edit)
    # the container's root is an unprivileged host uid: it must be able to reach the bundle
    for parent in [bundle, *bundle.parents]:
        if parent == Path("/tmp"):
            break
        os.chmod(parent, os.stat(parent).st_mode | 0o111)
    (bundle / "rootfs" / "owned").write_text("x")
    os.chown(bundle / "rootfs" / "owned", 100000 + 42, 100000 + 43)
    r = ketch("run", "-b", str(bundle), ketch.new_id("userns"))
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0].startswith("uid=0(root) gid=0(root)")
    assert lines[1].split() == ["0", "100000", "65536"]
    assert lines[2] == "42:43"          # a file owned through the mapping
    assert lines[3] == "65534:65534"    # host root is unmapped: the overflow id


def test_failed_pid_file_write_leaves_no_process_or_cgroup(ketch: Runtime, make_bundle) -> None:
    bundle = make_bundle(["sleep", "1000"])
    cid = ketch.new_id("pidfile")
    r = ketch("create", "-b", str(bundle), "--pid-file", "/nonexistent/dir/pid", cid)
    assert r.rc == 1
    assert not (ketch.root / cid).exists()
    assert cgroup_leftovers(cid) == []
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        assert not (cid.encode() in cmd and alive(pid)), f"leaked process {pid}"


def test_cwd_through_a_runtime_fd_is_refused(ketch: Runtime, make_bundle) -> None:
    """process.cwd = /proc/self/fd/N must never land on a host directory (CVE-2024-21626)."""
    for fd in range(3, 10):
        bundle = make_bundle(["sh", "-c", "pwd; ls"],
                             edit=lambda c, fd=fd: c["process"].update(cwd=f"/proc/self/fd/{fd}"))
        r = ketch("run", "-b", str(bundle), ketch.new_id("cwdfd"))
        assert r.rc != 0 or "state.json" not in r.out, f"fd {fd}: escaped to {r.out!r}"
        assert "exec.fifo" not in r.out and "lock" not in r.out.split()


def test_proc_on_a_symlink_is_refused(runc: Runtime, ketch: Runtime, make_bundle) -> None:
    bundle = make_bundle(["true"])
    (bundle / "rootfs" / "proc").rmdir()
    (bundle / "rootfs" / "proc").symlink_to("/")
    for rt in (runc, ketch):
        r = rt("run", "-b", str(bundle), rt.new_id("procsym"))
        assert r.rc == 1 and 'filesystem "proc" must be mounted on ordinary directory' in r.msg, r


def test_missing_cwd_is_created_like_runc(runc: Runtime, ketch: Runtime, make_bundle) -> None:
    out = {}
    for rt in (runc, ketch):
        bundle = make_bundle(["pwd"], edit=lambda c: c["process"].update(cwd="/does/not/exist"),
                             name=f"cwd-{rt.name}")
        r = rt("run", "-b", str(bundle), rt.new_id("cwd"))
        out[rt.name] = (r.rc, r.out)
    assert out["ketch"] == out["runc"] == (0, "/does/not/exist\n")


def test_unicode_or_newline_ids_are_invalid(ketch: Runtime, make_bundle) -> None:
    bundle = make_bundle(["true"])
    for cid in ("é", "nl\n", "a\tb"):
        r = ketch("create", "-b", str(bundle), cid)
        assert r.rc == 1 and r.msg == "ketch create failed: invalid container ID format", r


def test_corrupt_state_is_skipped_by_list(ketch: Runtime, make_bundle) -> None:
    bundle = make_bundle(["sleep", "1000"])
    good = ketch.new_id("good")
    assert ketch("run", "-d", "-b", str(bundle), good).rc == 0
    bad = ketch.root / "broken"
    bad.mkdir()
    (bad / "state.json").write_text("garbage{")
    r = ketch("list", "-q")
    assert r.rc == 0 and r.out.split() == [good]
    assert "load container broken" in r.err
    ketch("delete", "-f", good)


def test_preserve_fds_never_hands_over_a_runtime_fd(ketch: Runtime, make_bundle) -> None:
    """--preserve-fds with fds 3 and 4 closed: refused before anything is created, in
    runc's words (ketch's own lock or sockets must never land there: they did once, and
    the container then held the state lock: every command hung). runc 1.1.5 checks the
    same fds in its own process, where its Go runtime holds 3..6, and hands those over."""
    import subprocess

    bundle = make_bundle(["sh", "-c", "ls -l /proc/self/fd"])
    cid = ketch.new_id("pfd")
    p = subprocess.run(["bash", "-c", 'exec "$@" 3<&- 4<&-', "x",
                        *ketch.argv("run", "--preserve-fds", "2", "-b", str(bundle), cid)],
                       capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert (p.returncode, p.stdout) == (1, ""), p
    assert ("unable to stat preserved-fd 0 (of 2): stat /proc/self/fd/3: no such file or "
            "directory") in p.stderr, p.stderr
    assert ketch.state(cid) is None and not (ketch.root / cid).exists()


def test_poststop_runs_when_create_fails_on_a_hook(ketch: Runtime, make_bundle,
                                                   tmp_path: Path) -> None:
    log = tmp_path / "hooks.log"

    def edit(c: dict) -> None:
        c["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}],
                      "poststop": [_hook("poststop", log)]}

    bundle = make_bundle(["true"], edit=edit)
    cid = ketch.new_id("poststop")
    r = ketch("run", "-b", str(bundle), cid)
    assert r.rc == 1 and "createRuntime hook" in r.msg
    assert log.read_text().startswith("poststop ")
    assert not (ketch.root / cid).exists()


def test_create_container_hook_cwd_and_kill_all_of_stopped_like_runc(
        runc: Runtime, ketch: Runtime, make_bundle, tmp_path: Path) -> None:
    seen = {}
    for rt in (runc, ketch):
        out = tmp_path / f"cwd-{rt.name}"

        def edit(c: dict, out: Path = out) -> None:
            c["hooks"] = {"createContainer": [{"path": "/bin/sh",
                                               "args": ["sh", "-c", f"pwd > {out}"]}]}

        bundle = make_bundle(["true"], edit=edit, name=f"hc-{rt.name}")
        cid = rt.new_id("hc")
        assert rt("run", "-d", "-b", str(bundle), cid).rc == 0
        for _ in range(50):
            if rt.status(cid) == "stopped":
                break
            time.sleep(0.05)
        seen[rt.name] = (out.read_text().strip() == str(bundle / "rootfs"),
                         rt("kill", "--all", cid, "KILL").rc, rt("kill", cid, "KILL").rc)
        rt("delete", "-f", cid)
    assert seen["ketch"] == seen["runc"] == (True, 0, 1), seen


def test_start_container_hook_runs_inside_like_runc(runc: Runtime, ketch: Runtime,
                                                    make_bundle) -> None:
    """``startContainer`` hooks run in the container after ``start`` (runtime.md
    "Lifecycle" step 7): after pivot_root, where the runtime can no longer
    import from the host's standard library, so it must have loaded what it
    needs before. A failing one stops the user process from running: the
    error goes to the container's stderr and the container exits 1, as runc's
    init does."""
    ok = {"path": "/bin/sh", "args": ["sh", "-c", "read s; echo \"$s\" > /dev/shm/state"]}
    fail = {"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}
    seen = {}
    for rt in (runc, ketch):
        bundle = make_bundle(["cat", "/dev/shm/state"], name=f"start-hook-{rt.name}",
                             edit=lambda c: c.update(hooks={"startContainer": [ok]}))
        cid = rt.new_id("starthook")
        r = rt("run", "-b", str(bundle), cid)
        assert r.rc == 0, str(r)
        state = json.loads(r.out)
        assert state["id"] == cid
        seen[rt.name] = state["status"]

        bundle = make_bundle(["echo", "user-process-ran"], name=f"start-hook-fail-{rt.name}",
                             edit=lambda c: c.update(hooks={"startContainer": [fail]}))
        r = rt("run", "-b", str(bundle), rt.new_id("starthookfail"))
        assert r.rc == 1, str(r)
        assert "user-process-ran" not in r.out and "error running" in r.err, str(r)
        assert "hook" in r.err and "exit status 3" in r.err, str(r)
    assert seen["ketch"] == seen["runc"]


def test_runtime_hooks_get_bundle_cwd_and_runtime_env(runc: Runtime, ketch: Runtime, make_bundle,
                                                      tmp_path: Path, monkeypatch) -> None:
    """Hooks without ``env`` run with the runtime's environment (PATH, the caller's
    variables) and, at create, in the bundle directory, as runc's do (ketch gave them
    an empty environment and the caller's directory)."""
    monkeypatch.setenv("KETCH_HOOK_PROBE", "from-the-caller")
    seen = {}
    for rt in (runc, ketch):
        log = tmp_path / f"{rt.name}-env.log"
        probe = {"path": "/bin/sh", "args": ["sh", "-c", f'echo "$(pwd) $KETCH_HOOK_PROBE '
                                              f'${{PATH:+has-path}}" >> {log}']}
        bundle = make_bundle(["true"], name=f"hookenv-{rt.name}",
                             edit=lambda c, p=probe: c.update(hooks={"createRuntime": [p]}))
        assert rt("run", "-b", str(bundle), rt.new_id("hookenv")).rc == 0
        seen[rt.name] = log.read_text().replace(str(bundle), "BUNDLE")
    assert seen["ketch"] == seen["runc"] == "BUNDLE from-the-caller has-path\n", seen


def test_failing_poststart_hook_is_a_warning(ketch: Runtime, make_bundle, tmp_path: Path) -> None:
    """runtime.md "Lifecycle": a poststart failure is logged as a warning; the other
    poststart hooks and the container go on (runc 1.1 stops the container instead)."""
    mark = tmp_path / "second-ran"
    hooks = [{"path": "/bin/sh", "args": ["sh", "-c", "echo out-text; echo err-text >&2; exit 3"]},
             {"path": "/bin/sh", "args": ["sh", "-c", f"touch {mark}"]}]
    bundle = make_bundle(["sleep", "1000"], edit=lambda c: c.update(hooks={"poststart": hooks}))
    cid = ketch.new_id("poststart")
    assert ketch("create", "-b", str(bundle), cid).rc == 0
    r = ketch("start", cid)
    try:
        assert r.rc == 0, r
        assert "level=warning" in r.err and ("error running poststart hook /bin/sh: exit status 3, "
                                             "stdout: out-text, stderr: err-text") in r.err, r
        assert mark.exists()
        assert ketch.status(cid) == "running"
    finally:
        ketch("delete", "-f", cid)

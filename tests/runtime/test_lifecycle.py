"""The runtime-spec lifecycle through the ``ketch`` command line: create, state,
start, kill, delete, list, ``--pid-file``; and the error cases, each compared
with runc (exit code and message text) and checked to leave nothing changed.

The happy-path tests run under both runtimes (``any_runtime``) so that each
assertion is known to describe runc's behaviour too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .conftest import Runtime, alive, cgroup_leftovers, cmdline, wait_until

SLEEP = ["sleep", "1000"]


def marker_bundle(make_bundle, tmp_path: Path, script: str):
    """A bundle whose process runs ``sh -c script`` with the host dir ``mark``
    bind-mounted at ``/mark`` (how the tests see what the container did)."""
    mark = tmp_path / "mark"
    mark.mkdir(exist_ok=True)

    def edit(config: dict) -> None:
        config["mounts"].append({"destination": "/mark", "type": "bind", "source": str(mark),
                                 "options": ["rbind", "rw"]})

    return make_bundle(["sh", "-c", script], edit=edit), mark


def test_lifecycle(any_runtime: Runtime, make_bundle, tmp_path: Path) -> None:
    rt = any_runtime
    bundle, mark = marker_bundle(make_bundle, tmp_path, "echo started > /mark/started; exec sleep 1000")
    cid = rt.new_id("life")
    pid_file = tmp_path / "init.pid"

    r = rt("create", "--bundle", str(bundle), "--pid-file", str(pid_file), cid)
    assert r.rc == 0, str(r)
    st = rt.state(cid)
    assert st is not None
    assert st["status"] == "created"
    assert st["id"] == cid
    assert st["bundle"] == str(bundle)
    assert st["rootfs"] == str(bundle / "rootfs")
    pid = st["pid"]
    assert pid > 0 and os.path.isdir(f"/proc/{pid}")
    assert pid_file.read_text().strip() == str(pid)
    # the user process has not started: no marker, the init is not running sleep yet
    assert not (mark / "started").exists()
    assert cmdline(pid) != SLEEP

    r = rt("start", cid)
    assert r.rc == 0, str(r)
    assert wait_until(lambda: (mark / "started").exists()), "process did not start"
    assert wait_until(lambda: cmdline(pid) == SLEEP), cmdline(pid)
    st = rt.state(cid)
    assert (st["status"], st["pid"]) == ("running", pid)
    assert cgroup_leftovers(cid), "no cgroup directory named after the container"

    r = rt("list")
    assert r.rc == 0, str(r)
    header, *rows = r.out.splitlines()
    assert header.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert [row.split()[:4] for row in rows] == [[cid, str(pid), "running", str(bundle)]]
    r = rt("list", "-q")
    assert (r.rc, r.out) == (0, cid + "\n")
    r = rt("list", "--format", "json")
    assert r.rc == 0, str(r)
    listed = json.loads(r.out)
    assert [(c["id"], c["pid"], c["status"], c["bundle"]) for c in listed] == \
        [(cid, pid, "running", str(bundle))]

    r = rt("kill", cid, "KILL")
    assert r.rc == 0, str(r)
    assert wait_until(lambda: rt.status(cid) == "stopped"), rt.state(cid)
    assert rt.state(cid)["pid"] == 0

    r = rt("delete", cid)
    assert (r.rc, r.err) == (0, ""), str(r)
    r = rt("state", cid)
    assert r.rc == 1 and r.msg == "container does not exist", str(r)
    assert not (rt.root / cid).exists()
    assert rt("list", "-q").out == ""
    assert cgroup_leftovers(cid) == []


@pytest.mark.parametrize("signame", ["TERM", "SIGTERM", "15", None])
def test_kill_signal_names(any_runtime: Runtime, make_bundle, tmp_path: Path, signame) -> None:
    """kill with a name, a SIG-name, a number, or no signal (SIGTERM) reaches the init."""
    rt = any_runtime
    bundle, mark = marker_bundle(
        make_bundle, tmp_path,
        'trap "echo TERM > /mark/sig; exit 0" TERM; echo up > /mark/up; while :; do sleep 0.05; done')
    cid = rt.new_id("kill")
    assert rt("create", "--bundle", str(bundle), cid).rc == 0
    assert rt("start", cid).rc == 0
    assert wait_until(lambda: (mark / "up").exists())
    r = rt("kill", cid, *([signame] if signame else []))
    assert r.rc == 0, str(r)
    assert wait_until(lambda: rt.status(cid) == "stopped"), rt.state(cid)
    assert (mark / "sig").read_text() == "TERM\n"
    assert rt("delete", cid).rc == 0


def test_delete_created_kills_init(any_runtime: Runtime, make_bundle) -> None:
    """delete of a created (never started) container succeeds and kills its init."""
    rt = any_runtime
    cid = rt.new_id()
    bundle = make_bundle(SLEEP)
    assert rt("create", "--bundle", str(bundle), cid).rc == 0
    pid = rt.state(cid)["pid"]
    r = rt("delete", cid)
    assert r.rc == 0, str(r)
    assert wait_until(lambda: not alive(pid))
    assert rt.state(cid) is None


# -- error cases, compared with runc ----------------------------------------------------------


def _snapshot(rt: Runtime, cid: str | None) -> tuple:
    """What must not change across a failing command: the root's entries and the
    container's state (status and pid)."""
    entries = sorted(os.listdir(rt.root)) if rt.root.exists() else None
    st = rt.state(cid) if cid else None
    return entries, (st["status"], st["pid"]) if st else None


def _fail(rt: Runtime, obs: list, cid: str | None, *args: str) -> None:
    """Run a command that must fail; record (command, rc, message); check nothing changed."""
    before = _snapshot(rt, cid)
    r = rt(*args)
    after = _snapshot(rt, cid)
    assert r.rc != 0, f"{rt.name}: expected failure: {r}"
    assert before == after, f"{rt.name}: {args} changed state: {before} -> {after}"
    obs.append((args[0], r.rc, rt.norm(r.msg).replace(cid or "\0", "<id>")))


def _ok(rt: Runtime, *args: str) -> None:
    r = rt(*args)
    assert r.rc == 0, str(r)


def scenario_start_twice(rt: Runtime, bundle: Path, obs: list) -> None:
    cid = rt.new_id()
    _ok(rt, "create", "--bundle", str(bundle), cid)
    _ok(rt, "start", cid)
    _fail(rt, obs, cid, "start", cid)


def scenario_start_stopped(rt: Runtime, bundle: Path, obs: list) -> None:
    cid = rt.new_id()
    _ok(rt, "create", "--bundle", str(bundle), cid)
    _ok(rt, "kill", cid, "KILL")
    assert wait_until(lambda: rt.status(cid) == "stopped")
    _fail(rt, obs, cid, "start", cid)
    _fail(rt, obs, cid, "kill", cid, "KILL")
    _fail(rt, obs, cid, "kill", cid)
    _ok(rt, "delete", cid)


def scenario_delete_running(rt: Runtime, bundle: Path, obs: list) -> None:
    cid = rt.new_id()
    _ok(rt, "create", "--bundle", str(bundle), cid)
    _ok(rt, "start", cid)
    pid = rt.state(cid)["pid"]
    _fail(rt, obs, cid, "delete", cid)
    r = rt("delete", "--force", cid)
    obs.append(("delete --force", r.rc, r.err))
    assert rt.state(cid) is None
    assert not (rt.root / cid).exists()
    assert wait_until(lambda: not alive(pid))


def scenario_unknown_id(rt: Runtime, bundle: Path, obs: list) -> None:
    rt.root.mkdir(parents=True, exist_ok=True)
    for args in (["state"], ["kill"], ["kill", "KILL"], ["start"], ["delete"]):
        cmd = [args[0], "no-such-id", *args[1:]]
        _fail(rt, obs, None, *cmd)
    r = rt("delete", "--force", "no-such-id")
    obs.append(("delete --force", r.rc, r.err))


def scenario_invalid_ids(rt: Runtime, bundle: Path, obs: list) -> None:
    rt.root.mkdir(parents=True, exist_ok=True)
    for bad in ("..", "a/b", ".", "../x"):
        for verb in ("state", "start", "kill", "delete"):
            _fail(rt, obs, None, verb, bad)
        _fail(rt, obs, None, "create", "--bundle", str(bundle), bad)
    assert os.listdir(rt.root) == []


def scenario_create_existing(rt: Runtime, bundle: Path, obs: list) -> None:
    cid = rt.new_id()
    _ok(rt, "create", "--bundle", str(bundle), cid)
    _fail(rt, obs, cid, "create", "--bundle", str(bundle), cid)
    _fail(rt, obs, cid, "run", "--bundle", str(bundle), cid)
    _ok(rt, "start", cid)
    assert rt.status(cid) == "running"


SCENARIOS = {f.__name__[len("scenario_"):]: f for f in (
    scenario_start_twice, scenario_start_stopped, scenario_delete_running, scenario_unknown_id,
    scenario_invalid_ids, scenario_create_existing)}

# what runc 1.1.5 answers (the scenarios are checked against it, so they mean what they say)
RUNC_EXPECTED = {
    "start_twice": [("start", 1, "cannot start an already running container")],
    "start_stopped": [("start", 1, "cannot start a container that has stopped"),
                      ("kill", 1, "container not running"), ("kill", 1, "container not running")],
    "delete_running": [("delete", 1, "cannot delete container <id> that is not stopped: running"),
                       ("delete --force", 0, "")],
    "unknown_id": [(v, 1, "container does not exist") for v in ("state", "kill", "kill", "start", "delete")]
    + [("delete --force", 0, "")],
}


KNOWN_BUGS: dict[str, str] = {}


@pytest.mark.runc
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_errors_like_runc(name: str, runc: Runtime, ketch: Runtime, make_bundle, known_bug) -> None:
    if name in KNOWN_BUGS:
        known_bug(KNOWN_BUGS[name])
    bundle = make_bundle(SLEEP)
    seen = {}
    for rt in (runc, ketch):
        obs: list = []
        SCENARIOS[name](rt, bundle, obs)
        seen[rt.name] = obs
    if name in RUNC_EXPECTED:
        assert seen["runc"] == RUNC_EXPECTED[name]
    if seen["ketch"] != seen["runc"]:
        rows = [f"  runc:  {r}\n  ketch: {k}" for r, k in zip(seen["runc"], seen["ketch"], strict=False)
                if r != k]
        if len(seen["runc"]) != len(seen["ketch"]):
            rows.append(f"  runc ran {len(seen['runc'])} steps, ketch {len(seen['ketch'])}")
        pytest.fail("ketch differs from runc (step, exit code, message):\n" + "\n".join(rows))


def test_init_command_line_shows_no_host_paths(ketch: Runtime, make_bundle) -> None:
    """Before ``start`` the init is visible inside the container as PID 1: its
    command line is ``ketch init`` (runc: ``runc init``), not the host's
    interpreter, script and ``--root`` paths."""
    cid = ketch.new_id("title")
    bundle = make_bundle(SLEEP)
    assert ketch("create", "--bundle", str(bundle), cid).rc == 0
    r = ketch("exec", cid, "cat", "/proc/1/cmdline")
    assert r.rc == 0, str(r)
    assert r.out.rstrip("\0").split("\0") == ["ketch init"], repr(r.out)
    assert str(ketch.root) not in r.out
    assert ketch("delete", "--force", cid).rc == 0


def test_debug_flag_logs_the_lifecycle(ketch: Runtime, make_bundle) -> None:
    """``--debug`` adds logrus debug lines for each step (runc prints its own);
    without it a run prints nothing of ours."""
    bundle = make_bundle(["true"])
    r = ketch("--debug", "run", "--bundle", str(bundle), ketch.new_id("debug"))
    assert r.rc == 0, str(r)
    debug = [line for line in r.err.splitlines() if "level=debug" in line]
    assert [m for m in ("created container", "started container", "deleted container")
            if not any(m in line for line in debug)] == [], r.err
    quiet = ketch("run", "--bundle", str(bundle), ketch.new_id("debug"))
    assert quiet.rc == 0 and quiet.err == "", str(quiet)


def test_state_of_a_bundle_reached_through_a_symlink(runc: Runtime, ketch: Runtime, make_bundle,
                                                     tmp_path: Path) -> None:
    """``state`` with annotations and a bundle named through a symlink: the same keys in
    the same order as runc's, the bundle resolved (runc records its working directory
    after chdir into the bundle)."""
    bundle = make_bundle(["sleep", "1000"], edit=lambda c: c.update(annotations={"k": "v"}))
    link = tmp_path / "bundle-link"
    link.symlink_to(bundle)
    seen = {}
    for rt in (runc, ketch):
        cid = rt.new_id("statelink")
        assert rt("create", "-b", str(link), cid).rc == 0
        r = rt("state", cid)
        rt("delete", "-f", cid)
        st = json.loads(r.out)
        seen[rt.name] = (list(st), st["bundle"], st["annotations"])
    assert seen["ketch"] == seen["runc"], seen
    assert seen["ketch"][1] == str(bundle.resolve())


def test_closed_stdio_is_not_a_crash(ketch: Runtime, make_bundle) -> None:
    """``ketch`` started with stdout, stderr or stdin closed (``>&-``): never an
    AttributeError or traceback (Python's sys.stdout was None). As runc 1.1.5: output
    that cannot be written to a closed stdout fails the command ("write /dev/stdout:
    bad file descriptor", exit 1) except --version/--help, whose write errors urfave
    ignores; a foreground ``run`` with stdin closed still runs its process to its
    status."""
    import subprocess

    for verb, can_fail in ((["list"], True), (["--version"], False), (["features"], True)):
        argv = " ".join(ketch.argv(*verb))
        for redirect in (">&-", "2>&-", "<&- >&- 2>&-"):
            # fd 3 keeps bash's own stdout for the status line
            p = subprocess.run(["bash", "-c", f"exec 3>&1; {argv} {redirect}; echo rc=$? >&3"],
                               capture_output=True, text=True, timeout=30,
                               stdin=subprocess.DEVNULL)
            fails = can_fail and ">&-" in redirect.replace("2>&-", "")
            assert p.stdout.endswith("rc=1\n" if fails else "rc=0\n") and \
                "Traceback" not in p.stderr and "AttributeError" not in p.stderr, \
                (verb, redirect, p)
            if fails and redirect == ">&-":
                assert 'msg="write /dev/stdout: bad file descriptor"' in p.stderr, p.stderr
    bundle = make_bundle(["sh", "-c", "cat; echo done; exit 4"])
    cid = ketch.new_id("closedin")
    run = " ".join(ketch.argv("run", "-b", str(bundle), cid))
    p = subprocess.run(["bash", "-c", f"{run} <&-; echo rc=$?"], capture_output=True,
                       text=True, timeout=30)
    assert p.stdout == "done\nrc=4\n" and "Traceback" not in p.stderr, p

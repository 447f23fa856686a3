"""pause / resume through the cgroup freezer (runc's commands)."""

from __future__ import annotations

import time

from .conftest import Runtime

COUNTER = ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /dev/shm/c; sleep 0.05; done"]


def _count(rt: Runtime, cid: str) -> int:
    return int(rt("exec", cid, "cat", "/dev/shm/c").out.strip())


def test_pause_stops_and_resume_continues(ketch: Runtime, make_bundle) -> None:
    cid = ketch.new_id("pause")
    assert ketch("run", "-d", "-b", str(make_bundle(COUNTER)), cid).rc == 0
    time.sleep(0.3)
    assert ketch("pause", cid).rc == 0
    assert ketch.status(cid) == "paused"
    r = ketch("exec", cid, "true")
    assert r.rc == 255 and "cannot exec in a paused container" in r.msg
    assert ketch("delete", cid).rc == 1  # not stopped
    assert ketch("resume", cid).rc == 0
    first = _count(ketch, cid)
    time.sleep(0.4)
    assert _count(ketch, cid) > first
    assert ketch("resume", cid).msg == "container not paused"
    assert ketch("pause", cid).rc == 0
    assert ketch("delete", "--force", cid).rc == 0  # thawed, then killed
    assert ketch.state(cid) is None


def test_frozen_counter_does_not_move(ketch: Runtime, make_bundle) -> None:
    cid = ketch.new_id("frozen")
    bundle = make_bundle(COUNTER)
    assert ketch("run", "-d", "-b", str(bundle), cid).rc == 0
    time.sleep(0.3)
    ketch("pause", cid)
    pid = ketch.state(cid)["pid"]
    with open(f"/proc/{pid}/root/dev/shm/c") as f:
        before = f.read()
    time.sleep(0.4)
    with open(f"/proc/{pid}/root/dev/shm/c") as f:
        assert f.read() == before
    ketch("delete", "--force", cid)


def test_pause_a_created_container_like_runc(runc: Runtime, ketch: Runtime, make_bundle) -> None:
    bundle = make_bundle(["true"])
    seen = {}
    for rt in (runc, ketch):
        cid = rt.new_id("pausecreated")
        assert rt("create", "-b", str(bundle), cid).rc == 0
        steps = [rt("pause", cid).rc, rt.status(cid), rt("resume", cid).rc, rt.status(cid)]
        rt("delete", "-f", cid)
        seen[rt.name] = steps
    assert seen["ketch"] == seen["runc"] == [0, "paused", 0, "created"], seen


def test_root_that_is_a_file_fails_like_runc(runc: Runtime, ketch: Runtime, tmp_path) -> None:
    root_file = tmp_path / "rootfile"
    root_file.write_text("x")
    for rt in (runc, ketch):
        for args in (["list"], ["state", "x"]):
            r = rt.__class__(rt.name, rt.binary, root_file)(*args)
            assert r.rc == 1 and r.msg == f"mkdir {root_file}: not a directory", r
    assert root_file.read_text() == "x"


def test_kill_of_a_paused_container_like_runc(runc: Runtime, ketch: Runtime,
                                              make_bundle) -> None:
    """``kill ID KILL`` of a paused container thaws it so the init dies (runc does; ketch
    left it frozen, "paused", undeletable); any other signal waits for ``resume``."""
    bundle = make_bundle(["sleep", "1000"])
    seen = {}
    for rt in (runc, ketch):
        cid = rt.new_id("killpaused")
        assert rt("run", "-d", "-b", str(bundle), cid).rc == 0
        assert rt("pause", cid).rc == 0
        term = [rt("kill", cid, "TERM").rc]
        time.sleep(0.3)
        term.append(rt.status(cid))
        kill = [rt("kill", cid, "KILL").rc]
        deadline = time.monotonic() + 5
        while rt.status(cid) != "stopped" and time.monotonic() < deadline:
            time.sleep(0.05)
        kill += [rt.status(cid), rt("delete", cid).rc]
        rt("delete", "-f", cid)
        seen[rt.name] = (term, kill)
    assert seen["ketch"] == seen["runc"], seen
    assert seen["ketch"] == ([0, "paused"], [0, "stopped", 0]), seen

"""A bad config.json never leaves anything behind.

``create`` and ``run`` of a bundle whose config is invalid (or whose process
cannot start) fail with a one-line error on stderr naming the field or the
problem, exit non-zero, and leave no container directory under ``--root``, no
cgroup directory named after the container and no process (the pytest process
is a child subreaper, so anything the runtime left running is our child).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import Runtime, alive, cgroup_leftovers, children, reap_zombies, wait_until


@dataclass
class Bad:
    id: str
    edit: Callable[[dict], None] | None
    words: tuple[str, ...]  # each must appear in the message (case-insensitive)
    raw: str | None = None  # config.json text instead of JSON (for syntax errors)


def _del(*path: str) -> Callable[[dict], None]:
    def edit(config: dict) -> None:
        node = config
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return edit


def _set(value, *path: str) -> Callable[[dict], None]:
    def edit(config: dict) -> None:
        node = config
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


def _add_namespace(ns: dict) -> Callable[[dict], None]:
    def edit(config: dict) -> None:
        config["linux"]["namespaces"].append(ns)
    return edit


def _hostname_without_uts(config: dict) -> None:
    config["hostname"] = "nouts"
    config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"] if n["type"] != "uts"]


BAD = [
    Bad("missing-args", _del("process", "args"), ("process.args",)),
    Bad("empty-args", _set([], "process", "args"), ("process.args",)),
    Bad("args-not-array", _set("true", "process", "args"), ("process.args",)),
    Bad("bad-json", None, ("json",), raw='{"ociVersion": "1.0.2", "process": {'),
    Bad("missing-root-path", _del("root", "path"), ("root.path",)),
    Bad("missing-root", _del("root"), ("root",)),
    Bad("hostname-without-uts", _hostname_without_uts, ("hostname", "uts")),
    Bad("nonexistent-rootfs", _set("no-such-rootfs", "root", "path"), ("no-such-rootfs",)),
    Bad("missing-executable", _set(["/nope"], "process", "args"), ("/nope",)),
    Bad("missing-executable-in-path", _set(["nope-cmd"], "process", "args"), ("nope-cmd",)),
    Bad("cwd-relative", _set("relative", "process", "cwd"), ("cwd",)),
    Bad("bad-namespace", _set([{"type": "nosuchns"}], "linux", "namespaces"), ("namespace",)),
    Bad("env-without-equals", _set(["PATH=/bin", "FOO"], "process", "env"), ("env", "FOO")),
    Bad("duplicate-namespace", _add_namespace({"type": "pid"}), ("pid", "namespace")),
    Bad("mappings-without-userns",
        _set([{"containerID": 0, "hostID": 100000, "size": 65536}], "linux", "uidMappings"),
        ("uidMappings", "user namespace")),
]


def _write_bad(bundle: Path, bad: Bad) -> None:
    if bad.raw is not None:
        (bundle / "config.json").write_text(bad.raw)


@pytest.mark.parametrize("verb", ["create", "run"])
@pytest.mark.parametrize("bad", BAD, ids=[b.id for b in BAD])
def test_bad_config_leaves_nothing(bad: Bad, verb: str, ketch: Runtime, make_bundle) -> None:
    bundle = make_bundle(["true"], edit=bad.edit)
    _write_bad(bundle, bad)
    cid = ketch.new_id("bad")
    reap_zombies()
    before = set(children())

    r = ketch(verb, "--bundle", str(bundle), cid)

    assert r.rc != 0, str(r)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr:\n{r}"
    msg = r.msg.lower()
    for word in bad.words:
        assert word.lower() in msg, f"message does not name {word!r}:\n{r}"
    # no container directory (the root itself may exist, empty)
    assert not ketch.root.exists() or os.listdir(ketch.root) == [], os.listdir(ketch.root)
    assert ketch("state", cid).msg == "container does not exist"
    assert cgroup_leftovers(cid) == []

    def no_live_leftovers() -> bool:
        reap_zombies()
        return not (set(children()) - before)

    assert wait_until(no_live_leftovers, timeout=2), \
        f"processes left behind: {sorted(set(children()) - before)}"


def test_missing_config_json(ketch: Runtime, make_bundle) -> None:
    bundle = make_bundle(["true"])
    (bundle / "config.json").unlink()
    cid = ketch.new_id("bad")
    r = ketch("create", "--bundle", str(bundle), cid)
    assert r.rc != 0 and len(r.err.strip().splitlines()) == 1, str(r)
    assert "config.json" in r.msg, str(r)
    assert not ketch.root.exists() or os.listdir(ketch.root) == []
    assert cgroup_leftovers(cid) == []


@pytest.mark.runc
def test_missing_executable_message_like_runc(runc: Runtime, ketch: Runtime, make_bundle) -> None:
    """containerd and friends show this message to users: it is runc's text."""
    bundle = make_bundle(["/nope"])
    r = runc("run", "--bundle", str(bundle), runc.new_id("bad"))
    k = ketch("run", "--bundle", str(bundle), ketch.new_id("bad"))
    assert (k.rc, ketch.norm(k.msg)) == (r.rc, runc.norm(r.msg)), f"runc:  {r}\nketch: {k}"


def test_harness_sees_orphans(runtime_prereqs: dict) -> None:
    """Self-check of the leftover detection above: an orphaned grandchild becomes our child."""
    import subprocess

    reap_zombies()
    before = set(children())
    subprocess.run(["sh", "-c", "sleep 30 >/dev/null 2>&1 &"], check=True)
    new = set(children()) - before
    try:
        assert len(new) == 1, new
    finally:
        for pid in new:
            os.kill(pid, 9)
        wait_until(lambda: bool(reap_zombies()), timeout=5)


def test_start_without_process_fails_and_stops(ketch: Runtime, make_bundle) -> None:
    """runtime.md: ``create`` works without ``process``; ``start`` MUST fail then.
    The container can never run, so its init is gone afterwards: ``state``
    reads "stopped" and a plain ``delete`` leaves nothing."""
    bundle = make_bundle(["true"], edit=_del("process"))
    cid = ketch.new_id("noproc")
    assert ketch("create", "--bundle", str(bundle), cid).rc == 0
    pid = ketch.state(cid)["pid"]
    r = ketch("start", cid)
    assert r.rc == 1 and len(r.err.strip().splitlines()) == 1, str(r)
    assert r.msg == "cannot start a container with no process", str(r)
    assert wait_until(lambda: not alive(pid)), "init still alive after the failed start"
    assert ketch.status(cid) == "stopped"
    assert ketch("delete", cid).rc == 0
    assert not ketch.root.exists() or os.listdir(ketch.root) == []
    assert cgroup_leftovers(cid) == []


def test_exec_into_a_container_created_without_process(ketch: Runtime, make_bundle) -> None:
    """With no ``process`` to start from, ``exec`` runs as root in ``/`` with the
    default ``PATH`` (runc cannot get here: it refuses such a ``create``)."""
    bundle = make_bundle(["true"], edit=_del("process"))
    cid = ketch.new_id("noprocexec")
    assert ketch("create", "--bundle", str(bundle), cid).rc == 0
    r = ketch("exec", cid, "sh", "-c", "pwd; id -u; echo $PATH")
    assert r.rc == 0, str(r)
    assert r.out.splitlines()[:2] == ["/", "0"], str(r)
    assert "/usr/bin" in r.out.splitlines()[2]
    assert ketch("delete", "--force", cid).rc == 0

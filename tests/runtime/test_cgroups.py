"""Resource limits on the real cgroup hierarchies of this host, and the commands
that manage a running container's cgroup: ``update``, ``events``, ``kill --all``,
``delete --force`` of a paused container. Differential against runc where both
runtimes can run the same bundle."""

from __future__ import annotations

import glob
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import Runtime, cgroup_leftovers, wait_until

SLEEPER = ["sleep", "300"]
MEMORY_INSIDE = "/sys/fs/cgroup/memory/memory.limit_in_bytes"


def _memory_cgroup(pid: int) -> str:
    """Host directory of ``pid``'s v1 memory cgroup."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, names, path = line.rstrip("\n").split(":", 2)
            if "memory" in names.split(","):
                return "/sys/fs/cgroup/memory" + path
    raise AssertionError("no memory cgroup")


def _limits(**resources: object):
    def edit(config: dict) -> None:
        config["linux"].setdefault("resources", {}).update(resources)
    return edit


# -- update ---------------------------------------------------------------------------


def test_update_memory_limit_visible_inside_like_runc(runc: Runtime, ketch: Runtime,
                                                      make_bundle) -> None:
    bundle = make_bundle(SLEEPER, edit=_limits(memory={"limit": 64 << 20}))
    seen = {}
    for rt in (runc, ketch):
        cid = rt.new_id("upd")
        assert rt("run", "-d", "-b", str(bundle), cid).rc == 0
        before = rt("exec", cid, "cat", MEMORY_INSIDE).out.strip()
        r = rt("update", "--memory", "96m", "--pids-limit", "33", "--cpu-share", "512", cid)
        after = rt("exec", cid, "cat", MEMORY_INSIDE).out.strip()
        pid = rt.state(cid)["pid"]
        pids = Path(f"/sys/fs/cgroup/pids{_cgroup_path(pid, 'pids')}/pids.max").read_text().strip()
        shares = Path(f"/sys/fs/cgroup/cpu{_cgroup_path(pid, 'cpu')}/cpu.shares").read_text().strip()
        seen[rt.name] = (r.rc, r.err, before, after, pids, shares)
        rt("delete", "-f", cid)
    assert seen["ketch"] == seen["runc"] == (0, "", str(64 << 20), str(96 << 20), "33", "512"), seen


def _cgroup_path(pid: int, controller: str) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, names, path = line.rstrip("\n").split(":", 2)
            if controller in names.split(","):
                return path
    raise AssertionError(f"no {controller} cgroup")


def test_update_from_resources_file_and_stdin(ketch: Runtime, make_bundle, tmp_path) -> None:
    cid = ketch.new_id("updr")
    assert ketch("run", "-d", "-b", str(make_bundle(SLEEPER)), cid).rc == 0
    res = tmp_path / "res.json"
    res.write_text(json.dumps({"memory": {"limit": 50 << 20, "reservation": 20 << 20},
                               "cpu": {"quota": 20000, "period": 100000}}))
    # with -r every other flag is ignored (runc's rule)
    assert ketch("update", "-r", str(res), "--memory", "1g", cid).rc == 0
    mem = _memory_cgroup(ketch.state(cid)["pid"])
    assert Path(mem, "memory.limit_in_bytes").read_text().strip() == str(50 << 20)
    assert Path(mem, "memory.soft_limit_in_bytes").read_text().strip() == str(20 << 20)
    assert ketch("update", "-r", "-", cid, input=json.dumps({"pids": {"limit": 9}})).rc == 0
    pids = _cgroup_path(ketch.state(cid)["pid"], "pids")
    assert Path(f"/sys/fs/cgroup/pids{pids}/pids.max").read_text().strip() == "9"
    cpu = _cgroup_path(ketch.state(cid)["pid"], "cpu")
    assert Path(f"/sys/fs/cgroup/cpu{cpu}/cpu.cfs_quota_us").read_text().strip() == "20000"


def test_update_errors_like_runc(runc: Runtime, ketch: Runtime, make_bundle) -> None:
    running = make_bundle(SLEEPER)
    stopped = make_bundle(["true"])
    seen = {}
    for rt in (runc, ketch):
        cid, dead = rt.new_id("upde"), rt.new_id("upds")
        assert rt("run", "-d", "-b", str(running), cid).rc == 0
        assert rt("run", "-d", "-b", str(stopped), dead).rc == 0
        wait_until(lambda rt=rt, dead=dead: rt.status(dead) == "stopped")
        results = [rt("update", "--memory", "1x", cid), rt("update", "--cpu-period", "abc", cid),
                   rt("update", "--cpu-quota", "1.5", cid), rt("update", "-r", "/nonexistent", cid),
                   rt("update", "--memory", "1m", dead), rt("update", "--memory", "1m", "nope")]
        seen[rt.name] = [(r.rc, r.msg) for r in results]
        rt("delete", "-f", cid)
        rt("delete", "-f", dead)
    assert seen["ketch"] == seen["runc"], seen


def test_update_a_limit_below_usage_fails_in_one_line(ketch: Runtime, make_bundle) -> None:
    """The kernel refuses a v1 limit below the usage it cannot reclaim: one line, runc's words."""
    hog = ["sh", "-c", "dd if=/dev/zero of=/dev/shm/fill bs=1M count=24 2>/dev/null; sleep 300"]
    cid = ketch.new_id("updlow")
    assert ketch("run", "-d", "-b", str(make_bundle(hog, edit=_limits(memory={"limit": 64 << 20}))),
                 cid).rc == 0
    mem = _memory_cgroup(ketch.state(cid)["pid"])
    assert wait_until(lambda: int(Path(mem, "memory.usage_in_bytes").read_text()) > 20 << 20)
    r = ketch("update", "--memory", "4m", cid)
    assert r.rc == 1 and len(r.err.strip().splitlines()) == 1, r
    assert "linux.resources.memory.limit: unable to set memory limit to 4194304" in r.msg, r
    assert Path(mem, "memory.limit_in_bytes").read_text().strip() == str(64 << 20)
    r = ketch("update", "-r", "-", cid,
              input=json.dumps({"memory": {"limit": 8 << 20, "checkBeforeUpdate": True}}))
    assert r.rc == 1 and "rejecting memory limit 8388608 below the current usage" in r.msg, r


# -- create-time resources --------------------------------------------------------------


def test_memory_fields_written_at_create(ketch: Runtime, make_bundle) -> None:
    cid = ketch.new_id("mem")
    edit = _limits(memory={"limit": 48 << 20, "reservation": 16 << 20, "swap": 96 << 20,
                           "swappiness": 7, "disableOOMKiller": True, "kernel": 1 << 30})
    r = ketch("run", "-d", "-b", str(make_bundle(SLEEPER, edit=edit)), cid)
    assert r.rc == 0, r
    assert "kernel and kernelTCP are ignored" in r.err
    mem = _memory_cgroup(ketch.state(cid)["pid"])
    got = {n: Path(mem, n).read_text().split("\n")[0] for n in (
        "memory.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.memsw.limit_in_bytes",
        "memory.swappiness", "memory.oom_control")}
    assert got == {"memory.limit_in_bytes": str(48 << 20),
                   "memory.soft_limit_in_bytes": str(16 << 20),
                   "memory.memsw.limit_in_bytes": str(96 << 20), "memory.swappiness": "7",
                   "memory.oom_control": "oom_kill_disable 1"}


def test_rejected_value_leaves_nothing_behind(ketch: Runtime, make_bundle) -> None:
    cid = ketch.new_id("rej")
    bundle = make_bundle(SLEEPER, edit=_limits(cpu={"shares": 1024, "cpus": "0-4096"}))
    r = ketch("run", "-d", "-b", str(bundle), cid)
    assert r.rc == 1 and len(r.err.strip().splitlines()) == 1, r
    assert r.msg.startswith("ketch run failed: linux.resources.cpu.cpus: cannot write '0-4096' "
                            "to /sys/fs/cgroup/cpuset/"), r
    # the errno text depends on the kernel (EINVAL or ERANGE)
    assert re.search(f"/{cid}/cpuset.cpus: (Invalid argument|Numerical result out of range)$",
                     r.msg), r
    assert ketch.state(cid) is None and not (ketch.root / cid).exists()
    assert cgroup_leftovers(cid) == []


def test_missing_controller_is_a_clear_error(ketch: Runtime, make_bundle) -> None:
    """This host has no net_cls hierarchy (v1) and cgroup v2 has no network controller."""
    if glob.glob("/sys/fs/cgroup/net_cls*"):
        pytest.skip("this host has net_cls")
    cid = ketch.new_id("nocls")
    r = ketch("run", "-d", "-b", str(make_bundle(SLEEPER, edit=_limits(
        network={"classID": 1048577}))), cid)
    assert r.rc == 1, r
    assert r.msg == ("ketch run failed: linux.resources.network.classID: the net_cls cgroup "
                     "controller is not available on this host"), r
    assert cgroup_leftovers(cid) == [] and not (ketch.root / cid).exists()


def test_fork_loop_stops_at_pids_limit(ketch: Runtime, make_bundle) -> None:
    # the inner shell forks until the kernel refuses (and then dies of it); the
    # outer one needs no fork to go on
    script = "sh -c 'while :; do sleep 60 & done' 2>/dev/null; exec sleep 300"
    cid = ketch.new_id("fork")
    assert ketch("run", "-d", "-b", str(make_bundle(["sh", "-c", script],
                                                    edit=_limits(pids={"limit": 10}))),
                 cid).rc == 0
    pids = _cgroup_path(ketch.state(cid)["pid"], "pids")
    current = Path(f"/sys/fs/cgroup/pids{pids}/pids.current")
    assert wait_until(lambda: int(current.read_text()) == 9)  # 10 reached, the forker died
    assert ketch.status(cid) == "running"
    assert len(json.loads(ketch("ps", "--format", "json", cid).out)) == 9
    events = Path(f"/sys/fs/cgroup/pids{pids}/pids.events").read_text()
    assert int(events.split()[1]) > 0  # forks were refused: "max N"


# -- hybrid host: controllers only on the cgroup2 mount ----------------------------------


def _unified_hugetlb() -> bool:
    try:
        return "hugetlb" in Path("/sys/fs/cgroup/unified/cgroup.controllers").read_text().split()
    except OSError:
        return False


def test_hugetlb_on_the_cgroup2_hierarchy_of_a_hybrid_host(ketch: Runtime, make_bundle) -> None:
    if not _unified_hugetlb() or glob.glob("/sys/fs/cgroup/hugetlb"):
        pytest.skip("needs hugetlb on /sys/fs/cgroup/unified and none on v1")
    cid = ketch.new_id("huge")
    edit = _limits(hugepageLimits=[{"pageSize": "2MB", "limit": 4 << 20}],
                   unified={"hugetlb.2MB.rsvd.max": str(2 << 20)})
    assert ketch("run", "-d", "-b", str(make_bundle(SLEEPER, edit=edit)), cid).rc == 0
    pid = ketch.state(cid)["pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        v2 = next(line.split(":", 2)[2].strip() for line in f if line.startswith("0::"))
    d = Path("/sys/fs/cgroup/unified" + v2)
    assert d.name == cid
    assert (d / "hugetlb.2MB.max").read_text().strip() == str(4 << 20)
    assert (d / "hugetlb.2MB.rsvd.max").read_text().strip() == str(2 << 20)
    stats = json.loads(ketch("events", "--stats", cid).out)["data"]
    assert stats["hugetlb"]["2MB"] == {"failcnt": 0}
    bad = ketch("run", "-d", "-b", str(make_bundle(SLEEPER, edit=_limits(
        hugepageLimits=[{"pageSize": "3MB", "limit": 1}]))), ketch.new_id("huge3"))
    assert bad.rc == 1 and "hugepageLimits: page size 3MB is not supported" in bad.msg, bad


def test_unified_key_for_a_controller_v2_lacks(ketch: Runtime, make_bundle) -> None:
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():
        pytest.skip("pure cgroup v2 host")
    cid = ketch.new_id("unif")
    r = ketch("run", "-d", "-b", str(make_bundle(SLEEPER, edit=_limits(
        unified={"memory.high": "1000000"}))), cid)
    assert r.rc == 1 and r.msg == ("ketch run failed: linux.resources.unified.memory.high: the "
                                   "memory controller is not available"), r
    assert cgroup_leftovers(cid) == []


# -- events ---------------------------------------------------------------------------

_OMITEMPTY = {"cache", "usage", "max", "total", "percpu", "percpu_kernel", "percpu_user",
              "periods", "throttledPeriods", "throttledTime", "current", "limit", "cpus", "mems"}


def _paths(doc: object, prefix: str = "") -> set[str]:
    """Key paths of a stats object, without raw memory.stat names and hugetlb page sizes
    (host-dependent) and without Go ``omitempty`` keys (present only when non-zero)."""
    out: set[str] = set()
    if isinstance(doc, dict):
        for key, value in doc.items():
            path = f"{prefix}/{key}"
            if prefix.endswith(("/raw", "/hugetlb")):
                continue
            if key not in _OMITEMPTY or (prefix.endswith(("/memory/usage", "/memory/swap",
                                                          "/memory/kernel", "/memory/kernelTCP")) \
                    and key == "limit"):
                out.add(path)
            out |= _paths(value, path)
    return out


def test_events_stats_has_runcs_shape(runc: Runtime, ketch: Runtime, make_bundle) -> None:
    bundle = make_bundle(SLEEPER, edit=_limits(memory={"limit": 64 << 20}, pids={"limit": 50}))
    docs = {}
    for rt in (runc, ketch):
        cid = rt.new_id("stats")
        assert rt("run", "-d", "-b", str(bundle), cid).rc == 0
        r = rt("events", "--stats", cid)
        assert r.rc == 0 and r.out.count("\n") == 1, r
        docs[rt.name] = json.loads(r.out)
        rt("delete", "-f", cid)
    k, c = docs["ketch"], docs["runc"]
    assert list(k) == list(c) == ["type", "id", "data"] and k["type"] == "stats"
    assert list(k["data"]) == list(c["data"])
    assert _paths(k) == _paths(c)
    for doc in (k, c):
        assert doc["data"]["memory"]["usage"]["limit"] == 64 << 20
        assert doc["data"]["pids"] == {"current": 1, "limit": 50}
        assert doc["data"]["memory"]["usage"]["usage"] > 0
        assert doc["data"]["cpu"]["usage"]["total"] > 0


def test_events_on_a_stopped_container_like_runc(runc: Runtime, ketch: Runtime,
                                                 make_bundle) -> None:
    bundle = make_bundle(["true"])
    seen = {}
    for rt in (runc, ketch):
        cid = rt.new_id("evstop")
        assert rt("run", "-d", "-b", str(bundle), cid).rc == 0
        wait_until(lambda rt=rt, cid=cid: rt.status(cid) == "stopped")
        seen[rt.name] = [(r.rc, r.msg.replace(cid, "ID")) for r in (
            rt("events", "--stats", cid), rt("events", cid), rt("events", "--interval", "0s", cid),
            rt("events", "--interval", "x", cid))]
        rt("delete", cid)
    assert seen["ketch"] == seen["runc"], seen


def test_oom_killed_hog_is_reported_by_events(ketch: Runtime, make_bundle) -> None:
    """A memory hog in a 32 MiB container is OOM-killed; ``events`` streams ``oom``."""
    script = "sleep 1; tail /dev/zero; echo survived > /dev/shm/s; sleep 300"
    cid = ketch.new_id("oom")
    assert ketch("run", "-d", "-b", str(make_bundle(["sh", "-c", script], edit=_limits(
        memory={"limit": 32 << 20, "swap": 32 << 20}))), cid).rc == 0
    events = subprocess.Popen(ketch.argv("events", "--interval", "200ms", cid),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines: list[dict] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(e["type"] == "oom" for e in lines):
            line = events.stdout.readline()
            if not line:
                break
            lines.append(json.loads(line))
        assert any(e == {"type": "oom", "id": cid} for e in lines), lines
        assert any(e["type"] == "stats" for e in lines), lines
    finally:
        events.send_signal(signal.SIGKILL)
        events.communicate(timeout=10)
    pid = ketch.state(cid)["pid"]
    assert wait_until(lambda: os.path.exists(f"/proc/{pid}/root/dev/shm/s"))  # sh went on
    stats = json.loads(ketch("events", "--stats", cid).out)["data"]["memory"]
    assert stats["usage"]["limit"] == 32 << 20
    assert stats["usage"]["max"] >= 30 << 20  # the peak reached the limit


def test_events_stream_ends_when_the_container_stops(ketch: Runtime, make_bundle) -> None:
    cid = ketch.new_id("evend")
    assert ketch("run", "-d", "-b", str(make_bundle(["sleep", "1"])), cid).rc == 0
    r = ketch("events", "--interval", "100ms", cid, timeout=20)
    assert r.rc == 0, r
    kinds = {json.loads(line)["type"] for line in r.out.splitlines()}
    assert kinds == {"stats"}, r


# -- kill --all, pause/resume ----------------------------------------------------------


def test_kill_all_signals_every_process_of_the_cgroup(runc: Runtime, ketch: Runtime,
                                                      make_bundle) -> None:
    script = "trap '' TERM; sleep 300 & sleep 300 & wait"
    bundle = make_bundle(["sh", "-c", script])
    seen = {}
    for rt in (runc, ketch):
        cid = rt.new_id("killall")
        assert rt("run", "-d", "-b", str(bundle), cid).rc == 0
        assert wait_until(lambda rt=rt, cid=cid: len(json.loads(
            rt("ps", "--format", "json", cid).out or "[]")) == 3)
        pids = json.loads(rt("ps", "--format", "json", cid).out)
        r = rt("kill", "--all", cid, "KILL")
        gone = wait_until(lambda pids=pids: not any(os.path.exists(f"/proc/{p}/stat") and
                                                    Path(f"/proc/{p}/stat").read_text().split()[2]
                                                    not in "ZX" for p in pids))
        seen[rt.name] = (r.rc, gone, wait_until(lambda rt=rt, cid=cid: rt.status(cid) == "stopped"))
        rt("delete", "-f", cid)
    assert seen["ketch"] == seen["runc"] == (0, True, True), seen


def test_delete_force_of_a_paused_container_like_runc(runc: Runtime, ketch: Runtime,
                                                      make_bundle) -> None:
    bundle = make_bundle(SLEEPER)
    seen = {}
    for rt in (runc, ketch):
        cid = rt.new_id("delpaused")
        assert rt("run", "-d", "-b", str(bundle), cid).rc == 0
        pid = rt.state(cid)["pid"]
        steps = [rt("pause", cid).rc, rt.status(cid), rt("delete", cid).rc,
                 rt("delete", "--force", cid).rc, rt.state(cid),
                 wait_until(lambda pid=pid: not os.path.exists(f"/proc/{pid}/cmdline")
                            or not Path(f"/proc/{pid}/cmdline").read_bytes()),
                 cgroup_leftovers(cid)]
        seen[rt.name] = steps
    assert seen["ketch"] == seen["runc"] == [0, "paused", 1, 0, None, True, []], seen


# -- the v2 driver on this host's real cgroup2 hierarchy --------------------------------


@pytest.fixture
def v2_cgroup(runtime_prereqs, tmp_path):
    """A fresh cgroup of our own under the cgroup2 mount (pure v2 or hybrid)."""
    import uuid

    mount = next((m for m in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")
                  if Path(m, "cgroup.controllers").exists()), None)
    if mount is None:
        pytest.skip("no cgroup2 hierarchy")
    path = Path(mount, f"kt-v2-{uuid.uuid4().hex[:10]}")
    path.mkdir()
    yield mount, path
    wait_until(lambda: not Path(path, "cgroup.procs").read_text().strip())
    path.rmdir()


def test_v2_driver_on_the_real_hierarchy(v2_cgroup) -> None:
    from ketch.runtime.cgroups.fs import CgroupManager
    from ketch.runtime.cgroups.resources import ResourceError, apply_resources
    from ketch.runtime.cgroups.stats import collect
    from ketch.runtime.cgroups.v2 import V2Driver

    mount, path = v2_cgroup
    cg = CgroupManager(path.name, {mount: str(path)})
    driver = V2Driver(mount, str(path))
    root = set(Path(mount, "cgroup.controllers").read_text().split())
    for controller in ("memory", "pids", "cpu", "io", "hugetlb"):
        assert driver.available(controller) == (controller in root)
    spec = {"linux": {"resources": {}}}
    if "hugetlb" in root and Path(path.parent, "cgroup.subtree_control").exists():
        spec["linux"]["resources"]["hugepageLimits"] = [{"pageSize": "2MB", "limit": 2 << 20}]
        apply_resources(cg, spec, pytest.fail)
        assert "hugetlb" in driver.controllers()  # enabled in the parent's subtree_control
        assert (path / "hugetlb.2MB.max").read_text().strip() == str(2 << 20)
    for group, values, controller in (("pids", {"limit": 5}, "pids"),
                                      ("memory", {"limit": 1 << 30}, "memory")):
        if controller in root:
            continue
        with pytest.raises(ResourceError, match=f"the {controller} cgroup controller is not "
                                                "available on this host"):
            apply_resources(cg, {"linux": {"resources": {group: values}}}, pytest.fail)
    # statistics from the core cpu.stat of a cgroup that ran something
    child = subprocess.Popen(["sh", "-c", "read x; i=0; while [ $i -lt 20000 ]; do "
                              "i=$((i+1)); done"], stdin=subprocess.PIPE, text=True)
    try:
        cg.add(child.pid)
        child.communicate("go\n", timeout=30)
    finally:
        child.kill()
    stats = collect(cg)
    assert stats["cpu"]["usage"]["total"] > 0 and stats["cpu"]["usage"]["user"] >= 0


def test_delete_removes_the_cgroup_of_a_crashed_create(ketch: Runtime) -> None:
    """A create killed after making the cgroup leaves <root>/<id> without state.json
    and a cgroup with the blocked init in it; delete removes both (and kills it)."""
    from ketch.runtime.cgroups.fs import CgroupManager

    cid = ketch.new_id("crash")
    planned = {m: p for m, p in CgroupManager(cid).targets().items()
               if m.endswith(("/pids", "/memory", "/freezer"))}
    state = ketch.root / cid
    state.mkdir(parents=True)
    (state / "cgroup.json").write_text(json.dumps(planned))
    leftover = subprocess.Popen(["sleep", "300"])
    try:
        for path in planned.values():
            os.makedirs(path)
            Path(path, "cgroup.procs").write_text(str(leftover.pid))
        r = ketch("delete", cid)
        assert (r.rc, r.msg) == (1, "container does not exist"), r  # runc's answer
        assert leftover.wait(timeout=10) == -signal.SIGKILL
        assert not state.exists() and not any(os.path.exists(p) for p in planned.values())
    finally:
        leftover.kill()
        for path in planned.values():
            if os.path.isdir(path):
                os.rmdir(path)


# -- device rules -------------------------------------------------------------------------


def _mknod_cap(config: dict) -> None:
    for key in ("bounding", "effective", "permitted"):
        config["process"]["capabilities"].setdefault(key, []).append("CAP_MKNOD")


def test_device_rule_denies_open_like_runc(runc: Runtime, ketch: Runtime, make_bundle) -> None:
    """The config's rules (deny all, then runc's defaults) leave block devices to mknod
    but not to open; an allow rule for one device opens it."""
    script = ("mknod /dev/kt-blk b 7 0 && echo made; head -c1 /dev/kt-blk >/dev/null 2>/dev/shm/e;"
              " echo rc=$?; sed 's/.*: //' /dev/shm/e")
    plain = make_bundle(["sh", "-c", script], edit=_mknod_cap, name="dev-plain")

    def allow_loop(config: dict) -> None:
        _mknod_cap(config)
        config["linux"]["resources"]["devices"].append(
            {"allow": True, "type": "b", "major": 7, "minor": 0, "access": "r"})

    allowed = make_bundle(["sh", "-c", script], edit=allow_loop, name="dev-allowed")
    seen = {}
    for rt in (runc, ketch):
        outs = []
        for bundle in (plain, allowed):
            cid = rt.new_id("dev")
            r = rt("run", "-b", str(bundle), cid)
            outs.append((r.rc, r.out))
            rt("delete", "-f", cid)
        seen[rt.name] = outs
    assert seen["ketch"] == seen["runc"], seen
    assert seen["ketch"][0] == (0, "made\nrc=1\nOperation not permitted\n"), seen
    assert "Operation not permitted" not in seen["ketch"][1][1], seen


def _run_in_cgroup(path: Path, script: str) -> str:
    """Output of ``sh -c script`` run inside the cgroup directory ``path``."""
    child = subprocess.Popen(["sh", "-c", "read x; " + script], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        Path(path, "cgroup.procs").write_text(str(child.pid))
        return child.communicate("go\n", timeout=30)[0]
    finally:
        child.kill()


def test_ebpf_device_filter_on_the_real_cgroup2_hierarchy(v2_cgroup, tmp_path) -> None:
    """cgroup v2's device control: the filter ketch builds, attached to a cgroup2
    directory of this host, denies what the rules deny (open and mknod)."""
    from ketch.runtime.cgroups import devices_bpf
    from ketch.runtime.cgroups.v2 import V2Driver

    mount, path = v2_cgroup
    nested = path / "rules-only"
    nested.mkdir()
    try:
        devices_bpf.attach(str(nested), [{"allow": False, "access": "rwm"},
                                         {"allow": True, "type": "c", "major": 1, "minor": 5,
                                          "access": "rw"}])
        out = _run_in_cgroup(nested, f"head -c1 /dev/zero | wc -c; head -c1 /dev/null; "
                                     f"mknod {tmp_path}/n c 1 3; echo end")
        lines = out.splitlines()
        assert lines[0] == "1" and lines[-1] == "end" and len(lines) == 4, out
        assert "/dev/null" in lines[1] and lines[1].endswith("Operation not permitted"), out
        assert lines[2] == f"mknod: {tmp_path}/n: Operation not permitted", out
    finally:
        wait_until(lambda: not (nested / "cgroup.procs").read_text().strip())
        nested.rmdir()
    # through the driver: runc's default devices are added after the config's rules
    V2Driver(mount, str(path)).set_devices([{"allow": False, "access": "rwm"}], [], pytest.fail)
    out = _run_in_cgroup(path, f"head -c1 /dev/null; mknod {tmp_path}/b b 7 0 && echo made; "
                               f"head -c1 {tmp_path}/b; echo end")
    lines = out.splitlines()
    assert lines[0] == "made" and lines[-1] == "end" and len(lines) == 3, out
    assert f"{tmp_path}/b" in lines[1] and lines[1].endswith("Operation not permitted"), out


# -- ps, pause and resume side by side ----------------------------------------------------


def test_ps_pause_resume_like_runc(runc: Runtime, ketch: Runtime, make_bundle) -> None:
    counter = ("sleep 300 & i=0; while :; do i=$((i+1)); echo $i > /dev/shm/c; "
               "sleep 0.05; done")
    bundle = make_bundle(["sh", "-c", counter])
    stopped = make_bundle(["true"])
    seen = {}
    for rt in (runc, ketch):
        cid, dead = rt.new_id("pps"), rt.new_id("ppsdead")
        assert rt("run", "-d", "-b", str(bundle), cid).rc == 0
        pid = rt.state(cid)["pid"]
        count = Path(f"/proc/{pid}/root/dev/shm/c")
        wait_until(lambda count=count: count.exists() and count.read_text().strip() != "")
        time.sleep(0.2)
        table = rt("ps", cid, "-o", "pid,comm").out.split()[1::2]  # the COMMAND column
        ps_json = sorted(json.loads(rt("ps", "--format", "json", cid).out))
        # the loop's short "sleep 0.05" may or may not be caught
        steps = [table[0], sorted(set(table[1:])), len(ps_json) in (2, 3), pid in ps_json,
                 rt("pause", cid).rc, rt.status(cid)]
        frozen = count.read_text()
        time.sleep(0.3)
        steps += [count.read_text() == frozen, (r := rt("pause", cid)).rc, r.msg,
                  len(json.loads(rt("ps", "--format", "json", cid).out)) in (2, 3),
                  rt("resume", cid).rc, rt.status(cid)]
        time.sleep(0.3)
        steps += [count.read_text() != frozen, (r := rt("resume", cid)).rc, r.msg]
        assert rt("run", "-d", "-b", str(stopped), dead).rc == 0
        wait_until(lambda rt=rt, dead=dead: rt.status(dead) == "stopped")
        steps += [(r.rc, r.msg) for r in (rt("pause", dead), rt("resume", dead),
                                          rt("ps", "--format", "json", dead))]
        seen[rt.name] = steps
        rt("delete", "-f", cid)
        rt("delete", "-f", dead)
    assert seen["ketch"] == seen["runc"], seen
    assert seen["ketch"][:7] == ["COMMAND", ["sh", "sleep"], True, True, 0, "paused", True], seen


def test_update_with_a_bad_value_is_one_line_and_changes_nothing(ketch: Runtime,
                                                                make_bundle) -> None:
    cid = ketch.new_id("updbad")
    assert ketch("run", "-d", "-b", str(make_bundle(SLEEPER, edit=_limits(
        memory={"limit": 64 << 20}))), cid).rc == 0
    state_file = ketch.root / cid / "state.json"
    before = state_file.read_text()
    for doc, message in (({"memory": {"limit": "abc"}}, "linux.resources.memory.limit: "),
                         ({"memory": 5}, "linux.resources: must be an object"),
                         ([], "invalid LinuxResources JSON in -: not an object")):
        r = ketch("update", "-r", "-", cid, input=json.dumps(doc))
        assert r.rc == 1 and len(r.err.strip().splitlines()) == 1 and message in r.msg, r
    assert state_file.read_text() == before
    mem = _memory_cgroup(ketch.state(cid)["pid"])
    assert Path(mem, "memory.limit_in_bytes").read_text().strip() == str(64 << 20)


def test_kill_all_of_a_paused_container_like_runc(runc: Runtime, ketch: Runtime,
                                                  make_bundle) -> None:
    """runc freezes, signals every process, then thaws: a paused container killed
    with --all stops, and one sent a harmless signal runs again."""
    bundle = make_bundle(["sh", "-c", "trap '' USR1; sleep 300 & wait; sleep 300"])
    seen = {}
    for rt in (runc, ketch):
        cid = rt.new_id("killpaused")
        assert rt("run", "-d", "-b", str(bundle), cid).rc == 0
        steps = [rt("pause", cid).rc, rt("kill", "--all", cid, "USR1").rc]
        wait_until(lambda rt=rt, cid=cid: rt.status(cid) != "paused", timeout=3)
        steps += [rt.status(cid), rt("pause", cid).rc, rt("kill", "--all", cid, "KILL").rc,
                  wait_until(lambda rt=rt, cid=cid: rt.status(cid) == "stopped")]
        seen[rt.name] = steps
        rt("delete", "-f", cid)
    assert seen["ketch"] == seen["runc"] == [0, 0, "running", 0, 0, True], seen


def test_nested_cgroups_path_created_and_removed_like_runc(runc: Runtime, ketch: Runtime,
                                                           make_bundle) -> None:
    import uuid

    seen = {}
    for rt in (runc, ketch):
        top = f"kt-nest-{uuid.uuid4().hex[:8]}"

        def edit(config: dict, top: str = top) -> None:
            config["linux"]["cgroupsPath"] = f"/{top}/a/b"

        cid = rt.new_id("nest")
        assert rt("run", "-d", "-b", str(make_bundle(SLEEPER, edit=edit)), cid).rc == 0
        pid = rt.state(cid)["pid"]
        inside = [_cgroup_path(pid, c) for c in ("memory", "pids", "cpu")]
        rt("delete", "-f", cid)
        left = sorted(p.replace(top, "TOP") for p in glob.glob(f"/sys/fs/cgroup/*/{top}/**",
                                                               recursive=True))
        seen[rt.name] = (inside == [f"/{top}/a/b"] * 3, left)
        _rmtree_cgroups(top)
    assert seen["ketch"] == seen["runc"], seen
    assert seen["ketch"][0] is True


def _rmtree_cgroups(top: str) -> None:
    """rmdir /sys/fs/cgroup/*/TOP and every cgroup below it (deepest first)."""
    for root in glob.glob(f"/sys/fs/cgroup/*/{top}"):
        for d, _, _ in sorted(os.walk(root), key=lambda w: -len(w[0])):
            os.rmdir(d)


def test_dot_dot_in_cgroups_path_stays_in_the_hierarchy(runc: Runtime, ketch: Runtime,
                                                        make_bundle, tmp_path: Path) -> None:
    """``..`` in ``cgroupsPath`` stops where the path starts, as runc's CleanPath:
    a naive join would mkdir outside /sys/fs/cgroup (here: under tmp_path)."""
    import uuid

    outside = tmp_path / "escape"
    outside.mkdir()
    top = f"kt-dots-{uuid.uuid4().hex[:8]}"
    climb = "../" * 12 + str(outside).lstrip("/") + f"/{top}"
    seen = {}
    for rt in (runc, ketch):
        cid = rt.new_id("dots")
        bundle = make_bundle(SLEEPER, edit=lambda c: c["linux"].update(cgroupsPath=climb))
        assert rt("run", "-d", "-b", str(bundle), cid).rc == 0
        pid = rt.state(cid)["pid"]
        seen[rt.name] = _cgroup_path(pid, "memory")
        assert list(outside.iterdir()) == [], f"{rt.name} created a directory outside"
        rt("delete", "-f", cid)
        _rmdir_up(seen[rt.name].lstrip("/"))
    assert seen["ketch"] == seen["runc"], seen
    assert seen["ketch"].endswith(str(outside) + f"/{top}"), seen


def test_cgroups_path_naming_the_root_is_refused(ketch: Runtime, make_bundle) -> None:
    """``a/../..`` cleans to the cgroup the path is relative to (the root one or
    the runtime's own), where ``kill --all`` would reach processes that are not
    the container's: one clear error, nothing created."""
    cid = ketch.new_id("rootcg")
    bundle = make_bundle(SLEEPER, edit=lambda c: c["linux"].update(cgroupsPath="a/../.."))
    r = ketch("create", "-b", str(bundle), cid)
    assert r.rc == 1 and len(r.err.strip().splitlines()) == 1, str(r)
    assert "linux.cgroupsPath" in r.msg and "cgroup" in r.msg.split(":", 1)[1], str(r)
    assert not ketch.root.exists() or os.listdir(ketch.root) == []


def _rmdir_up(rel: str) -> None:
    """rmdir /sys/fs/cgroup/*/REL and then its parents while they are empty."""
    for hierarchy in glob.glob("/sys/fs/cgroup/*/"):
        path = os.path.join(hierarchy, rel)
        while os.path.normpath(path) != os.path.normpath(hierarchy):
            try:
                os.rmdir(path)
            except OSError:
                break
            path = os.path.dirname(path)

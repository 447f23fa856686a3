"""runc's stats object (``events --stats``) from fake v1 and v2 cgroup trees."""

from __future__ import annotations

import json
from pathlib import Path

from ketch.runtime.cgroups.fs import CgroupManager
from ketch.runtime.cgroups.stats import collect, empty_stats

V1_FILES = {
    "cpuacct": {"cpuacct.usage": "3000\n", "cpuacct.usage_percpu": "1000 2000 \n",
                "cpuacct.usage_all": "cpu user system\n0 600 400\n1 1500 500\n",
                "cpuacct.stat": "user 2\nsystem 1\n"},
    "cpu": {"cpu.stat": "nr_periods 10\nnr_throttled 0\nthrottled_time 0\n"},
    "cpuset": {"cpuset.cpus": "0-2,5\n", "cpuset.mems": "0\n", "cpuset.cpu_exclusive": "0\n",
               "cpuset.sched_load_balance": "1\n", "cpuset.sched_relax_domain_level": "-1\n"},
    "memory": {"memory.stat": "cache 4096\nrss 8192\n", "memory.limit_in_bytes": "67108864\n",
               "memory.usage_in_bytes": "12288\n", "memory.max_usage_in_bytes": "20480\n",
               "memory.failcnt": "3\n", "memory.memsw.limit_in_bytes": "9223372036854771712\n",
               "memory.kmem.limit_in_bytes": "9223372036854771712\n",
               "memory.kmem.tcp.limit_in_bytes": "9223372036854771712\n"},
    "pids": {"pids.current": "4\n", "pids.max": "max\n"},
    "blkio": {"blkio.throttle.io_serviced_recursive": "8:0 Read 5\n8:0 Write 0\nTotal 5\n",
              "blkio.throttle.io_service_bytes_recursive": "8:0 Read 40960\nTotal 40960\n"},
}


def _tree(tmp_path: Path, hierarchies: dict[str, dict[str, str]]) -> CgroupManager:
    paths = {}
    for mount, files in hierarchies.items():
        d = tmp_path / mount.strip("/").replace("/", "_")
        d.mkdir(parents=True)
        for name, text in files.items():
            (d / name).write_text(text)
        paths[mount] = str(d)
    return CgroupManager("c1", paths)


def test_empty_stats_has_the_keys_go_always_prints():
    doc = json.loads(json.dumps(empty_stats()))
    assert list(doc) == ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt",
                         "network_interfaces"]
    assert doc["memory"]["kernelTCP"] == {"limit": 0, "failcnt": 0}
    assert doc["network_interfaces"] is None


def test_v1_stats(tmp_path):
    cg = _tree(tmp_path, {f"/sys/fs/cgroup/{c}": files for c, files in V1_FILES.items()})
    s = collect(cg)
    ticks = 10**9 // 100  # USER_HZ on Linux
    assert s["cpu"] == {"usage": {"total": 3000, "percpu": [1000, 2000],
                                  "percpu_kernel": [400, 500], "percpu_user": [600, 1500],
                                  "kernel": 1 * ticks, "user": 2 * ticks},
                        "throttling": {"periods": 10}}
    assert list(s["cpuset"])[:3] == ["cpus", "cpu_exclusive", "mems"]
    assert s["cpuset"]["cpus"] == [0, 1, 2, 5] and s["cpuset"]["sched_relax_domain_level"] == -1
    mem = s["memory"]
    assert list(mem) == ["cache", "usage", "swap", "kernel", "kernelTCP", "raw"]
    assert mem["usage"] == {"limit": 67108864, "usage": 12288, "max": 20480, "failcnt": 3}
    assert mem["kernelTCP"] == {"limit": 9223372036854771712, "failcnt": 0}
    assert mem["raw"] == {"cache": 4096, "rss": 8192} and mem["cache"] == 4096
    assert s["pids"] == {"current": 4}  # "max" is omitted, as runc does
    assert s["blkio"] == {
        "ioServiceBytesRecursive": [{"major": 8, "op": "Read", "value": 40960}],
        "ioServicedRecursive": [{"major": 8, "op": "Read", "value": 5}, {"major": 8, "op": "Write"}]}


def test_v2_stats(tmp_path):
    cg = _tree(tmp_path, {"/sys/fs/cgroup": {
        "cgroup.controllers": "cpu memory pids io hugetlb\n",
        "cpu.stat": "usage_usec 15\nuser_usec 10\nsystem_usec 5\nnr_periods 2\nnr_throttled 1\n"
                    "throttled_usec 7\n",
        "memory.current": "4096\n", "memory.max": "max\n", "memory.peak": "8192\n",
        "memory.events": "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n",
        "memory.swap.current": "0\n", "memory.swap.max": "max\n",
        "memory.stat": "anon 1024\nfile 2048\n",
        "pids.current": "3\n", "pids.max": "20\n",
        "io.stat": "8:16 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
        "hugetlb.2MB.current": "0\n", "hugetlb.2MB.events": "max 0\n"}})
    s = collect(cg)
    assert s["cpu"] == {"usage": {"total": 15000, "kernel": 5000, "user": 10000},
                        "throttling": {"periods": 2, "throttledPeriods": 1, "throttledTime": 7000}}
    assert s["memory"]["usage"] == {"limit": (1 << 64) - 1, "usage": 4096, "max": 8192,
                                    "failcnt": 2}
    assert s["memory"]["cache"] == 2048
    assert s["pids"] == {"current": 3, "limit": 20}
    assert s["blkio"] == {"ioServiceBytesRecursive": [{"major": 8, "minor": 16, "op": "Read",
                                                       "value": 4096},
                                                      {"major": 8, "minor": 16, "op": "Write"}],
                          "ioServicedRecursive": [{"major": 8, "minor": 16, "op": "Read",
                                                   "value": 1},
                                                  {"major": 8, "minor": 16, "op": "Write"}]}
    if Path("/sys/kernel/mm/hugepages/hugepages-2048kB").exists():
        assert s["hugetlb"]["2MB"] == {"failcnt": 0}


def test_v2_oom_watcher_counts_new_oom_kills(tmp_path):
    from ketch.runtime.cgroups.stats import OomWatcher

    events = tmp_path / "memory.events"
    events.write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
    (tmp_path / "cgroup.controllers").write_text("memory\n")
    watcher = OomWatcher(CgroupManager("c1", {"/sys/fs/cgroup": str(tmp_path)}))
    try:
        assert watcher.version == 2
        assert watcher.wait(0) == 0  # kills before the watcher started do not count
        events.write_text("low 0\nhigh 0\nmax 9\noom 3\noom_kill 3\n")
        assert watcher.wait(0) == 2
        assert watcher.wait(0) == 0
    finally:
        watcher.close()

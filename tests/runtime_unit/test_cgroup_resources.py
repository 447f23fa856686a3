"""linux.resources written into a fake cgroup tree (v1 and v2 file names and values)."""

from __future__ import annotations

from pathlib import Path

import pytest

import ketch.runtime.cgroups.resources as r
from ketch.runtime.cgroups.fs import CgroupManager
from ketch.runtime.cgroups.resources import ResourceError, apply_resources, cpu_weight


def _tree(tmp_path: Path, files: dict[str, list[str]]) -> CgroupManager:
    paths = {}
    for mount, names in files.items():
        d = tmp_path / mount.strip("/").replace("/", "_")
        d.mkdir()
        for n in names:
            (d / n).write_text("")
        paths[mount] = str(d)
    return CgroupManager("c1", paths)


def _read(cg: CgroupManager, mount: str, name: str) -> str:
    return Path(cg.paths[mount], name).read_text()


def test_cpu_v1_and_cpuset(tmp_path):
    cg = _tree(tmp_path, {"/sys/fs/cgroup/cpu,cpuacct": ["cpu.shares", "cpu.cfs_period_us",
                                                          "cpu.cfs_quota_us"],
                          "/sys/fs/cgroup/cpuset": ["cpuset.cpus", "cpuset.mems"]})
    spec = {"linux": {"resources": {"cpu": {"shares": 512, "quota": 50000, "period": 100000,
                                            "cpus": "0", "mems": "0"}}}}
    apply_resources(cg, spec, pytest.fail)
    assert _read(cg, "/sys/fs/cgroup/cpu,cpuacct", "cpu.cfs_quota_us") == "50000"
    assert _read(cg, "/sys/fs/cgroup/cpu,cpuacct", "cpu.shares") == "512"
    assert _read(cg, "/sys/fs/cgroup/cpuset", "cpuset.cpus") == "0"


def test_cpu_v2_weight_and_max(tmp_path):
    cg = _tree(tmp_path, {"/sys/fs/cgroup": ["cpu.max", "cpu.weight", "pids.max", "memory.max"]})
    spec = {"linux": {"resources": {"cpu": {"shares": 1024, "quota": 20000},
                                    "pids": {"limit": 10}, "memory": {"limit": 1 << 30}}}}
    apply_resources(cg, spec, pytest.fail)
    assert _read(cg, "/sys/fs/cgroup", "cpu.weight") == "100"
    assert _read(cg, "/sys/fs/cgroup", "cpu.max") == "20000 100000"
    assert _read(cg, "/sys/fs/cgroup", "pids.max") == "10"
    assert _read(cg, "/sys/fs/cgroup", "memory.max") == str(1 << 30)


@pytest.mark.parametrize(("shares", "weight"), [(2, 1), (1024, 100), (262144, 10000)])
def test_cpu_weight_conversion(shares, weight):
    assert cpu_weight(shares) == weight


def test_unsupported_resources_are_named_in_warnings(tmp_path):
    cg = _tree(tmp_path, {"/sys/fs/cgroup/memory": ["memory.limit_in_bytes"]})
    warnings: list[str] = []
    apply_resources(cg, {"linux": {"resources": {"blockIO": {"weight": 10},
                                                 "memory": {"limit": 1, "swap": 2}}}},
                    warnings.append)
    assert warnings == ["linux.resources.blockIO is not applied by this version of ketch",
                        "linux.resources.memory.swap is not applied by this version of ketch"]


def test_device_rules_v1_in_order_then_defaults(tmp_path):
    cg = _tree(tmp_path, {"/sys/fs/cgroup/devices": ["devices.allow", "devices.deny"]})
    written: list[tuple[str, str]] = []
    original = r._write
    r._write = lambda d, n, v, res: written.append((n, v))
    try:
        apply_resources(cg, {"linux": {"resources": {"devices": [{"allow": False, "access": "rwm"}]},
                                       "devices": [{"path": "/dev/fifo", "type": "p"},
                                                   {"path": "/dev/x", "type": "c", "major": 10,
                                                    "minor": 200}]}}, pytest.fail)
    finally:
        r._write = original
    assert written[0] == ("devices.deny", "a")
    assert written[1] == ("devices.allow", "c 10:200 rwm")  # the fifo gets no rule
    assert ("devices.allow", "c 1:3 rwm") in written


def test_rejected_value_names_resource_and_file(tmp_path):
    cg = _tree(tmp_path, {"/sys/fs/cgroup/pids": []})
    Path(cg.paths["/sys/fs/cgroup/pids"], "pids.max").mkdir()  # writing it fails
    with pytest.raises(ResourceError, match=r"pids\.limit: cannot write '5' to .*pids\.max"):
        apply_resources(cg, {"linux": {"resources": {"pids": {"limit": 5}}}}, pytest.fail)

"""linux.resources written into a fake cgroup tree: v1 and v2 file names, values,
write order, the v1 <-> v2 conversions, routing on hybrid hosts and the errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ketch.runtime import syscalls
from ketch.runtime.cgroups import driver as drv
from ketch.runtime.cgroups.convert import ConversionError, cpu_weight, io_weight, swap_v2
from ketch.runtime.cgroups.fs import CgroupManager
from ketch.runtime.cgroups.resources import (
    ResourceError,
    apply_resources,
    drivers,
    update_resources,
)
from ketch.runtime.syscalls.fake import RecordingSyscalls

V2 = "/sys/fs/cgroup"


def _tree(tmp_path: Path, files: dict[str, list[str]]) -> CgroupManager:
    """One directory per hierarchy (keyed by mount point) holding empty files."""
    paths = {}
    for mount, names in files.items():
        d = tmp_path / mount.strip("/").replace("/", "_")
        d.mkdir(parents=True)
        for n in names:
            (d / n).write_text("")
        paths[mount] = str(d)
    return CgroupManager("c1", paths)


def _read(cg: CgroupManager, mount: str, name: str) -> str:
    return Path(cg.paths[mount], name).read_text()


@pytest.fixture(autouse=True)
def fake_syscalls(monkeypatch: pytest.MonkeyPatch) -> RecordingSyscalls:
    """The v2 device filter is loaded through the syscalls seam: record it instead."""
    fake = RecordingSyscalls()
    monkeypatch.setattr(syscalls, "linux", lambda: fake)
    return fake


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every (file name, value) written through a driver, in order."""
    seen: list[tuple[str, str]] = []
    real = drv.Driver.write

    def record(self: drv.Driver, name: str, value: str, resource: str) -> None:
        seen.append((name, value))
        real(self, name, value, resource)

    monkeypatch.setattr(drv.Driver, "write", record)
    return seen


def _res(**resources: object) -> dict:
    return {"linux": {"resources": resources}}


# -- conversions ------------------------------------------------------------------------


@pytest.mark.parametrize(("shares", "weight"), [(0, 0), (2, 1), (1024, 100), (262144, 10000)])
def test_cpu_weight_conversion(shares, weight):
    assert cpu_weight(shares) == weight


@pytest.mark.parametrize(("blkio", "io"), [(0, 0), (10, 1), (500, 4950), (1000, 10000)])
def test_io_weight_conversion(blkio, io):
    assert io_weight(blkio) == io


@pytest.mark.parametrize(("swap", "limit", "v2"), [
    (0, 0, 0), (0, -1, -1), (-1, 100, -1), (300, 100, 200), (100, 100, 0), (0, 100, 0)])
def test_swap_conversion(swap, limit, v2):
    assert swap_v2(swap, limit) == v2


@pytest.mark.parametrize(("swap", "limit", "message"), [
    (100, 0, "without memory limit"), (50, 100, "should be >= memory limit")])
def test_swap_conversion_errors(swap, limit, message):
    with pytest.raises(ConversionError, match=message):
        swap_v2(swap, limit)


# -- cpu ------------------------------------------------------------------------------


def test_cpu_v1_and_cpuset(tmp_path):
    cg = _tree(tmp_path, {"/sys/fs/cgroup/cpu,cpuacct": ["cpu.shares", "cpu.cfs_period_us",
                                                          "cpu.cfs_quota_us", "cpu.idle"],
                          "/sys/fs/cgroup/cpuset": ["cpuset.cpus", "cpuset.mems"]})
    spec = _res(cpu={"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0",
                     "idle": 1})
    apply_resources(cg, spec, pytest.fail)
    assert _read(cg, "/sys/fs/cgroup/cpu,cpuacct", "cpu.cfs_quota_us") == "50000"
    assert _read(cg, "/sys/fs/cgroup/cpu,cpuacct", "cpu.shares") == "512"
    assert _read(cg, "/sys/fs/cgroup/cpu,cpuacct", "cpu.idle") == "1"
    assert _read(cg, "/sys/fs/cgroup/cpuset", "cpuset.cpus") == "0"


def test_cpu_v1_period_before_quota_then_realtime(tmp_path, writes):
    cg = _tree(tmp_path, {"/sys/fs/cgroup/cpu": ["cpu.cfs_period_us", "cpu.cfs_quota_us",
                                                 "cpu.rt_period_us", "cpu.rt_runtime_us"]})
    apply_resources(cg, _res(cpu={"quota": 5000, "period": 10000, "realtimePeriod": 1000000,
                                  "realtimeRuntime": 950000}), pytest.fail)
    assert writes == [("cpu.cfs_period_us", "10000"), ("cpu.cfs_quota_us", "5000"),
                      ("cpu.rt_period_us", "1000000"), ("cpu.rt_runtime_us", "950000")]


def test_cpu_v1_shares_clamped_by_kernel_is_an_error(tmp_path, monkeypatch):
    cg = _tree(tmp_path, {"/sys/fs/cgroup/cpu": ["cpu.shares"]})
    monkeypatch.setattr(drv.Driver, "read_int", lambda self, name: 262144)
    with pytest.raises(ResourceError, match="the maximum allowed cpu-shares is 262144"):
        apply_resources(cg, _res(cpu={"shares": 500000}), pytest.fail)


def test_cpu_v2_weight_and_max(tmp_path):
    cg = _tree(tmp_path, {V2: ["cpu.max", "cpu.weight", "pids.max", "memory.max"]})
    apply_resources(cg, _res(cpu={"shares": 1024, "quota": 20000}, pids={"limit": 10},
                             memory={"limit": 1 << 30}), pytest.fail)
    assert _read(cg, V2, "cpu.weight") == "100"
    assert _read(cg, V2, "cpu.max") == "20000"  # the period is left as it is, like runc
    assert _read(cg, V2, "pids.max") == "10"
    assert _read(cg, V2, "memory.max") == str(1 << 30)
    apply_resources(cg, _res(cpu={"quota": -1, "period": 50000}), pytest.fail)
    assert _read(cg, V2, "cpu.max") == "max 50000"


def test_cpu_v2_realtime_is_refused(tmp_path):
    cg = _tree(tmp_path, {V2: ["cpu.max"]})
    with pytest.raises(ResourceError, match="realtime scheduling is not supported on cgroup v2"):
        apply_resources(cg, _res(cpu={"realtimeRuntime": 100}), pytest.fail)


# -- memory ---------------------------------------------------------------------------

_MEM_V1 = ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes",
           "memory.oom_control", "memory.swappiness", "memory.usage_in_bytes"]


def test_memory_v1_swap_order_follows_the_current_limit(tmp_path, writes):
    cg = _tree(tmp_path, {"/sys/fs/cgroup/memory": _MEM_V1})
    mem = Path(cg.paths["/sys/fs/cgroup/memory"])
    (mem / "memory.limit_in_bytes").write_text("1000")
    apply_resources(cg, _res(memory={"limit": 4000, "swap": 8000}), pytest.fail)
    assert writes == [("memory.memsw.limit_in_bytes", "8000"), ("memory.limit_in_bytes", "4000")]
    writes.clear()
    apply_resources(cg, _res(memory={"limit": 2000, "swap": 3000}), pytest.fail)
    assert writes == [("memory.limit_in_bytes", "2000"), ("memory.memsw.limit_in_bytes", "3000")]
    writes.clear()
    apply_resources(cg, _res(memory={"limit": -1}), pytest.fail)  # unlimited: memsw too
    assert writes == [("memory.memsw.limit_in_bytes", "-1"), ("memory.limit_in_bytes", "-1")]


def test_memory_v1_other_fields(tmp_path, writes):
    cg = _tree(tmp_path, {"/sys/fs/cgroup/memory": _MEM_V1})
    warnings: list[str] = []
    apply_resources(cg, _res(memory={"reservation": 100, "disableOOMKiller": True,
                                     "swappiness": 10, "kernel": 1 << 20}), warnings.append)
    assert writes == [("memory.soft_limit_in_bytes", "100"), ("memory.oom_control", "1"),
                      ("memory.swappiness", "10")]
    assert warnings == ["linux.resources.memory.kernel and kernelTCP are ignored, as runc does"]
    with pytest.raises(ResourceError, match=r"swappiness: invalid value 101 \(valid range is 0-100\)"):
        apply_resources(cg, _res(memory={"swappiness": 101}), pytest.fail)


def test_memory_check_before_update(tmp_path):
    cg = _tree(tmp_path, {"/sys/fs/cgroup/memory": _MEM_V1})
    Path(cg.paths["/sys/fs/cgroup/memory"], "memory.usage_in_bytes").write_text("5000\n")
    with pytest.raises(ResourceError, match="rejecting memory limit 4000 below the current usage 5000"):
        update_resources(cg, {"memory": {"limit": 4000, "checkBeforeUpdate": True}}, pytest.fail)
    update_resources(cg, {"memory": {"limit": 4000}}, pytest.fail)  # without the check: written
    assert _read(cg, "/sys/fs/cgroup/memory", "memory.limit_in_bytes") == "4000"


def test_memory_v2_swap_is_converted(tmp_path, writes):
    cg = _tree(tmp_path, {V2: ["memory.max", "memory.swap.max", "memory.low"]})
    apply_resources(cg, _res(memory={"limit": 1000, "swap": 3000, "reservation": 500}),
                    pytest.fail)
    assert writes == [("memory.swap.max", "2000"), ("memory.max", "1000"), ("memory.low", "500")]
    writes.clear()
    apply_resources(cg, _res(memory={"limit": 1000, "swap": 1000}), pytest.fail)
    assert writes == [("memory.swap.max", "0"), ("memory.max", "1000")]
    with pytest.raises(ResourceError, match=r"memory\.swap: unable to set swap limit without memory"):
        apply_resources(cg, _res(memory={"swap": 1000}), pytest.fail)


# -- block I/O ----------------------------------------------------------------------------

_BLKIO = {"weight": 500, "leafWeight": 300,
          "weightDevice": [{"major": 8, "minor": 0, "weight": 600, "leafWeight": 100}],
          "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
          "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}]}


def test_blkio_v1(tmp_path, writes):
    cg = _tree(tmp_path, {"/sys/fs/cgroup/blkio": [
        "blkio.weight", "blkio.leaf_weight", "blkio.weight_device", "blkio.leaf_weight_device",
        "blkio.throttle.read_bps_device", "blkio.throttle.write_iops_device"]})
    apply_resources(cg, _res(blockIO=_BLKIO), pytest.fail)
    assert writes == [("blkio.weight", "500"), ("blkio.leaf_weight", "300"),
                      ("blkio.weight_device", "8:0 600"), ("blkio.leaf_weight_device", "8:0 100"),
                      ("blkio.throttle.read_bps_device", "8:0 1048576"),
                      ("blkio.throttle.write_iops_device", "8:16 300")]


def test_blkio_v1_missing_weight_file_names_it(tmp_path):
    cg = _tree(tmp_path, {"/sys/fs/cgroup/blkio": ["blkio.throttle.read_bps_device"]})
    with pytest.raises(ResourceError, match=r"^linux.resources.blockIO.weight: cannot write '500' "
                                            r"to .*/blkio.weight: No such file or directory$"):
        apply_resources(cg, _res(blockIO={"weight": 500}), pytest.fail)


def test_io_v2(tmp_path, writes):
    cg = _tree(tmp_path, {V2: ["io.weight", "io.max"]})
    apply_resources(cg, _res(blockIO={k: v for k, v in _BLKIO.items()
                                      if k not in ("leafWeight", "weightDevice")}), pytest.fail)
    assert writes == [("io.weight", "4950"), ("io.max", "8:0 rbps=1048576"),
                      ("io.max", "8:16 wiops=300")]


def test_io_v2_with_bfq_keeps_the_v1_range(tmp_path, writes):
    cg = _tree(tmp_path, {V2: ["io.bfq.weight", "io.max"]})
    apply_resources(cg, _res(blockIO={"weight": 500, "weightDevice": [
        {"major": 8, "minor": 0, "weight": 600}]}), pytest.fail)
    assert writes == [("io.bfq.weight", "500"), ("io.bfq.weight", "8:0 600")]


# -- hugetlb, network, rdma, unified ------------------------------------------------------


def test_hugetlb_v1_and_v2_names(tmp_path, writes):
    cg = _tree(tmp_path, {"/sys/fs/cgroup/hugetlb": ["hugetlb.2MB.limit_in_bytes",
                                                     "hugetlb.2MB.rsvd.limit_in_bytes"]})
    apply_resources(cg, _res(hugepageLimits=[{"pageSize": "2MB", "limit": 4194304}]), pytest.fail)
    cg2 = _tree(tmp_path / "v2", {V2: ["hugetlb.2MB.max"]})
    apply_resources(cg2, _res(hugepageLimits=[{"pageSize": "2MB", "limit": 4194304}]), pytest.fail)
    assert writes == [("hugetlb.2MB.limit_in_bytes", "4194304"),
                      ("hugetlb.2MB.rsvd.limit_in_bytes", "4194304"),
                      ("hugetlb.2MB.max", "4194304")]
    with pytest.raises(ResourceError, match="page size 3MB is not supported by this host"):
        apply_resources(cg2, _res(hugepageLimits=[{"pageSize": "3MB", "limit": 1}]), pytest.fail)


def test_network_v1(tmp_path, writes):
    cg = _tree(tmp_path, {"/sys/fs/cgroup/net_cls,net_prio": ["net_cls.classid",
                                                               "net_prio.ifpriomap"]})
    apply_resources(cg, _res(network={"classID": 1048577, "priorities": [
        {"name": "eth0", "priority": 5}, {"name": "lo", "priority": 1}]}), pytest.fail)
    assert writes == [("net_cls.classid", "1048577"), ("net_prio.ifpriomap", "eth0 5"),
                      ("net_prio.ifpriomap", "lo 1")]


def test_rdma(tmp_path, writes):
    cg = _tree(tmp_path, {"/sys/fs/cgroup/rdma": ["rdma.max"]})
    apply_resources(cg, _res(rdma={"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}}), pytest.fail)
    assert writes == [("rdma.max", "mlx5_1 hca_handle=3 hca_object=10000")]


def test_unified_v2_and_its_errors(tmp_path, writes):
    cg = _tree(tmp_path, {V2: ["memory.high", "memory.max"]})
    apply_resources(cg, _res(unified={"memory.high": "1000000"}), pytest.fail)
    assert _read(cg, V2, "memory.high") == "1000000"
    with pytest.raises(ResourceError, match="the io controller is not available"):
        apply_resources(cg, _res(unified={"io.weight": "100"}), pytest.fail)
    with pytest.raises(ResourceError, match=r"invalid key '\.\./x\.y'"):
        apply_resources(cg, _res(unified={"../x.y": "1"}), pytest.fail)
    v1 = _tree(tmp_path / "v1", {"/sys/fs/cgroup/memory": ["memory.limit_in_bytes"]})
    with pytest.raises(ResourceError, match="unified: needs a cgroup v2 hierarchy"):
        apply_resources(v1, _res(unified={"memory.high": "1"}), pytest.fail)


# -- routing and errors ---------------------------------------------------------------------


def test_missing_controller_is_an_error_only_when_asked(tmp_path):
    cg = _tree(tmp_path, {"/sys/fs/cgroup/memory": ["memory.limit_in_bytes"]})
    apply_resources(cg, _res(hugepageLimits=[], network={}, pids={}), pytest.fail)  # unset: silent
    with pytest.raises(ResourceError, match=r"^linux.resources.hugepageLimits: the hugetlb cgroup "
                                            r"controller is not available on this host$"):
        apply_resources(cg, _res(hugepageLimits=[{"pageSize": "2MB", "limit": 1}]), pytest.fail)
    with pytest.raises(ResourceError, match=r"network\.classID: the net_cls cgroup controller"):
        apply_resources(cg, _res(network={"classID": 1}), pytest.fail)


def test_hybrid_routes_to_v2_and_enables_the_controller(tmp_path):
    """hugetlb only on the cgroup2 mount: enabled in subtree_control of the ancestors."""
    unified = tmp_path / "unified"
    (unified / "parent" / "c1").mkdir(parents=True)
    (unified / "cgroup.controllers").write_text("hugetlb\n")
    for d in (unified, unified / "parent"):
        (d / "cgroup.subtree_control").write_text("")
    (unified / "parent" / "cgroup.controllers").write_text("")
    (unified / "parent" / "c1" / "cgroup.controllers").write_text("")
    (unified / "parent" / "c1" / "hugetlb.2MB.max").write_text("")
    mem = tmp_path / "memory"
    mem.mkdir()
    (mem / "memory.limit_in_bytes").write_text("")
    cg = CgroupManager("c1", {"/sys/fs/cgroup/memory": str(mem),
                              str(unified): str(unified / "parent" / "c1")})
    assert [d.version for d in drivers(cg)] == [1, 2]
    apply_resources(cg, _res(memory={"limit": 100},
                             hugepageLimits=[{"pageSize": "2MB", "limit": 2097152}]), pytest.fail)
    assert (mem / "memory.limit_in_bytes").read_text() == "100"
    assert (unified / "cgroup.subtree_control").read_text() == "+hugetlb"
    assert (unified / "parent" / "cgroup.subtree_control").read_text() == "+hugetlb"
    assert (unified / "parent" / "c1" / "hugetlb.2MB.max").read_text() == "2097152"


def test_unknown_keys_are_named_in_warnings(tmp_path):
    cg = _tree(tmp_path, {"/sys/fs/cgroup/memory": ["memory.limit_in_bytes"]})
    warnings: list[str] = []
    apply_resources(cg, _res(intelRdt={"x": 1}, memory={"limit": 1, "bogus": 2}), warnings.append)
    assert warnings == ["linux.resources.intelRdt is not applied by this version of ketch",
                        "linux.resources.memory.bogus is not applied by this version of ketch"]


def test_device_rules_v1_in_order_then_defaults(tmp_path, writes):
    cg = _tree(tmp_path, {"/sys/fs/cgroup/devices": ["devices.allow", "devices.deny"]})
    apply_resources(cg, {"linux": {"resources": {"devices": [{"allow": False, "access": "rwm"}]},
                                   "devices": [{"path": "/dev/fifo", "type": "p"},
                                               {"path": "/dev/x", "type": "c", "major": 10,
                                                "minor": 200}]}}, pytest.fail)
    assert writes[0] == ("devices.deny", "a")
    assert writes[1] == ("devices.allow", "c 10:200 rwm")  # the fifo gets no rule
    assert ("devices.allow", "c 1:3 rwm") in writes


def test_rejected_value_names_resource_and_file(tmp_path):
    cg = _tree(tmp_path, {"/sys/fs/cgroup/pids": []})
    Path(cg.paths["/sys/fs/cgroup/pids"], "pids.max").mkdir()  # writing it fails
    with pytest.raises(ResourceError, match=r"pids\.limit: cannot write '5' to .*pids\.max"):
        apply_resources(cg, _res(pids={"limit": 5}), pytest.fail)


def test_v2_device_rules_become_an_attached_ebpf_filter(tmp_path, fake_syscalls):
    cg = _tree(tmp_path, {V2: ["pids.max"]})
    apply_resources(cg, {"linux": {"resources": {"devices": [{"allow": False, "access": "rwm"}]}}},
                    pytest.fail)
    assert fake_syscalls.names() == ["bpf_prog_load", "bpf_prog_attach"]
    assert fake_syscalls.calls[0][1] == syscalls.BPF_PROG_TYPE_CGROUP_DEVICE
    update_resources(cg, {"pids": {"limit": 3}}, pytest.fail)  # update never touches devices
    assert len(fake_syscalls.calls) == 2


def test_v2_device_filter_refused_is_one_line(tmp_path, fake_syscalls):
    fake_syscalls.fail["bpf_prog_load"] = 22
    cg = _tree(tmp_path, {V2: ["pids.max"]})
    with pytest.raises(ResourceError, match=r"^linux.resources.devices: cannot attach the eBPF "
                                            r"device filter to .*: bpf_prog_load: Invalid argument$"):
        apply_resources(cg, {"linux": {"resources": {}}}, pytest.fail)

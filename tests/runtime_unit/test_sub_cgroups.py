"""``exec --cgroup``: the container's cgroup paths with sub-cgroups joined (runc 1.1),
on cgroup v1 (per-controller keys) and v2 (only the one-path form), without a host."""

from __future__ import annotations

import pytest

from ketch.runtime.cgroups import fs
from ketch.runtime.cgroups.fs import CgroupJoinError, CgroupManager, Hierarchy
from ketch.runtime.errors import ProcessError

V1 = [Hierarchy("/sys/fs/cgroup/cpu,cpuacct", "/", ("cpu", "cpuacct"), False),
      Hierarchy("/sys/fs/cgroup/pids", "/", ("pids",), False),
      Hierarchy("/sys/fs/cgroup/systemd", "/", ("name=systemd",), False),
      Hierarchy("/sys/fs/cgroup/unified", "/", (), True)]
V2 = [Hierarchy("/sys/fs/cgroup", "/", (), True)]


def _manager(monkeypatch, hierarchies: list[Hierarchy]) -> CgroupManager:
    monkeypatch.setattr(fs, "hierarchies", lambda: hierarchies)
    return CgroupManager("c1", {h.mount_point: h.mount_point + "/c1" for h in hierarchies})


def test_v1_controllers_pick_their_hierarchy_and_the_bare_path_takes_every_one(monkeypatch):
    m = _manager(monkeypatch, V1)
    sub = m.sub_cgroups({"cpuacct": "a", "name=systemd": "/b"})
    assert sub.paths == {"/sys/fs/cgroup/cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct/c1/a",
                         "/sys/fs/cgroup/pids": "/sys/fs/cgroup/pids/c1",
                         "/sys/fs/cgroup/systemd": "/sys/fs/cgroup/systemd/c1/b",
                         "/sys/fs/cgroup/unified": "/sys/fs/cgroup/unified/c1"}
    assert set(m.sub_cgroups({"": "x/y"}).paths.values()) == {
        f"{h.mount_point}/c1/x/y" for h in V1}
    assert m.paths["/sys/fs/cgroup/pids"] == "/sys/fs/cgroup/pids/c1"  # unchanged


def test_v2_knows_no_controller_names(monkeypatch):
    m = _manager(monkeypatch, V2)
    assert m.sub_cgroups({"": "s"}).paths == {"/sys/fs/cgroup": "/sys/fs/cgroup/c1/s"}
    with pytest.raises(ProcessError) as info:
        m.sub_cgroups({"pids": "s"})
    assert str(info.value) == ("unable to create new parent process: unknown controller pids "
                               "in SubCgroupPaths")


@pytest.mark.parametrize("path", ["..", "a/../..", "../c1x", "/../.."])
def test_paths_leading_out_of_the_container_cgroup_are_refused(monkeypatch, path):
    m = _manager(monkeypatch, V2)
    with pytest.raises(ProcessError) as info:
        m.sub_cgroups({"": path})
    assert str(info.value) == f"unable to create new parent process: {path} is not a sub cgroup path"


def test_joining_a_missing_sub_cgroup_names_pid_and_file(monkeypatch, tmp_path):
    monkeypatch.setattr(fs, "hierarchies", lambda: V2)
    (tmp_path / "c1").mkdir()
    sub = CgroupManager("c1", {"/sys/fs/cgroup": str(tmp_path / "c1")}).sub_cgroups({"": "nope"})
    with pytest.raises(CgroupJoinError) as info:
        sub.add(42)
    assert str(info.value) == (f"error adding pid 42 to cgroups: failed to write 42: openat2 "
                               f"{tmp_path}/c1/nope/cgroup.procs: no such file or directory")

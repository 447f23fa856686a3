"""Write ``linux.resources`` into the container's cgroup, on v1, v2 and hybrid hosts.

runtime-spec config-linux.md "Control groups": memory, cpu, pids, blockIO,
hugepageLimits, network, devices, rdma and unified. Each group the config
sets is routed to the driver of the hierarchy that has its controller
(``ketch.runtime.cgroups.v1`` / ``v2``): a v1 hierarchy first, else the
unified hierarchy, whose controller is then enabled in the ancestors'
``cgroup.subtree_control`` (a hybrid host such as one with v1 controllers and
hugetlb only on cgroup2). A group the config sets whose controller exists
nowhere is an error naming it; groups left unset are never looked at. Keys
this runtime does not know are reported with a warning, never dropped
silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from ketch.runtime.cgroups.convert import cpu_weight
from ketch.runtime.cgroups.driver import Driver, ResourceError, Warn
from ketch.runtime.cgroups.fs import CgroupManager
from ketch.runtime.cgroups.v1 import V1Driver
from ketch.runtime.cgroups.v2 import V2Driver

__all__ = ["ResourceError", "apply_resources", "cpu_weight", "drivers", "update_resources"]

GROUPS = {"memory", "cpu", "pids", "blockIO", "hugepageLimits", "network", "devices",
          "rdma", "unified"}
_MEMORY_KEYS = {"limit", "reservation", "swap", "kernel", "kernelTCP", "swappiness",
                "disableOOMKiller", "useHierarchy", "checkBeforeUpdate"}
_CPU_KEYS = {"shares", "quota", "burst", "period", "realtimeRuntime", "realtimePeriod", "idle"}
_CPUSET_KEYS = {"cpus", "mems"}


def is_v2_path(mount_point: str, path: str) -> bool:
    """True when the directory belongs to a cgroup2 hierarchy."""
    return (os.path.exists(os.path.join(path, "cgroup.controllers"))
            or os.path.basename(mount_point) in ("cgroup", "unified"))


def drivers(cgroup: CgroupManager) -> list[Driver]:
    """One driver per hierarchy the container's cgroup lives in, v1 ones first."""
    found: list[Driver] = [V2Driver(m, p) if is_v2_path(m, p) else V1Driver(m, p)
                           for m, p in cgroup.paths.items()]
    return sorted(found, key=lambda d: d.version)


def _pick(found: Iterable[Driver], v1_name: str | None, v2_name: str | None) -> Driver | None:
    found = list(found)
    for d in found:
        if d.version == 1 and v1_name and v1_name in d.controllers():
            return d
    for d in found:
        if d.version == 2 and v2_name and d.available(v2_name):
            d.enable(v2_name)
            return d
    return None


def _need(found: list[Driver], resource: str, v1_name: str | None,
          v2_name: str | None) -> Driver:
    d = _pick(found, v1_name, v2_name)
    if d is None:
        name = v1_name or v2_name
        if v1_name and v2_name and v1_name != v2_name:
            name = f"{v1_name} (v1) / {v2_name} (v2)"
        raise ResourceError(f"linux.resources.{resource}: the {name} cgroup controller is "
                            "not available on this host")
    return d


def _set(values: dict, keys: set[str]) -> dict:
    return {k: v for k, v in values.items() if k in keys and v is not None}


def apply_resources(cgroup: CgroupManager, spec: dict, warn: Warn) -> None:
    """Write ``spec``'s ``linux.resources`` into ``cgroup`` (at create).

    Raises ``ResourceError`` naming the resource (and the file when the kernel
    refused a value); unknown keys go to ``warn(message)``.
    """
    linux = spec.get("linux") or {}
    _apply(drivers(cgroup), linux.get("resources") or {}, linux.get("devices") or [],
           warn, update=False)


def update_resources(cgroup: CgroupManager, resources: dict, warn: Warn) -> None:
    """Apply a LinuxResources object to a running container (runc ``update``);
    ``memory.checkBeforeUpdate`` refuses a limit below the current usage.
    Raises ``ResourceError``."""
    _apply(drivers(cgroup), {k: v for k, v in resources.items() if k != "devices"}, [],
           warn, update=True)


def _apply(found: list[Driver], resources: dict, devices: list[dict], warn: Warn,
           update: bool) -> None:
    for key in sorted(set(resources) - GROUPS):
        warn(f"linux.resources.{key} is not applied by this version of ketch")
    memory = resources.get("memory") or {}
    for key in sorted(set(memory) - _MEMORY_KEYS):
        warn(f"linux.resources.memory.{key} is not applied by this version of ketch")
    if any(v is not None and v is not False for k, v in memory.items()
           if k in _MEMORY_KEYS - {"checkBeforeUpdate"}):
        _need(found, "memory", "memory", "memory").set_memory(memory, warn, update)
    cpu = resources.get("cpu") or {}
    for key in sorted(set(cpu) - _CPU_KEYS - _CPUSET_KEYS):
        warn(f"linux.resources.cpu.{key} is not applied by this version of ketch")
    if _set(cpu, _CPU_KEYS):
        _need(found, "cpu", "cpu", "cpu").set_cpu(_set(cpu, _CPU_KEYS), warn)
    if any(cpu.get(k) for k in _CPUSET_KEYS):
        _need(found, "cpu.cpus", "cpuset", "cpuset").set_cpuset(_set(cpu, _CPUSET_KEYS))
    pids = resources.get("pids") or {}
    if pids.get("limit") is not None:
        _need(found, "pids", "pids", "pids").set_pids(pids)
    block_io = {k: v for k, v in (resources.get("blockIO") or {}).items() if v}
    if block_io:
        _need(found, "blockIO", "blkio", "io").set_block_io(block_io)
    hugepages = resources.get("hugepageLimits") or []
    if hugepages:
        _need(found, "hugepageLimits", "hugetlb", "hugetlb").set_hugetlb(hugepages)
    network = resources.get("network") or {}
    if network.get("classID") is not None:
        _need(found, "network.classID", "net_cls", None).set_network(network, "net_cls")
    if network.get("priorities"):
        _need(found, "network.priorities", "net_prio", None).set_network(network, "net_prio")
    rdma = resources.get("rdma") or {}
    if rdma:
        _need(found, "rdma", "rdma", "rdma").set_rdma(rdma)
    unified = resources.get("unified") or {}
    if unified:
        v2 = [d for d in found if isinstance(d, V2Driver)]
        if not v2:
            raise ResourceError("linux.resources.unified: needs a cgroup v2 hierarchy, and "
                                "this container has none")
        v2[0].set_unified(unified)
    if not update:
        rules = resources.get("devices") or []
        target = _pick(found, "devices", None) or next(
            (d for d in found if isinstance(d, V2Driver)), None)
        if target is not None:
            target.set_devices(rules, devices, warn)
        elif rules:
            warn("linux.resources.devices: no devices cgroup on this host; rules not applied")

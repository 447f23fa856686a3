"""Write ``linux.resources`` into the container's cgroup.

runtime-spec config-linux.md "Control groups": this module covers ``pids``
(v1 and v2 ``pids.max``), ``memory.limit`` (v1 ``memory.limit_in_bytes``, v2
``memory.max``) and the ``devices`` allow-list on v1 (``devices.deny`` /
``devices.allow`` in config order, then runc's default allowed devices). Any
other resource set in the config is reported with a warning naming it, never
silently dropped.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ketch.runtime.cgroups.fs import CgroupManager
from ketch.runtime.errors import KetchError

SUPPORTED = {"pids", "memory", "devices", "cpu"}
_CPU_KEYS = {"shares", "quota", "period", "burst", "cpus", "mems", "realtimeRuntime",
             "realtimePeriod", "idle"}

# runc's AllowedDevices (libcontainer/specconv): always allowed after the config's rules
_DEFAULT_ALLOW = (
    "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm",
    "c 1:5 rwm", "c 1:9 rwm", "c 5:1 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm",
)


class ResourceError(KetchError):
    """The kernel refused a resource value; the message names resource and file."""


def _write(directory: str, name: str, value: str, resource: str) -> None:
    try:
        with open(os.path.join(directory, name), "w") as f:
            f.write(value)
    except OSError as e:
        raise ResourceError(f"{resource}: cannot write {value!r} to "
                            f"{os.path.join(directory, name)}: {e.strerror}") from e


def _device_rule(rule: dict) -> str:
    kind = rule.get("type", "a")
    if kind == "a":
        return "a"
    major = "*" if rule.get("major") is None or rule.get("major") == -1 else str(rule["major"])
    minor = "*" if rule.get("minor") is None or rule.get("minor") == -1 else str(rule["minor"])
    return f"{kind} {major}:{minor} {rule.get('access', 'rwm')}"


def apply_resources(cgroup: CgroupManager, spec: dict, warn: Callable[[str], None]) -> None:
    """Write the supported ``linux.resources`` of ``spec`` into ``cgroup``'s files.

    Raises ``ResourceError`` when a value is rejected; unsupported resources go
    to ``warn(message)``.
    """
    linux = spec.get("linux") or {}
    resources = linux.get("resources") or {}
    for key in sorted(set(resources) - SUPPORTED):
        warn(f"linux.resources.{key} is not applied by this version of ketch")
    cpu = resources.get("cpu") or {}
    for key in sorted(set(cpu) - _CPU_KEYS):
        warn(f"linux.resources.cpu.{key} is not applied by this version of ketch")
    for mount_point, path in cgroup.paths.items():
        controller = os.path.basename(mount_point)
        controllers = set(controller.split(","))  # co-mounted v1 hierarchies: "cpu,cpuacct"
        unified = mount_point == "/sys/fs/cgroup" or controller == "unified"
        if cpu:
            if unified:
                _apply_cpu_v2(path, cpu, warn)
            else:
                _apply_cpu_v1(path, cpu, controllers)
        pids = (resources.get("pids") or {}).get("limit")
        if pids is not None and (controller == "pids" or unified) \
                and os.path.exists(os.path.join(path, "pids.max")):
            _write(path, "pids.max", "max" if pids <= 0 else str(pids), "pids.limit")
        limit = (resources.get("memory") or {}).get("limit")
        if limit is not None:
            if controller == "memory":
                _write(path, "memory.limit_in_bytes", str(limit), "memory.limit")
            elif unified and os.path.exists(os.path.join(path, "memory.max")):
                _write(path, "memory.max", "max" if limit < 0 else str(limit), "memory.limit")
        if controller == "devices":
            _apply_devices_v1(path, resources.get("devices") or [], linux.get("devices") or [])
    memory = resources.get("memory") or {}
    for key in sorted(set(memory) - {"limit"}):
        warn(f"linux.resources.memory.{key} is not applied by this version of ketch")


def _apply_cpu_v1(path: str, cpu: dict, controllers: set[str]) -> None:
    if "cpu" in controllers:
        # the period first: the kernel checks a new quota against the current period
        for key, name in (("shares", "cpu.shares"), ("period", "cpu.cfs_period_us"),
                          ("quota", "cpu.cfs_quota_us"), ("burst", "cpu.cfs_burst_us"),
                          ("realtimePeriod", "cpu.rt_period_us"),
                          ("realtimeRuntime", "cpu.rt_runtime_us")):
            if cpu.get(key) is not None and (key != "burst" or
                                              os.path.exists(os.path.join(path, name))):
                _write(path, name, str(cpu[key]), f"cpu.{key}")
    if "cpuset" in controllers:
        for key in ("cpus", "mems"):
            if cpu.get(key):
                _write(path, f"cpuset.{key}", cpu[key], f"cpu.{key}")


def cpu_weight(shares: int) -> int:
    """cgroup v2 ``cpu.weight`` for v1 ``cpu.shares``: the log-quadratic mapping
    runc and crun use (2 -> 1, 1024 -> 100, 262144 -> 10000)."""
    if shares <= 0:
        return 0
    import math

    log = math.log2(shares)
    return min(10000, max(1, math.ceil(10 ** ((log * log + 125 * log) / 612.0 - 7.0 / 34.0))))


def _apply_cpu_v2(path: str, cpu: dict, warn: Callable[[str], None]) -> None:
    if not os.path.exists(os.path.join(path, "cpu.max")):
        if any(cpu.get(k) is not None for k in ("shares", "quota", "period")):
            warn("linux.resources.cpu: the cpu controller is not enabled in the cgroup v2 "
                 "hierarchy; shares/quota/period not applied")
    else:
        if cpu.get("shares"):
            _write(path, "cpu.weight", str(cpu_weight(cpu["shares"])), "cpu.shares")
        if cpu.get("quota") is not None or cpu.get("period") is not None:
            quota = cpu.get("quota")
            period = cpu.get("period") or 100000
            _write(path, "cpu.max", f"{'max' if quota is None or quota <= 0 else quota} {period}",
                   "cpu.quota")
        if cpu.get("idle") is not None and os.path.exists(os.path.join(path, "cpu.idle")):
            _write(path, "cpu.idle", str(cpu["idle"]), "cpu.idle")
    for key in ("cpus", "mems"):
        if cpu.get(key) and os.path.exists(os.path.join(path, f"cpuset.{key}")):
            _write(path, f"cpuset.{key}", cpu[key], f"cpu.{key}")


def _apply_devices_v1(path: str, rules: list[dict], devices: list[dict]) -> None:
    for rule in rules:
        target = "devices.allow" if rule.get("allow") else "devices.deny"
        _write(path, target, _device_rule(rule), "devices")
    # Devices the config asks to create must also be usable (runc does the same).
    for dev in devices:
        if dev["type"] == "p":
            continue  # a fifo is no device: the cgroup has no rule for it
        kind = "c" if dev["type"] == "u" else dev["type"]
        _write(path, "devices.allow",
               _device_rule({"type": kind, "major": dev.get("major"),
                             "minor": dev.get("minor"), "access": "rwm"}), "devices")
    for rule in _DEFAULT_ALLOW:
        _write(path, "devices.allow", rule, "devices")

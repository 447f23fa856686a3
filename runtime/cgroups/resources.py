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

SUPPORTED = {"pids", "memory", "devices"}

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
    for mount_point, path in cgroup.paths.items():
        controller = os.path.basename(mount_point)
        unified = mount_point == "/sys/fs/cgroup" or controller == "unified"
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

"""Process attributes applied by the init just before the uid switch.

runtime-spec config.md "POSIX process" (``ioPriority``, ``scheduler``) and
config-linux.md "Personality" and "Time Namespace Offsets"
(``linux.timeOffsets``, written to ``/proc/self/timens_offsets`` right after
unshare(CLONE_NEWTIME), before any process lives in the namespace).
"""

from __future__ import annotations

import os

from ketch.runtime.errors import KetchError
from ketch.runtime.syscalls import Syscalls

# linux/personality.h
_PERSONALITIES = {"LINUX": 0x0000, "LINUX32": 0x0008}
# linux/ioprio.h
_IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
_IOPRIO_CLASS_SHIFT = 13
_POLICIES = {
    "SCHED_OTHER": os.SCHED_OTHER, "SCHED_FIFO": os.SCHED_FIFO, "SCHED_RR": os.SCHED_RR,
    "SCHED_BATCH": os.SCHED_BATCH, "SCHED_IDLE": os.SCHED_IDLE,
}


class ProcessAttributeError(KetchError):
    """An attribute the kernel refused or ketch cannot apply; names the field."""


def apply_personality(sc: Syscalls, personality: dict | None) -> None:
    """``linux.personality``: LINUX or LINUX32 (flags are not supported, as in runc)."""
    if not personality:
        return
    domain = personality.get("domain", "")
    if domain not in _PERSONALITIES:
        raise ProcessAttributeError(f"linux.personality.domain: unsupported value {domain!r}")
    if personality.get("flags"):
        raise ProcessAttributeError("linux.personality.flags: not supported")
    sc.personality(_PERSONALITIES[domain])


def apply_io_priority(sc: Syscalls, io_priority: dict | None) -> None:
    """``process.ioPriority`` through ioprio_set(2) on this process."""
    if not io_priority:
        return
    cls = _IOPRIO_CLASSES.get(io_priority.get("class", ""))
    if cls is None:
        raise ProcessAttributeError(f"process.ioPriority.class: invalid value "
                                    f"{io_priority.get('class')!r}")
    try:
        sc.ioprio_set(cls << _IOPRIO_CLASS_SHIFT | int(io_priority.get("priority", 0)))
    except OSError as e:
        raise ProcessAttributeError(f"process.ioPriority: {e.strerror}") from e


def apply_scheduler(scheduler: dict | None) -> None:
    """``process.scheduler``: policy and priority via sched_setscheduler(2), ``nice``
    via setpriority(2). SCHED_DEADLINE (sched_setattr) is refused as unsupported."""
    if not scheduler:
        return
    policy = scheduler.get("policy", "")
    if policy not in _POLICIES:
        raise ProcessAttributeError(f"process.scheduler.policy: {policy!r} is not supported")
    try:
        os.sched_setscheduler(0, _POLICIES[policy], os.sched_param(scheduler.get("priority", 0)))
        if scheduler.get("nice"):
            os.setpriority(os.PRIO_PROCESS, 0, scheduler["nice"])
    except OSError as e:
        raise ProcessAttributeError(f"process.scheduler: {e.strerror}") from e


def write_time_offsets(offsets: dict | None) -> None:
    """``linux.timeOffsets`` ({"monotonic"|"boottime": {"secs", "nanosecs"}})."""
    if not offsets:
        return
    lines = "".join(f"{clock} {value.get('secs', 0)} {value.get('nanosecs', 0)}\n"
                    for clock, value in offsets.items())
    try:
        with open("/proc/self/timens_offsets", "w") as f:
            f.write(lines)
    except OSError as e:
        raise ProcessAttributeError(f"linux.timeOffsets: {e.strerror}") from e

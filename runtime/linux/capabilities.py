"""Apply ``process.capabilities`` (runtime-spec config.md "capabilities").

The five sets are applied the way runc does: the bounding set is dropped
first (needs CAP_SETPCAP, so before the uid switch), the uid switch keeps
capabilities (PR_SET_KEEPCAPS), then effective/permitted/inheritable are set
with capset(2) and ambient capabilities raised. Names the kernel does not know
are skipped with a warning, as the spec asks (SHOULD NOT fail).
"""

from __future__ import annotations

import errno

from ketch.runtime import syscalls as s
from ketch.runtime.syscalls import Syscalls

# linux/capability.h
CAPABILITIES: dict[str, int] = {name: i for i, name in enumerate((
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
))}


def last_cap() -> int:
    """The highest capability number this kernel knows."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return max(CAPABILITIES.values())


def to_mask(names: list[str] | None, unknown: list[str], limit: int) -> int:
    """Bit mask of capability ``names``; names this kernel does not know are
    appended to ``unknown`` (once each) instead."""
    mask = 0
    for name in names or []:
        num = CAPABILITIES.get(name.upper())
        if num is None or num > limit:
            if name not in unknown:
                unknown.append(name)
            continue
        mask |= 1 << num
    return mask


class CapabilitySets:
    """The five masks computed from a ``capabilities`` object.

    Unknown or unavailable names are reported through ``warn(msg)`` in one
    line, with runc's wording, and otherwise ignored (config.md: the runtime
    SHOULD NOT fail on them).
    """

    def __init__(self, caps: dict | None, warn) -> None:
        self.limit = last_cap()
        caps = caps or {}
        unknown: list[str] = []
        self.bounding = to_mask(caps.get("bounding"), unknown, self.limit)
        self.effective = to_mask(caps.get("effective"), unknown, self.limit)
        self.permitted = to_mask(caps.get("permitted"), unknown, self.limit)
        self.inheritable = to_mask(caps.get("inheritable"), unknown, self.limit)
        self.ambient = to_mask(caps.get("ambient"), unknown, self.limit)
        if unknown:
            warn(f"ignoring unknown or unavailable capabilities: [{' '.join(sorted(unknown))}]")

    def drop_bounding(self, sc: Syscalls) -> None:
        """Drop every capability not in the bounding set (before the uid switch)."""
        for num in range(self.limit + 1):
            if not self.bounding & (1 << num):
                try:
                    sc.prctl(s.PR_CAPBSET_DROP, num)
                except OSError as e:
                    if e.errno != errno.EINVAL:
                        raise

    def apply(self, sc: Syscalls) -> None:
        """Set effective/permitted/inheritable, then raise ambient (after the uid switch).

        An ambient raise the kernel refuses (the capability is not inheritable)
        is skipped, as runc does.
        """
        sc.capset(self.effective, self.permitted, self.inheritable)
        for num in range(self.limit + 1):
            if self.ambient & (1 << num):
                try:
                    sc.prctl(s.PR_CAP_AMBIENT, s.PR_CAP_AMBIENT_RAISE, num)
                except OSError as e:
                    if e.errno not in (errno.EPERM, errno.EINVAL):
                        raise

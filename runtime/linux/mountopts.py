"""Parse runtime-spec mount options into mount(2) flags and filesystem data.

runtime-spec config.md "Mounts" and config-linux.md "Mount Options": options are
mount(8) names; unknown names are passed on as filesystem-specific data, as
runc does.
"""

from __future__ import annotations

from ketch.runtime import syscalls as s

# name -> (clear?, flag): "clear" options remove a flag (e.g. rw clears MS_RDONLY)
_FLAGS: dict[str, tuple[bool, int]] = {
    "async": (True, s.MS_SYNCHRONOUS),
    "atime": (True, s.MS_NOATIME),
    "bind": (False, s.MS_BIND),
    "defaults": (False, 0),
    "dev": (True, s.MS_NODEV),
    "diratime": (True, s.MS_NODIRATIME),
    "dirsync": (False, s.MS_DIRSYNC),
    "exec": (True, s.MS_NOEXEC),
    "iversion": (False, 1 << 23),
    "lazytime": (False, s.MS_LAZYTIME),
    "loud": (True, s.MS_SILENT),
    "mand": (False, s.MS_MANDLOCK),
    "noatime": (False, s.MS_NOATIME),
    "nodev": (False, s.MS_NODEV),
    "nodiratime": (False, s.MS_NODIRATIME),
    "noexec": (False, s.MS_NOEXEC),
    "noiversion": (True, 1 << 23),
    "nolazytime": (True, s.MS_LAZYTIME),
    "nomand": (True, s.MS_MANDLOCK),
    "norelatime": (True, s.MS_RELATIME),
    "nostrictatime": (True, s.MS_STRICTATIME),
    "nosuid": (False, s.MS_NOSUID),
    "nosymfollow": (False, s.MS_NOSYMFOLLOW),
    "rbind": (False, s.MS_BIND | s.MS_REC),
    "relatime": (False, s.MS_RELATIME),
    "remount": (False, s.MS_REMOUNT),
    "ro": (False, s.MS_RDONLY),
    "rw": (True, s.MS_RDONLY),
    "silent": (False, s.MS_SILENT),
    "strictatime": (False, s.MS_STRICTATIME),
    "suid": (True, s.MS_NOSUID),
    "symfollow": (True, s.MS_NOSYMFOLLOW),
    "sync": (False, s.MS_SYNCHRONOUS),
}

_PROPAGATION: dict[str, int] = {
    "private": s.MS_PRIVATE,
    "rprivate": s.MS_PRIVATE | s.MS_REC,
    "shared": s.MS_SHARED,
    "rshared": s.MS_SHARED | s.MS_REC,
    "slave": s.MS_SLAVE,
    "rslave": s.MS_SLAVE | s.MS_REC,
    "unbindable": s.MS_UNBINDABLE,
    "runbindable": s.MS_UNBINDABLE | s.MS_REC,
}

PROPAGATION_NAMES = frozenset(_PROPAGATION)


def flag_option_names() -> frozenset[str]:
    """Every mount option name that maps to mount(2) flags."""
    return frozenset(_FLAGS)


class MountOptions:
    """The parsed form of a mount's ``options`` list: mount flags, propagation
    changes (applied after the mount, in order) and filesystem data."""

    __slots__ = ("data", "flags", "propagation")

    def __init__(self) -> None:
        self.flags = 0
        self.propagation: list[int] = []
        self.data: list[str] = []

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & s.MS_BIND)

    @property
    def data_string(self) -> str | None:
        return ",".join(self.data) or None


def parse_options(options: list[str] | None) -> MountOptions:
    """Turn ``["nosuid", "mode=755", "rprivate"]`` into flags, propagation and data."""
    result = MountOptions()
    for opt in options or []:
        if opt in _FLAGS:
            clear, flag = _FLAGS[opt]
            if clear:
                result.flags &= ~flag
            else:
                result.flags |= flag
        elif opt in _PROPAGATION:
            result.propagation.append(_PROPAGATION[opt])
        else:
            result.data.append(opt)
    return result


def propagation_flag(name: str) -> int:
    """``linux.rootfsPropagation`` value -> mount flags; raises KeyError if unknown."""
    return _PROPAGATION[name]

"""Parse runtime-spec mount options into mount(2) flags and filesystem data.

runtime-spec config.md "Mounts" and config-linux.md "Mount Options": options are
mount(8) names; unknown names are passed on as filesystem-specific data, as
runc does. The recursive forms (``rro``, ``rnosuid``, ...) become
mount_setattr(2) attributes applied with ``AT_RECURSIVE``; ``idmap``/``ridmap``
ask for an idmapped bind mount (config.md "Mounts" ``uidMappings``); runc's
``tmpcopyup`` extension copies what a tmpfs covers into it.
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

# recursive options -> (MOUNT_ATTR_* to set, MOUNT_ATTR_* to clear). The atime
# modes are an enum in mount_setattr(2): clearing MOUNT_ATTR__ATIME and setting
# one of them replaces the mode.
_ATIME = s.MOUNT_ATTR__ATIME
_RECURSIVE: dict[str, tuple[int, int]] = {
    "rro": (s.MOUNT_ATTR_RDONLY, 0),
    "rrw": (0, s.MOUNT_ATTR_RDONLY),
    "rnosuid": (s.MOUNT_ATTR_NOSUID, 0),
    "rsuid": (0, s.MOUNT_ATTR_NOSUID),
    "rnodev": (s.MOUNT_ATTR_NODEV, 0),
    "rdev": (0, s.MOUNT_ATTR_NODEV),
    "rnoexec": (s.MOUNT_ATTR_NOEXEC, 0),
    "rexec": (0, s.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (s.MOUNT_ATTR_NODIRATIME, 0),
    "rdiratime": (0, s.MOUNT_ATTR_NODIRATIME),
    "rnosymfollow": (s.MOUNT_ATTR_NOSYMFOLLOW, 0),
    "rsymfollow": (0, s.MOUNT_ATTR_NOSYMFOLLOW),
    "rrelatime": (s.MOUNT_ATTR_RELATIME, _ATIME),
    "rnoatime": (s.MOUNT_ATTR_NOATIME, _ATIME),
    "rstrictatime": (s.MOUNT_ATTR_STRICTATIME, _ATIME),
    # mount(8): "atime"/"nostrictatime" fall back to the kernel default, relatime;
    # "norelatime" updates atime on every access, which is strictatime.
    "ratime": (s.MOUNT_ATTR_RELATIME, _ATIME),
    "rnostrictatime": (s.MOUNT_ATTR_RELATIME, _ATIME),
    "rnorelatime": (s.MOUNT_ATTR_STRICTATIME, _ATIME),
}

IDMAP_NAMES = frozenset({"idmap", "ridmap"})
EXTENSION_NAMES = frozenset({"tmpcopyup"})


def flag_option_names() -> frozenset[str]:
    """Every mount option name that maps to mount(2) flags."""
    return frozenset(_FLAGS)


def known_option_names() -> frozenset[str]:
    """Every option name ketch gives a meaning to (for ``ketch features``)."""
    return frozenset(_FLAGS) | PROPAGATION_NAMES | frozenset(_RECURSIVE) | IDMAP_NAMES \
        | EXTENSION_NAMES


class MountOptions:
    """The parsed form of a mount's ``options`` list: mount flags, propagation
    changes (applied after the mount, in order) and filesystem data."""

    __slots__ = ("data", "flags", "idmap", "propagation", "rec_clear", "rec_set", "tmpcopyup")

    def __init__(self) -> None:
        self.flags = 0
        self.propagation: list[int] = []
        self.data: list[str] = []
        # MOUNT_ATTR_* bits for mount_setattr(AT_RECURSIVE) after the mount
        self.rec_set = 0
        self.rec_clear = 0
        self.idmap: str | None = None  # "idmap" or "ridmap"
        self.tmpcopyup = False

    @property
    def has_recursive_attrs(self) -> bool:
        return bool(self.rec_set or self.rec_clear)

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
        elif opt in _RECURSIVE:
            attr_set, attr_clear = _RECURSIVE[opt]
            if attr_clear & _ATIME:  # a new atime mode replaces the previous one
                result.rec_set = (result.rec_set & ~_ATIME) | attr_set
                result.rec_clear |= _ATIME
            elif attr_set:
                result.rec_set |= attr_set
                result.rec_clear &= ~attr_set
            else:
                result.rec_clear |= attr_clear
                result.rec_set &= ~attr_clear
        elif opt in IDMAP_NAMES:
            result.idmap = opt
        elif opt == "tmpcopyup":
            result.tmpcopyup = True
        else:
            result.data.append(opt)
    return result


def wants_idmap(mount: dict) -> bool:
    """Whether a ``mounts[]`` entry is an idmapped mount: ``idmap``/``ridmap`` in
    its options, or mount ``uidMappings``/``gidMappings`` (runtime-spec 1.1
    had the mappings without the options)."""
    return bool(IDMAP_NAMES.intersection(mount.get("options") or [])
                or mount.get("uidMappings") or mount.get("gidMappings"))


def propagation_flag(name: str) -> int:
    """``linux.rootfsPropagation`` value -> mount flags; raises KeyError if unknown."""
    return _PROPAGATION[name]

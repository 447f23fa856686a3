"""A recording ``Syscalls`` for unit tests that must not need root.

Each call is appended to ``calls`` as ``(name, args...)``; ``fail`` maps a
call name to an errno so error paths can be driven.
"""

from __future__ import annotations

import errno
import os


class RecordingSyscalls:
    """Records every call instead of making it; see module docstring."""

    def __init__(self, fail: dict[str, int] | None = None) -> None:
        self.calls: list[tuple] = []
        self.fail = dict(fail or {})
        self.fs_types: dict[int, int] = {}  # fd -> f_type answered by fstatfs_type

    def _record(self, name: str, *args) -> None:
        self.calls.append((name, *args))
        if name in self.fail:
            err = self.fail[name]
            raise OSError(err, f"{name}: {os.strerror(err)}")

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]

    def unshare(self, flags: int) -> None:
        self._record("unshare", flags)

    def setns(self, fd: int, nstype: int) -> None:
        self._record("setns", fd, nstype)

    def mount(self, source, target, fstype, flags, data) -> None:
        self._record("mount", source, target, fstype, flags, data)

    def umount2(self, target: str, flags: int) -> None:
        self._record("umount2", target, flags)

    def mount_setattr(self, fd: int, attr_set: int, attr_clr: int, *, recursive: bool,
                      userns_fd: int | None = None) -> None:
        self._record("mount_setattr", fd, attr_set, attr_clr, recursive, userns_fd)

    def open_tree_clone(self, path: str, *, recursive: bool) -> int:
        self._record("open_tree_clone", path, recursive)
        return os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)

    def move_mount(self, from_fd: int, to_fd: int) -> None:
        self._record("move_mount", from_fd, to_fd)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self._record("pivot_root", new_root, put_old)

    def sethostname(self, name: str) -> None:
        self._record("sethostname", name)

    def setdomainname(self, name: str) -> None:
        self._record("setdomainname", name)

    def prctl(self, option: int, a2: int = 0, a3: int = 0, a4: int = 0, a5: int = 0) -> int:
        self._record("prctl", option, a2, a3, a4, a5)
        return 0

    def setresuid(self, uid: int) -> None:
        self._record("setresuid", uid)

    def setresgid(self, gid: int) -> None:
        self._record("setresgid", gid)

    def close_range_cloexec(self, first: int) -> None:
        self._record("close_range_cloexec", first)

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        self._record("capset", effective, permitted, inheritable)

    def personality(self, persona: int) -> None:
        self._record("personality", persona)

    def ioprio_set(self, ioprio: int) -> None:
        self._record("ioprio_set", ioprio)

    def join_session_keyring(self, name: str) -> None:
        self._record("join_session_keyring", name)

    def openat2(self, dirfd: int, path: str, flags: int, mode: int, resolve: int) -> int:
        # Behaves like a kernel older than 5.6 unless told otherwise, so callers
        # exercise their fallback path.
        self._record("openat2", path, flags, mode, resolve)
        raise OSError(errno.ENOSYS, "openat2: function not implemented")

    def load_seccomp(self, filter_spec) -> int | None:
        self._record("load_seccomp", filter_spec)
        return None

    def fstatfs_type(self, fd: int) -> int:
        self._record("fstatfs_type", fd)
        return self.fs_types.get(fd, 0x9FA0)  # procfs unless a test says otherwise

    def bpf_prog_load(self, prog_type: int, insns: bytes, license: str) -> int:
        self._record("bpf_prog_load", prog_type, insns, license)
        return os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)  # a real fd the caller closes

    def bpf_prog_attach(self, target_fd: int, prog_fd: int, attach_type: int,
                        flags: int) -> None:
        self._record("bpf_prog_attach", attach_type, flags)

"""The syscall seam: every kernel call Python 3.11 lacks goes through here.

``Syscalls`` is the protocol the rest of the runtime codes against.
``LinuxSyscalls`` calls the kernel through the cffi API-mode extension
``ketch.runtime.syscalls._native`` (built at install time from ``_build.py``);
``ketch.runtime.syscalls.fake.RecordingSyscalls`` records calls instead, so
rootfs and namespace logic is unit-tested without root.

Every method raises ``OSError`` with the kernel's errno on failure.
Sources: unshare(2), setns(2), mount(2), umount2(2), pivot_root(2),
sethostname(2), prctl(2), capset(2), mount_setattr(2), open_tree(2),
move_mount(2), bpf(2), openat2(2).
"""

from __future__ import annotations

import os
from typing import Protocol

# clone(2) namespace flags (linux/sched.h)
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080

# mount(2) flags (linux/mount.h)
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_DETACH = 2

# mount_setattr(2), open_tree(2), move_mount(2) (linux/mount.h, linux/fcntl.h)
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_IDMAP = 0x100000
MOUNT_ATTR_NOSYMFOLLOW = 0x200000
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
AT_FDCWD = -100
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = 0o2000000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40

# prctl(2) options
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

CLOSE_RANGE_CLOEXEC = 1 << 2

# seccomp.h: the action that hands a syscall to a user-space listener
SCMP_ACT_NOTIFY = 0x7FC00000
# bpf(2) (linux/bpf.h)
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 1 << 1

_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class SeccompFilter:
    """A seccomp filter in libseccomp's terms, built by ``ketch.runtime.linux.seccomp``.

    ``rules``: (action, syscall name, [(arg index, op name, value, value_two)]);
    ``attrs``: {"CTL_TSYNC"|"CTL_LOG"|"CTL_SSB"|"CTL_NNP": 0 or 1}.
    """

    def __init__(self, default_action: int, archs: list[str],
                 rules: list[tuple[int, str, list[tuple[int, str, int, int]]]],
                 attrs: dict[str, int]) -> None:
        self.default_action = default_action
        self.archs = archs
        self.rules = rules
        self.attrs = attrs

    def uses_notify(self) -> bool:
        """True when some action is SCMP_ACT_NOTIFY (the filter then has a listener fd)."""
        return any(a == SCMP_ACT_NOTIFY for a in (self.default_action,
                                                  *(r[0] for r in self.rules)))


class Syscalls(Protocol):
    """What the runtime asks of the kernel beyond Python's ``os`` module."""

    def unshare(self, flags: int) -> None: ...
    def setns(self, fd: int, nstype: int) -> None: ...
    def mount(self, source: str | None, target: str, fstype: str | None,
              flags: int, data: str | None) -> None: ...
    def umount2(self, target: str, flags: int) -> None: ...
    def pivot_root(self, new_root: str, put_old: str) -> None: ...
    def sethostname(self, name: str) -> None: ...
    def setdomainname(self, name: str) -> None: ...
    def prctl(self, option: int, a2: int = 0, a3: int = 0, a4: int = 0, a5: int = 0) -> int: ...
    def setresuid(self, uid: int) -> None: ...
    def setresgid(self, gid: int) -> None: ...
    def close_range_cloexec(self, first: int) -> None: ...
    def capset(self, effective: int, permitted: int, inheritable: int) -> None: ...
    def personality(self, persona: int) -> None: ...
    def ioprio_set(self, ioprio: int) -> None: ...
    def join_session_keyring(self, name: str) -> None: ...
    def load_seccomp(self, filter_spec: SeccompFilter) -> int | None: ...
    def fstatfs_type(self, fd: int) -> int: ...
    def mount_setattr(self, fd: int, attr_set: int, attr_clr: int, *, recursive: bool,
                      userns_fd: int | None = None) -> None: ...
    def open_tree_clone(self, path: str, *, recursive: bool) -> int: ...
    def move_mount(self, from_fd: int, to_fd: int) -> None: ...
    def bpf_prog_load(self, prog_type: int, insns: bytes, license: str) -> int: ...
    def bpf_prog_attach(self, target_fd: int, prog_fd: int, attach_type: int,
                        flags: int) -> None: ...
    def openat2(self, dirfd: int, path: str, flags: int, mode: int, resolve: int) -> int: ...


def _bytes(s: str | None):
    return s.encode() if s is not None else None


class LinuxSyscalls:
    """``Syscalls`` on the real kernel, through the cffi extension."""

    def __init__(self) -> None:
        from ketch.runtime.syscalls import _native  # compiled at install time

        self._ffi = _native.ffi
        self._lib = _native.lib

    def _check(self, rc: int, what: str, path: str | None = None) -> int:
        if rc < 0:
            err = self._ffi.errno
            raise OSError(err, f"{what}: {os.strerror(err)}", path)
        return rc

    def unshare(self, flags: int) -> None:
        self._check(self._lib.unshare(flags), "unshare")

    def setns(self, fd: int, nstype: int) -> None:
        self._check(self._lib.setns(fd, nstype), "setns")

    def mount(self, source: str | None, target: str, fstype: str | None,
              flags: int, data: str | None) -> None:
        ffi = self._ffi
        src = _bytes(source) if source is not None else ffi.NULL
        typ = _bytes(fstype) if fstype is not None else ffi.NULL
        dat = _bytes(data) if data else ffi.NULL
        self._check(self._lib.mount(src, target.encode(), typ, flags, dat), "mount", target)

    def umount2(self, target: str, flags: int) -> None:
        self._check(self._lib.umount2(target.encode(), flags), "umount2", target)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self._check(self._lib.ketch_pivot_root(new_root.encode(), put_old.encode()),
                    "pivot_root", new_root)

    def sethostname(self, name: str) -> None:
        b = name.encode()
        self._check(self._lib.sethostname(b, len(b)), "sethostname")

    def setdomainname(self, name: str) -> None:
        b = name.encode()
        self._check(self._lib.setdomainname(b, len(b)), "setdomainname")

    def prctl(self, option: int, a2: int = 0, a3: int = 0, a4: int = 0, a5: int = 0) -> int:
        return self._check(self._lib.ketch_prctl(option, a2, a3, a4, a5), "prctl")

    def setresuid(self, uid: int) -> None:
        self._check(self._lib.ketch_setresuid(uid, uid, uid), "setresuid")

    def setresgid(self, gid: int) -> None:
        self._check(self._lib.ketch_setresgid(gid, gid, gid), "setresgid")

    def mount_setattr(self, fd: int, attr_set: int, attr_clr: int, *, recursive: bool,
                      userns_fd: int | None = None) -> None:
        """mount_setattr(2) on the mount ``fd`` refers to (``AT_EMPTY_PATH``):
        set ``attr_set`` and clear ``attr_clr`` (``MOUNT_ATTR_*``), on every
        mount below it too when ``recursive``; ``userns_fd`` with
        ``MOUNT_ATTR_IDMAP`` idmaps a detached mount."""
        flags = AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)
        self._check(self._lib.ketch_mount_setattr(fd, b"", flags, attr_set, attr_clr, 0,
                                                  userns_fd if userns_fd is not None else 0),
                    "mount_setattr")

    def open_tree_clone(self, path: str, *, recursive: bool) -> int:
        """open_tree(2) with ``OPEN_TREE_CLONE``: a detached copy of the mount at
        ``path`` (its whole tree when ``recursive``), as a close-on-exec fd."""
        flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (AT_RECURSIVE if recursive else 0)
        return self._check(self._lib.ketch_open_tree(AT_FDCWD, path.encode(), flags),
                           "open_tree", path)

    def move_mount(self, from_fd: int, to_fd: int) -> None:
        """move_mount(2): attach the detached mount ``from_fd`` on the file or
        directory ``to_fd`` refers to (both by fd: no path is resolved)."""
        self._check(self._lib.ketch_move_mount(from_fd, b"", to_fd, b"",
                                               MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH),
                    "move_mount")

    def close_range_cloexec(self, first: int) -> None:
        """Mark every fd from ``first`` on close-on-exec.

        close_range(2) may be missing (old kernels) or refused by a seccomp
        filter already loaded, whose allow-list predates it: then each fd is
        marked with fcntl(2), as runc falls back too.
        """
        if self._lib.ketch_close_range(first, 0xFFFFFFFF, CLOSE_RANGE_CLOEXEC) == 0:
            return
        import fcntl

        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd >= first:
                try:
                    flags = fcntl.fcntl(fd, fcntl.F_GETFD)
                    fcntl.fcntl(fd, fcntl.F_SETFD, flags | fcntl.FD_CLOEXEC)
                except OSError:
                    continue  # the listing's own fd, already closed

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        lo, hi = 0xFFFFFFFF, 32
        data = self._ffi.new("unsigned int[6]", [
            effective & lo, permitted & lo, inheritable & lo,
            effective >> hi, permitted >> hi, inheritable >> hi])
        self._check(self._lib.ketch_capset(_LINUX_CAPABILITY_VERSION_3, 0, data), "capset")


    def personality(self, persona: int) -> None:
        self._check(self._lib.ketch_personality(persona), "personality")

    def ioprio_set(self, ioprio: int) -> None:
        """ioprio_set(IOPRIO_WHO_PROCESS, 0 = this process, ioprio)."""
        self._check(self._lib.ketch_ioprio_set(1, 0, ioprio), "ioprio_set")

    def openat2(self, dirfd: int, path: str, flags: int, mode: int, resolve: int) -> int:
        """openat2(2) with ``struct open_how {flags, mode, resolve}``; returns the new fd."""
        rc = self._lib.ketch_openat2(dirfd, os.fsencode(path), flags, mode, resolve)
        return self._check(rc, "openat2", path)

    def join_session_keyring(self, name: str) -> None:
        self._check(self._lib.ketch_join_session_keyring(name.encode()), "keyctl")


    def fstatfs_type(self, fd: int) -> int:
        """The ``f_type`` magic of the filesystem holding ``fd`` (fstatfs(2))."""
        return self._check(self._lib.ketch_fstatfs_type(fd), "fstatfs")

    def bpf_prog_load(self, prog_type: int, insns: bytes, license: str) -> int:
        """bpf(BPF_PROG_LOAD) of ``insns`` (struct bpf_insn, 8 bytes each);
        returns the program fd (close-on-exec). Raises ``OSError`` whose text
        ends with the verifier's last log line when it refused the program."""
        if len(insns) % 8:
            raise ValueError("BPF instructions are 8 bytes each")
        log = self._ffi.new("char[]", 65536)
        fd = self._lib.ketch_bpf_prog_load(prog_type, insns, len(insns) // 8, license.encode(),
                                           log, len(log))
        if fd < 0:
            err = self._ffi.errno
            lines = self._ffi.string(log).decode(errors="replace").strip().splitlines()
            detail = f" ({lines[-1]})" if lines else ""
            raise OSError(err, f"bpf prog load: {os.strerror(err)}{detail}")
        return fd

    def bpf_prog_attach(self, target_fd: int, prog_fd: int, attach_type: int,
                        flags: int) -> None:
        """bpf(BPF_PROG_ATTACH) of ``prog_fd`` to the cgroup directory fd ``target_fd``."""
        self._check(self._lib.ketch_bpf_prog_attach(target_fd, prog_fd, attach_type, flags),
                    "bpf prog attach")

    def load_seccomp(self, filter_spec: SeccompFilter) -> int | None:
        """Build the filter with libseccomp and load it into this thread.

        Unknown syscall names are skipped (runc does too). Returns the
        listener fd (seccomp_notify_fd(3)) when a rule or the default action
        is ``SCMP_ACT_NOTIFY``, else None; raises ``OSError``.
        """
        lib, ffi = self._lib, self._ffi
        ctx = lib.seccomp_init(filter_spec.default_action)
        if ctx == ffi.NULL:
            raise OSError(22, "seccomp_init: invalid default action")
        try:
            for name, value in filter_spec.attrs.items():
                self._seccomp_check(lib.seccomp_attr_set(ctx, getattr(lib, "SCMP_FLTATR_" + name),
                                                         value), f"seccomp attribute {name}")
            for arch in filter_spec.archs:
                token = lib.seccomp_arch_resolve_name(arch.encode())
                if token == 0:
                    raise OSError(22, f"seccomp: unknown architecture {arch!r}")
                rc = lib.seccomp_arch_add(ctx, token)
                if rc not in (0, -17):  # -EEXIST: the native architecture is already there
                    self._seccomp_check(rc, f"seccomp_arch_add {arch}")
            for action, name, args in filter_spec.rules:
                nr = lib.seccomp_syscall_resolve_name(name.encode())
                if nr < 0:
                    continue
                cmps = ffi.new("struct scmp_arg_cmp[]", max(1, len(args)))
                for i, (index, op, value, value_two) in enumerate(args):
                    cmps[i].arg = index
                    cmps[i].op = getattr(lib, "SCMP_" + op.removeprefix("SCMP_"))
                    cmps[i].datum_a = value
                    cmps[i].datum_b = value_two
                self._seccomp_check(lib.seccomp_rule_add_array(ctx, action, nr, len(args), cmps),
                                    f"seccomp rule for {name}")
            self._seccomp_check(lib.seccomp_load(ctx), "seccomp_load")
            if filter_spec.uses_notify():
                fd = lib.seccomp_notify_fd(ctx)
                self._seccomp_check(fd, "seccomp_notify_fd")
                return fd
            return None
        finally:
            lib.seccomp_release(ctx)

    def _seccomp_check(self, rc: int, what: str) -> None:
        if rc < 0:
            raise OSError(-rc, f"{what}: {os.strerror(-rc)}")


_default: LinuxSyscalls | None = None


def linux() -> LinuxSyscalls:
    """The process-wide real ``Syscalls`` (loaded on first use)."""
    global _default
    if _default is None:
        _default = LinuxSyscalls()
    return _default

"""Set up the container's root filesystem inside its new mount namespace.

runtime-spec config.md "Root" and "Mounts", config-linux.md "Default
Filesystems", "Devices", "Default Devices", "rootfsPropagation",
"maskedPaths", "readonlyPaths"; runtime-linux.md "Dev symbolic links".
Behaviour follows runc where the spec leaves room (order of steps, default
``rslave`` propagation, ``/dev/ptmx`` symlink, masking with ``/dev/null`` and
read-only tmpfs).

Every path inside the rootfs is opened in-root by fd (``paths.open_in_root``)
and mounted through ``/proc/self/fd/N``, so a symlink planted in the image
cannot redirect a mount to the host.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterator

from ketch.runtime import syscalls as s
from ketch.runtime.cgroups import fs as cgroupfs
from ketch.runtime.errors import KetchError
from ketch.runtime.linux.mountopts import MountOptions, parse_options, propagation_flag
from ketch.runtime.linux.paths import fd_path, open_in_root
from ketch.runtime.syscalls import Syscalls


class RootfsError(KetchError):
    """Setting up the rootfs failed; the message names the mount or path."""


class Device:
    """A device node to create in the container (config-linux.md "Devices").

    ``kind`` is "c", "b", "u" or "p"; ``file_mode`` the permission bits.
    """

    __slots__ = ("file_mode", "gid", "kind", "major", "minor", "path", "uid")

    def __init__(self, path: str, kind: str, major: int, minor: int,
                 file_mode: int = 0o666, uid: int = 0, gid: int = 0) -> None:
        self.path, self.kind, self.major, self.minor = path, kind, major, minor
        self.file_mode, self.uid, self.gid = file_mode, uid, gid


# config-linux.md "Default Devices"
DEFAULT_DEVICES = (
    Device("/dev/null", "c", 1, 3),
    Device("/dev/zero", "c", 1, 5),
    Device("/dev/full", "c", 1, 7),
    Device("/dev/random", "c", 1, 8),
    Device("/dev/urandom", "c", 1, 9),
    Device("/dev/tty", "c", 5, 0),
)

_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


@contextlib.contextmanager
def _opened(root_fd: int, path: str, create: str | None = None) -> Iterator[int]:
    fd = open_in_root(root_fd, path, create=create)
    try:
        yield fd
    finally:
        os.close(fd)


def rootfs_path(spec: dict, bundle: str) -> str:
    """Absolute, symlink-free host path of ``root.path`` (relative to ``bundle``).

    Raises ``RootfsError`` if it does not exist or is not a directory.
    """
    path = os.path.join(bundle, spec["root"]["path"])
    if os.path.islink(path):
        raise RootfsError(f"invalid rootfs: {path} is a symlink")
    real = os.path.realpath(path)
    if not os.path.isdir(real):
        raise RootfsError(f"rootfs ({path}) does not exist or is not a directory")
    return real


def _mount_point_of(path: str) -> tuple[str, str]:
    """(mount point, optional fields) of the mount holding ``path``, from mountinfo."""
    best = ("/", "")
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mnt = fields[4]
            sep = fields.index("-")
            optional = " ".join(fields[6:sep])
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best[0]):
                best = (mnt, optional)
    return best


def prepare_root(sc: Syscalls, spec: dict, root: str) -> None:
    """Make ``/`` non-shared and bind-mount the rootfs onto itself (runc ``prepareRoot``).

    pivot_root(2) refuses a new root whose parent mount is shared, and the
    bind makes the rootfs a mount point of its own.
    """
    propagation = spec.get("linux", {}).get("rootfsPropagation")
    flag = propagation_flag(propagation) if propagation else s.MS_SLAVE | s.MS_REC
    if flag & (s.MS_SHARED | s.MS_UNBINDABLE):
        # pivot_root(2) refuses a shared parent and an unbindable root cannot
        # be bound onto itself: those are applied after pivot_root instead.
        flag = s.MS_SLAVE | s.MS_REC
    sc.mount(None, "/", None, flag, None)
    mnt, optional = _mount_point_of(root)
    if "shared:" in optional:
        sc.mount(None, mnt, None, s.MS_PRIVATE, None)
    sc.mount(root, root, "bind", s.MS_BIND | s.MS_REC, None)


def _open_bind_source(mount: dict, bundle: str) -> int:
    """An ``O_PATH`` fd of the bind mount's source (relative to the bundle; a
    symlink in it is followed now, as runc follows it). Checking and mounting
    through this one fd means a source that a shared volume swaps in between
    (CVE-2021-30465 class) cannot make the two disagree. Raises ``RootfsError``."""
    source = mount.get("source", "")
    if not source:
        raise RootfsError(f"mount {mount['destination']}: bind mount needs a source")
    if not os.path.isabs(source):
        source = os.path.join(bundle, source)
    try:
        return os.open(source, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        raise RootfsError(f"mount {mount['destination']}: source {source}: "
                          "no such file or directory") from None


def mount_entry(sc: Syscalls, root_fd: int, mount: dict, bundle: str,
                detached_fd: int | None = None) -> None:
    """Mount one ``mounts[]`` entry at its destination inside the rootfs.

    ``mount``: a runtime-spec mount object (destination, type, source, options).
    ``detached_fd``: for an idmapped bind mount, the detached, already idmapped
    copy of the source the runtime prepared (``ketch.runtime.linux.idmap``); it
    is attached here with move_mount(2) and closed.
    Raises ``RootfsError`` naming the destination on failure.
    """
    dest = mount["destination"]
    fstype = mount.get("type") or None
    opts = parse_options(mount.get("options"))
    try:
        if fstype == "cgroup":
            _mount_cgroup(sc, root_fd, mount, opts.flags)
            return
        if opts.is_bind or fstype == "bind":
            source_fd = _open_bind_source(mount, bundle)
            try:
                kind = "dir" if stat.S_ISDIR(os.fstat(source_fd).st_mode) else "file"
                with _opened(root_fd, dest, create=kind) as fd:
                    if detached_fd is not None:
                        sc.move_mount(detached_fd, fd)
                    else:
                        sc.mount(fd_path(source_fd), fd_path(fd), None,
                                 s.MS_BIND | (opts.flags & s.MS_REC), None)
            finally:
                os.close(source_fd)
            extra = opts.flags & ~(s.MS_BIND | s.MS_REC | s.MS_REMOUNT)
            if extra:
                with _opened(root_fd, dest) as fd:
                    sc.mount(None, fd_path(fd), None,
                             s.MS_BIND | s.MS_REMOUNT | (opts.flags & s.MS_REC) | extra, None)
        elif fstype == "tmpfs":
            _mount_tmpfs(sc, root_fd, mount, opts)
        else:
            if fstype in ("proc", "sysfs"):
                _require_plain_directory(root_fd, dest, fstype)
            with _opened(root_fd, dest, create="dir") as fd:
                sc.mount(mount.get("source") or fstype, fd_path(fd), fstype, opts.flags,
                         opts.data_string)
        if opts.propagation or opts.has_recursive_attrs:
            with _opened(root_fd, dest) as fd:
                for flag in opts.propagation:
                    sc.mount(None, fd_path(fd), None, flag, None)
                if opts.has_recursive_attrs:
                    sc.mount_setattr(fd, opts.rec_set, opts.rec_clear, recursive=True)
    except OSError as e:
        # the filesystem's options are what an EINVAL is most often about (runc
        # names them too)
        data = f" (data: {opts.data_string})" if opts.data_string and e.errno == errno.EINVAL \
            else ""
        raise RootfsError(f"error mounting {mount.get('source', '')!r} to rootfs at "
                          f"{dest!r}: {e.strerror or e}{data}") from e
    finally:
        if detached_fd is not None:
            os.close(detached_fd)


def _mount_tmpfs(sc: Syscalls, root_fd: int, mount: dict, opts: MountOptions) -> None:
    """A tmpfs over an existing directory takes that directory's mode unless
    ``mode=`` says otherwise (runc); over a new one the kernel's default
    (1777). With ``tmpcopyup`` the directory's contents are copied into it,
    read through an fd kept on the covered directory, so nothing is resolved
    by path once the tmpfs is in place; a read-only tmpfs is made read-only
    after the copy."""
    dest = mount["destination"]
    data = opts.data_string
    try:
        fd = open_in_root(root_fd, dest)
    except FileNotFoundError:
        fd = open_in_root(root_fd, dest, create="dir")
    else:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        data = f"mode={mode:04o}" + (f",{data}" if data else "")
    covered = None
    try:
        source = mount.get("source") or "tmpfs"
        if not opts.tmpcopyup:
            sc.mount(source, fd_path(fd), "tmpfs", opts.flags, data)
            return
        covered = os.open(fd_path(fd), _O_DIR)
        sc.mount(source, fd_path(fd), "tmpfs", opts.flags & ~s.MS_RDONLY, data)
        with _opened(root_fd, dest) as new_fd:
            top = os.open(fd_path(new_fd), _O_DIR)
            try:
                copy_tree(covered, top)
            finally:
                os.close(top)
            if opts.flags & s.MS_RDONLY:
                sc.mount(source, fd_path(new_fd), "tmpfs", opts.flags | s.MS_REMOUNT, data)
    finally:
        os.close(fd)
        if covered is not None:
            os.close(covered)


def copy_tree(src_dir: int, dst_dir: int) -> None:
    """Copy the entries of directory fd ``src_dir`` into directory fd ``dst_dir``:
    files, directories, symlinks, fifos and device nodes with their mode,
    owner and times; nothing is followed through a symlink. Raises ``OSError``."""
    for entry in os.scandir(src_dir):
        name = entry.name
        st = entry.stat(follow_symlinks=False)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(name, 0o700, dir_fd=dst_dir)
            sub_src = os.open(name, _O_DIR | os.O_NOFOLLOW, dir_fd=src_dir)
            sub_dst = os.open(name, _O_DIR | os.O_NOFOLLOW, dir_fd=dst_dir)
            try:
                copy_tree(sub_src, sub_dst)
            finally:
                os.close(sub_src)
                os.close(sub_dst)
        elif stat.S_ISREG(mode):
            src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_dir)
            try:
                dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                              | os.O_CLOEXEC, 0o600, dir_fd=dst_dir)
                try:
                    while os.sendfile(dst, src, None, 1 << 20):
                        pass
                finally:
                    os.close(dst)
            finally:
                os.close(src)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=src_dir), name, dir_fd=dst_dir)
        else:  # fifo, socket, char or block device
            os.mknod(name, mode, st.st_rdev, dir_fd=dst_dir)
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_dir, follow_symlinks=False)
        if not stat.S_ISLNK(mode):
            os.chmod(name, stat.S_IMODE(mode), dir_fd=dst_dir)
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_dir,
                 follow_symlinks=False)


def _require_plain_directory(root_fd: int, dest: str, fstype: str) -> None:
    # procfs or sysfs mounted through a symlink lands wherever the image points
    # it, and the masks meant for /proc would then miss (runc refuses as well).
    parent, name = os.path.split(os.path.normpath("/" + dest))
    with _opened(root_fd, parent, create="dir") as dir_fd:
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return
    if not stat.S_ISDIR(st.st_mode):
        raise RootfsError(f'filesystem "{fstype}" must be mounted on ordinary directory')


def _mount_cgroup(sc: Syscalls, root_fd: int, mount: dict, flags: int) -> None:
    """``type: cgroup``: cgroup2 on a unified host; on v1 a tmpfs holding one
    read-only bind of the container's own cgroup per hierarchy, as runc does."""
    dest = mount["destination"]
    if cgroupfs.is_unified():
        with _opened(root_fd, dest, create="dir") as fd:
            sc.mount("cgroup", fd_path(fd), "cgroup2", flags, None)
        return
    with _opened(root_fd, dest, create="dir") as fd:
        sc.mount("tmpfs", fd_path(fd), "tmpfs", flags & ~s.MS_RDONLY, "mode=755")
    for hierarchy in cgroupfs.v1_hierarchies():
        sub = dest.rstrip("/") + "/" + os.path.basename(hierarchy.mount_point)
        with _opened(root_fd, sub, create="dir") as fd:
            sc.mount(hierarchy.own_path(), fd_path(fd), None, s.MS_BIND | s.MS_REC, None)
        with _opened(root_fd, sub) as fd:
            sc.mount(None, fd_path(fd), None,
                     s.MS_BIND | s.MS_REMOUNT | s.MS_REC | (flags & ~s.MS_REMOUNT), None)


def _dev_is_bind_mounted(spec: dict) -> bool:
    for m in spec.get("mounts", []):
        if os.path.normpath(m["destination"]) == "/dev":
            return "bind" in (m.get("options") or []) or "rbind" in (m.get("options") or []) \
                or m.get("type") == "bind"
    return False


def create_devices(sc: Syscalls, root_fd: int, devices: list[Device], *, bind: bool) -> None:
    """Create device nodes inside the rootfs (mknod, or bind from the host when ``bind``).

    ``bind`` is for user namespaces, where mknod is not allowed.
    Raises ``RootfsError``; an existing node of a different type is an error.
    """
    old_umask = os.umask(0)
    try:
        for dev in devices:
            parent, name = os.path.split(os.path.normpath(dev.path))
            with _opened(root_fd, parent, create="dir") as dir_fd:
                try:
                    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                except FileNotFoundError:
                    st = None
                if st is not None and stat.S_ISLNK(st.st_mode):
                    # a bind (or a later mask with /dev/null) would follow it,
                    # e.g. onto a procfs file (CVE-2025-31133 class)
                    raise RootfsError(f"{dev.path} is a symlink in the rootfs; refusing to "
                                      "create a device through it")
                if bind:
                    if st is None:
                        os.close(os.open(name, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644,
                                         dir_fd=dir_fd))
                    with _opened(root_fd, dev.path) as fd:
                        sc.mount(dev.path, fd_path(fd), None, s.MS_BIND, None)
                    continue
                kind = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK,
                        "p": stat.S_IFIFO}[dev.kind]
                if st is not None:
                    if stat.S_IFMT(st.st_mode) == kind and st.st_rdev == os.makedev(dev.major, dev.minor):
                        continue
                    raise RootfsError(f"{dev.path} exists and is not the requested device")
                os.mknod(name, kind | dev.file_mode, os.makedev(dev.major, dev.minor), dir_fd=dir_fd)
                os.chown(name, dev.uid, dev.gid, dir_fd=dir_fd, follow_symlinks=False)
    except OSError as e:
        raise RootfsError(f"create device: {e}") from e
    finally:
        os.umask(old_umask)


def spec_devices(spec: dict) -> list[Device]:
    """The default devices plus ``linux.devices``, later entries replacing earlier ones."""
    by_path: dict[str, Device] = {d.path: d for d in DEFAULT_DEVICES}
    for d in spec.get("linux", {}).get("devices", []) or []:
        by_path[d["path"]] = Device(d["path"], d["type"], d.get("major", 0), d.get("minor", 0),
                                    d.get("fileMode", 0o666), d.get("uid", 0), d.get("gid", 0))
    return list(by_path.values())


def _symlink(root_fd: int, target: str, link: str, *, replace: bool = False) -> None:
    parent, name = os.path.split(link)
    with _opened(root_fd, parent, create="dir") as dir_fd:
        if replace:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=dir_fd)
        with contextlib.suppress(FileExistsError):
            os.symlink(target, name, dir_fd=dir_fd)


def setup_dev_symlinks(root_fd: int) -> None:
    """runtime-linux.md "Dev symbolic links" plus runc's ``/dev/ptmx -> pts/ptmx``."""
    links = [("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
             ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr")]
    if os.path.exists("/proc/kcore"):
        links.append(("/proc/kcore", "/dev/core"))
    for target, link in links:
        _symlink(root_fd, target, link)
    _symlink(root_fd, "pts/ptmx", "/dev/ptmx", replace=True)


def pivot_root(sc: Syscalls, root: str) -> None:
    """Make ``root`` the new ``/`` and detach the old root (runc ``pivotRoot``)."""
    old_root = os.open("/", _O_DIR)
    new_root = os.open(root, _O_DIR)
    try:
        os.fchdir(new_root)
        sc.pivot_root(".", ".")
        os.fchdir(old_root)
        # Keep unmounting the old root from propagating to the host.
        sc.mount(None, ".", None, s.MS_SLAVE | s.MS_REC, None)
        sc.umount2(".", s.MNT_DETACH)
    finally:
        os.close(old_root)
        os.close(new_root)
    os.chdir("/")


def move_root(sc: Syscalls, root: str) -> None:
    """``--no-pivot``: move the rootfs mount onto ``/`` and chroot (runc ``msMoveRoot``)."""
    os.chdir(root)
    sc.mount(root, "/", None, s.MS_MOVE, None)
    os.chroot(".")
    os.chdir("/")


def readonly_path(sc: Syscalls, path: str) -> None:
    """Bind ``path`` onto itself read-only; a missing path is skipped (runc)."""
    try:
        sc.mount(path, path, None, s.MS_BIND | s.MS_REC, None)
    except FileNotFoundError:
        return
    sc.mount(None, path, None, s.MS_BIND | s.MS_REMOUNT | s.MS_RDONLY | s.MS_REC, None)


def _check_dev_null() -> None:
    # A rootfs could have replaced /dev/null; binding a fake over /proc files
    # would unmask them (CVE-2025-31133 class).
    st = os.stat("/dev/null", follow_symlinks=False)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
        raise RootfsError("/dev/null is not the null device; refusing to mask paths with it")


def mask_path(sc: Syscalls, path: str) -> None:
    """Hide ``path``: ``/dev/null`` over a file, an empty read-only tmpfs over a directory."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        sc.mount("tmpfs", path, "tmpfs", s.MS_RDONLY, None)
    else:
        _check_dev_null()
        sc.mount("/dev/null", path, None, s.MS_BIND, None)


def setup_rootfs(sc: Syscalls, spec: dict, bundle: str, *, no_pivot: bool = False,
                 userns: bool = False, mount_ns: bool = True,
                 before_pivot: Callable[[], None] | None = None,
                 after_pivot: Callable[[], None] | None = None,
                 detached: dict[int, int] | None = None) -> None:
    """Build the container's filesystem view and switch into it (in the init, as root
    of its mount namespace). Steps in runc's order: propagation, mounts, devices,
    dev symlinks, pivot_root (or move+chroot), readonlyPaths, maskedPaths,
    ``root.readonly``. ``before_pivot`` runs after the mounts, while the host's
    paths are still reachable (runc runs the create-time hooks there);
    ``after_pivot`` runs in the new root before ``readonlyPaths`` and
    ``maskedPaths`` (runc writes the sysctls there, while /proc/sys is
    writable).
    Without a mount namespace (``mount_ns`` false) the mounts are made in the
    runtime's own namespace and the init chroots, as runc does; the host's
    ``/`` propagation is then left alone. ``detached``: mount index -> fd of
    the detached idmapped mount the runtime prepared for it (each is closed).
    Raises ``RootfsError``.
    """
    root = rootfs_path(spec, bundle)
    linux = spec.get("linux", {})
    if mount_ns:
        prepare_root(sc, spec, root)
    else:
        sc.mount(root, root, "bind", s.MS_BIND | s.MS_REC, None)
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        detached = dict(detached or {})
        for i, mount in enumerate(spec.get("mounts", []) or []):
            mount_entry(sc, root_fd, mount, bundle, detached.pop(i, None))
        if not _dev_is_bind_mounted(spec):
            create_devices(sc, root_fd, spec_devices(spec), bind=userns)
            setup_dev_symlinks(root_fd)
        cwd = (spec.get("process") or {}).get("cwd")
        if cwd:
            # runc creates a missing cwd (in-root, so a symlink cannot lead out)
            os.close(open_in_root(root_fd, cwd, create="dir"))
    finally:
        os.close(root_fd)
        for fd in (detached or {}).values():
            os.close(fd)
    if before_pivot is not None:
        before_pivot()
    try:
        if not mount_ns:
            os.chroot(root)
            os.chdir("/")
        elif no_pivot:
            move_root(sc, root)
        else:
            pivot_root(sc, root)
        if after_pivot is not None:
            after_pivot()
        for path in linux.get("readonlyPaths", []) or []:
            readonly_path(sc, path)
        for path in linux.get("maskedPaths", []) or []:
            mask_path(sc, path)
        if spec["root"].get("readonly"):
            sc.mount(None, "/", None, s.MS_BIND | s.MS_REMOUNT | s.MS_RDONLY | s.MS_REC, None)
        if linux.get("rootfsPropagation") and mount_ns:
            # runc 1.1 stops at the pre-pivot step, so "shared" never reaches
            # the container's mounts; the spec asks for the root mount itself.
            sc.mount(None, "/", None, propagation_flag(linux["rootfsPropagation"]), None)
    except OSError as e:
        if e.errno == errno.ENOENT:
            raise RootfsError(f"rootfs: {e}") from e
        raise RootfsError(f"rootfs: {e.strerror or e}: {e.filename or ''}") from e

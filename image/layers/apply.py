"""Apply a layer changeset to a root filesystem.

Implements image-spec layer.md "Applying Changesets": entries are extracted like
a tar archive, "Changeset over existing files" (two directories merge, anything
else is removed and recreated), "Whiteouts" (``.wh.NAME`` removes NAME from
*lower* layers only, the whiteout itself is never created) and "Opaque Whiteout"
(``.wh..wh..opq`` hides every lower child of its directory, wherever it appears
in the archive). File attributes: mode (incl. setuid/setgid/sticky), numeric
uid/gid, mtime, ``SCHILY.xattr.*``, symlinks, hardlinks, FIFOs and devices; PAX ``atime``;
sparse members (GNU and PAX formats) are written with holes.
``security.selinux`` labels are host policy, not image content: they are
dropped unless ``keep_selinux`` is asked for. Ownership goes through
:mod:`ketch.image.layers.ownership` (plain, id-mapped, or rootless: the ids
kept in the ``user.rootlesscontainers`` xattr, device nodes skipped with a
warning, directories kept owner-writable until :meth:`LayerApplier.finish`).

Every name goes through :mod:`ketch.image.paths`: parents resolve in-root, the
final component is never followed, and names or hardlink targets that climb out
of the root are refused with :class:`~ketch.image.errors.LayerError`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tarfile
from collections.abc import Callable
from typing import BinaryIO, TypeVar

from ketch.image.errors import LayerError, PathNotFound
from ketch.image.layers import mtree
from ketch.image.layers.ownership import ROOTLESS_XATTR, IdMap, encode_rootless, map_to_host
from ketch.image.layers.tarheader import FastTarInfo
from ketch.image.paths import Root, chmod_nofollow, clean_name, remove_nofollow

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
# aufs keeps its own bookkeeping under .wh..wh.*; such entries carry no change.
_AUFS_META_PREFIX = ".wh..wh."

# Zero runs at least this long (and aligned to it) become holes in sparse files.
_SPARSE_CHUNK = 64 * 1024
_DIRTYPE = tarfile.DIRTYPE
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_RDIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

Key = tuple[str, ...]
T = TypeVar("T")


def _ignore(_msg: str) -> None:
    pass


class LayerApplier:
    """Applies one layer at a time onto ``root`` (a :class:`~ketch.image.paths.Root`).

    ``warn`` receives one-line messages about entries that are skipped or
    attributes that cannot be set (e.g. an xattr the filesystem rejects).
    """

    def __init__(self, root: Root, warn: Callable[[str], None] = _ignore, *,
                 rootless: bool = False, uid_map: list[IdMap] | None = None,
                 gid_map: list[IdMap] | None = None, keep_selinux: bool = False,
                 max_entries: int | None = None) -> None:
        self.root = root
        self.warn = warn
        self.rootless = rootless
        self.uid_map = list(uid_map or [])
        self.gid_map = list(gid_map or [])
        self.keep_selinux = keep_selinux
        self.max_entries = max_entries
        # rootless: directory modes that would lock the unpacking user out, set last
        self.deferred_modes: dict[Key, int] = {}
        # The mtree record of each regular file as it was left (see recorded_files()),
        # and the inodes a hardlink was made to, whose records went stale.
        self._file_records: dict[str, mtree.Record] = {}
        self._linked_inodes: set[int] = set()
        self._reset()

    def _reset(self) -> None:
        # Paths (physical, relative to the root) this layer created, and every
        # ancestor of them: whiteouts must not hide what the same layer added.
        self.created: set[Key] = set()
        self.ancestors: set[Key] = set()
        # Directory times to (re)apply when the layer is done: creating
        # children changes a directory's mtime, and the layer's own value wins.
        self.times: dict[Key, tuple[int, int]] = {}
        self._cached: tuple[Key, int] | None = None  # see _parent()

    def apply(self, stream: BinaryIO) -> None:
        """Apply the uncompressed tar ``stream`` as a layer.

        Raises :class:`LayerError` for malformed archives and hostile entries.
        """
        self._reset()
        try:
            # TarFile in read mode over a forward-only reader: what tarfile.open(mode="r|")
            # builds, minus _Stream, which copies its buffer on every header read.
            with tarfile.TarFile(fileobj=_ArchiveReader(stream), mode="r", errorlevel=2,
                                 tarinfo=FastTarInfo) as tf:
                for count, member in enumerate(tf, 1):
                    if self.max_entries is not None and count > self.max_entries:
                        raise LayerError(
                            f"layer has more than {self.max_entries} entries (tar-bomb budget)")
                    self._entry(tf, member)
        except tarfile.ReadError as e:
            # A layer of zero bytes (e.g. gzip of nothing) is an empty changeset, as
            # umoci reads it; tarfile calls that "empty file" before any header.
            if str(e) != "empty file":
                raise LayerError(f"invalid layer archive: {e}") from None
        except tarfile.TarError as e:
            raise LayerError(f"invalid layer archive: {e}") from None
        finally:
            self._drop_cached()
        self._apply_times()

    # -- entries ------------------------------------------------------------------

    def _entry(self, tf: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        comps = clean_name(member.name)
        if comps and comps[-1].startswith(WHITEOUT_PREFIX):
            self._whiteout(comps, member.name)
            return
        if not comps:
            self._root_entry(member)
            return
        pfd, name, parent, owned = self._parent(comps)
        try:
            key = (*parent, name)
            cached = self._cached
            if cached is not None and len(key) <= len(cached[0]) and key == cached[0][:len(key)]:
                self._drop_cached()  # this entry may replace a directory on the cached path
            if parent not in self.times:
                self._note_dir_time(pfd, parent)
            if member.type == _DIRTYPE:
                self._directory(pfd, name, key, member)
            else:
                self._non_directory(tf, pfd, name, key, member)
            self.created.add(key)
            ancestors = self.ancestors
            # Deepest first: once one is known, so are all above it.
            for i in range(len(key) - 1, -1, -1):
                above = key[:i]
                if above in ancestors:
                    break
                ancestors.add(above)
        finally:
            if owned:
                os.close(pfd)

    def _parent(self, comps: list[str]) -> tuple[int, str, Key, bool]:
        """``(dir fd, name, physical parent, caller closes fd)`` for an entry.

        Sorted layers put siblings next to each other, so the last parent
        directory is kept open and reused, but only when its physical path is
        its name (no symlink resolved on the way): then only an entry at that
        path or above it can change what the name resolves to, and such an
        entry drops the cached fd first (see :meth:`_entry`); whiteouts drop it too.
        """
        lexical = tuple(comps[:-1])
        cached = self._cached
        if cached is not None and cached[0] == lexical:
            return cached[1], comps[-1], lexical, False
        pfd, name, parent = self.root.walk(comps, follow_final=False, create=True)
        physical = tuple(parent)
        if physical != lexical:
            return pfd, name, physical, True
        self._drop_cached()
        self._cached = (lexical, pfd)
        return pfd, name, lexical, False

    def _drop_cached(self) -> None:
        if self._cached is not None:
            os.close(self._cached[1])
            self._cached = None

    def _root_entry(self, member: tarfile.TarInfo) -> None:
        # CVE-2021-29136 (umoci): an entry for "/" must not change its type.
        if not member.isdir():
            raise LayerError(f"refusing entry {member.name!r}: would replace the root directory")
        fd = self.root.fd
        self._own_fd(fd, member)
        self._chmod_dir(f"/proc/self/fd/{fd}", (), stat.S_IMODE(member.mode))
        self._xattrs_fd(fd, member)
        self.times[()] = _times(member)

    def _directory(self, pfd: int, name: str, key: Key, member: tarfile.TarInfo) -> None:
        st = _lstat(pfd, name)
        if st is None or not stat.S_ISDIR(st.st_mode):
            if st is not None:
                remove_nofollow(pfd, name)
            # Created with its final permissions where the umask allows, so that the
            # usual 0755 directory needs no chmod (each is a journalled inode update).
            perms = stat.S_IMODE(member.mode) & 0o777
            os.mkdir(name, perms | 0o700 if self.rootless else perms, dir_fd=pfd)
        self._metadata(pfd, name, member, key)
        self.times[key] = _times(member)

    def _non_directory(self, tf: tarfile.TarFile, pfd: int, name: str, key: Key,
                       member: tarfile.TarInfo) -> None:
        if member.islnk():
            self._hardlink(pfd, name, key, member)
            return
        if not (member.isreg() or member.issym() or member.ischr() or member.isblk()
                or member.isfifo()):
            self.warn(f"skipping {member.name!r}: unsupported tar entry type {member.type!r}")
            return
        if self.rootless and (member.ischr() or member.isblk()):
            self.warn(f"skipping device {member.name!r}: rootless unpack cannot create devices")
            return
        if member.isreg():
            self._regular(tf, pfd, name, key, member)
            return
        if member.issym():
            _replacing(pfd, name, lambda: os.symlink(member.linkname, name, dir_fd=pfd))
        elif member.isfifo():
            _replacing(pfd, name, lambda: os.mkfifo(name, 0o600, dir_fd=pfd))
        else:
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            dev = os.makedev(member.devmajor, member.devminor)
            _replacing(pfd, name, lambda: os.mknod(name, kind | 0o600, dev, dir_fd=pfd))
        self._metadata(pfd, name, member)
        os.utime(name, ns=_times(member), dir_fd=pfd, follow_symlinks=False)

    def _regular(self, tf: tarfile.TarFile, pfd: int, name: str, key: Key,
                 member: tarfile.TarInfo) -> None:
        mode = member.mode & 0o7777  # stat.S_IMODE
        # Created with its final permission bits (the write fd works whatever they say),
        # owner and mode then changed only when they differ: most files need neither.
        # (Rootless: owner-writable until the end, or its xattrs could not be set.)
        perms = mode & 0o777 | (0o600 if self.rootless else 0)
        try:
            fd = os.open(name, _CREATE_FLAGS, perms, dir_fd=pfd)
        except FileExistsError:
            remove_nofollow(pfd, name)
            fd = os.open(name, _CREATE_FLAGS, perms, dir_fd=pfd)
        try:
            if member.sparse is not None:
                src = tf.extractfile(member)
                if src is not None:
                    _write_sparse(fd, src, member.size)
            else:
                _copy_data(tf, fd, member)
            # Times first (chown, chmod and xattrs leave them alone): when nothing else
            # is needed, this fstat already shows the file as it stays.
            os.utime(fd, ns=_times(member))
            st = os.fstat(fd)
            chowned = self._own_fd(fd, member, opened=True, current=st)
            xattrs = member.pax_headers  # SCHILY.xattr.* records, if any
            if xattrs and self.rootless:
                self._xattrs_fd(fd, member)
            chmodded = chowned or st.st_mode & 0o7777 != mode
            if chmodded:
                os.fchmod(fd, mode)  # after chown, which clears setuid/setgid
            if xattrs and not self.rootless:
                self._xattrs_fd(fd, member)  # after chown, which clears security.capability
            if not (chmodded or xattrs or self.rootless):
                self._record_file(fd, key, st)
            elif self._file_records:
                # A lower layer's record of this path is stale even if its inode
                # number came back (ext4 may reuse a freed one).
                self._file_records.pop("/".join(key), None)
        finally:
            os.close(fd)

    def _record_file(self, fd: int, key: Key, st: os.stat_result) -> None:
        """Keep the mtree record of the regular file ``fd`` at ``key`` whose final
        ``fstat`` is ``st``, unless it has xattrs an image keeps (then the walk
        records it)."""
        name = "/".join(key)
        names = os.listxattr(fd)
        if names and any(not x.startswith(mtree.SKIP_XATTR_PREFIXES) for x in names):
            self._file_records.pop(name, None)
            return
        self._file_records[name] = mtree.Record(
            "file", st.st_mode & 0o7777, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, "",
            "", "", st.st_ino, st.st_ctime_ns, st.st_nlink)

    def recorded_files(self) -> dict[str, mtree.Record]:
        """``{path relative to the root: mtree record}`` of regular files as this applier
        left them, for :func:`ketch.image.layers.mtree.snapshot`'s ``known``.

        A record is taken with the file's last ``fstat`` (after its times, owner,
        mode), so it is what ``lstat`` shows later as long as nothing changes that
        inode: records of inodes that got a hardlink are left out (the link moved
        their ctime and nlink); a path removed or replaced by a later entry no longer
        has the inode of its record, which the snapshot checks. Not kept in rootless
        mode, nor for files with xattrs an image keeps or that needed a chmod.
        """
        return {n: r for n, r in self._file_records.items() if r.ino not in self._linked_inodes}

    def _hardlink(self, pfd: int, name: str, key: Key, member: tarfile.TarInfo) -> None:
        target = clean_name(member.linkname)  # refuses names that climb out of the root
        if not target:
            raise LayerError(f"refusing hardlink {member.name!r} to the root directory")
        try:
            sfd, sname, sparent = self.root.walk(target, follow_final=False)
        except PathNotFound:
            raise LayerError(
                f"refusing hardlink {member.name!r}: target {member.linkname!r} does not exist "
                "in the root filesystem") from None
        try:
            if (*sparent, sname) == key:
                raise LayerError(f"refusing hardlink {member.name!r} to itself")
            st = _lstat(sfd, sname) if sname else None
            if st is None:
                raise LayerError(
                    f"refusing hardlink {member.name!r}: target {member.linkname!r} does not "
                    "exist in the root filesystem")
            if stat.S_ISDIR(st.st_mode):
                raise LayerError(f"refusing hardlink {member.name!r} to a directory")
            remove_nofollow(pfd, name)
            os.link(sname, name, src_dir_fd=sfd, dst_dir_fd=pfd, follow_symlinks=False)
            self._linked_inodes.add(st.st_ino)
        finally:
            os.close(sfd)

    # -- whiteouts ----------------------------------------------------------------

    def _whiteout(self, comps: list[str], raw: str) -> None:
        self._drop_cached()
        base = comps[-1]
        if base == OPAQUE_WHITEOUT:
            self._opaque(comps[:-1])
            return
        if base.startswith(_AUFS_META_PREFIX):
            return
        victim = base[len(WHITEOUT_PREFIX):]
        if not victim or victim in (".", ".."):
            raise LayerError(f"invalid whiteout entry {raw!r}")
        try:
            walked = self.root.walk([*comps[:-1], victim], follow_final=False)
        except PathNotFound:
            return  # nothing below to hide
        pfd, name, parent = walked
        try:
            key = (*parent, name)
            if key in self.created or key in self.ancestors:
                # The layer itself (re)created this path: only its lower content goes.
                st = _lstat(pfd, name)
                if st is not None and stat.S_ISDIR(st.st_mode):
                    self._clear_lower_in(pfd, name, key)
                return
            self._note_dir_time(pfd, tuple(parent))
            remove_nofollow(pfd, name)
        finally:
            os.close(pfd)

    def _opaque(self, dir_comps: list[str]) -> None:
        try:
            pfd, name, parent = self.root.walk(dir_comps, follow_final=True)
        except PathNotFound:
            return
        try:
            key = (*parent, name) if name else tuple(parent)
            if name:
                st = _lstat(pfd, name)
                if st is None or not stat.S_ISDIR(st.st_mode):
                    return
            self._clear_lower_in(pfd, name, key)
        finally:
            os.close(pfd)

    def _clear_lower_in(self, pfd: int, name: str, key: Key) -> None:
        dfd = os.open(name or ".", _RDIR_FLAGS, dir_fd=pfd)
        try:
            self._note_dir_time(dfd, key)
            self._clear_lower(dfd, key)
        finally:
            os.close(dfd)

    def _clear_lower(self, dfd: int, key: Key) -> None:
        """Remove every child of ``dfd`` that this layer did not create (recursively)."""
        for child in os.listdir(dfd):
            ckey = (*key, child)
            if ckey in self.created or ckey in self.ancestors:
                st = _lstat(dfd, child)
                if st is not None and stat.S_ISDIR(st.st_mode):
                    cfd = os.open(child, _RDIR_FLAGS, dir_fd=dfd)
                    try:
                        self._clear_lower(cfd, ckey)
                    finally:
                        os.close(cfd)
            else:
                remove_nofollow(dfd, child)

    # -- attributes ---------------------------------------------------------------

    def _metadata(self, pfd: int, name: str, member: tarfile.TarInfo,
                  key: Key | None = None) -> None:
        if member.issym():
            # Linux symlinks have no mode of their own and no user.* xattrs.
            if not self.rootless:
                os.chown(name, map_to_host(self.uid_map, member.uid, "uid"),
                         map_to_host(self.gid_map, member.gid, "gid"), dir_fd=pfd,
                         follow_symlinks=False)
            return
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        try:
            st = os.fstat(fd)
            # chown first: it clears setuid/setgid bits that chmod then sets.
            chowned = self._own_fd(fd, member, current=st)
            current = None if chowned else stat.S_IMODE(st.st_mode)
            if member.isdir() and key is not None:
                self._chmod_dir(f"/proc/self/fd/{fd}", key, stat.S_IMODE(member.mode), current)
            elif current != stat.S_IMODE(member.mode):
                chmod_nofollow(pfd, name, stat.S_IMODE(member.mode))
            self._xattrs_fd(fd, member)
        finally:
            os.close(fd)

    def _own_fd(self, fd: int, member: tarfile.TarInfo, opened: bool = False,
                current: os.stat_result | None = None) -> bool:
        """Give the file behind ``fd`` the entry's owner; return True if it was chowned.

        ``opened``: ``fd`` is a real open file (fchown works); else it may be
        O_PATH (reached via /proc/self/fd). ``current``: its stat, to skip a
        chown that would change nothing.
        """
        if not self.rootless:
            uid = map_to_host(self.uid_map, member.uid, "uid")
            gid = map_to_host(self.gid_map, member.gid, "gid")
            if current is not None and current.st_uid == uid and current.st_gid == gid:
                return False
            if opened:
                os.fchown(fd, uid, gid)
            else:
                os.chown(f"/proc/self/fd/{fd}", uid, gid)
            return True
        path = f"/proc/self/fd/{fd}"
        value = encode_rootless(member.uid, member.gid)
        if not (member.isreg() or member.isdir()):
            # Linux allows user.* xattrs only on regular files and directories.
            if value:
                self.warn(f"{member.name}: owner {member.uid}:{member.gid} cannot be recorded "
                          "on a special file in a rootless unpack")
            return False
        try:
            if value:
                os.setxattr(path, ROOTLESS_XATTR, value)
            else:
                os.removexattr(path, ROOTLESS_XATTR)
        except OSError as e:
            if e.errno == errno.ENODATA:
                return False
            if e.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
                raise
            self.warn(f"{member.name}: cannot record owner {member.uid}:{member.gid} "
                      f"in {ROOTLESS_XATTR}: {e.strerror}")
        return False

    def _chmod_dir(self, path: str, key: Key, mode: int, current: int | None = None) -> None:
        """chmod a directory (skipped when ``current`` already is the mode to set)."""
        if self.rootless and mode & 0o700 != 0o700:
            # Later entries must still be creatable inside it; finish() sets the real mode.
            self.deferred_modes[key] = mode
            mode |= 0o700
        else:
            self.deferred_modes.pop(key, None)
        if mode != current:
            os.chmod(path, mode)

    def finish(self) -> None:
        """Call once after the last layer: applies deferred (rootless) directory modes."""
        self._each_directory(
            self.deferred_modes,
            lambda path, mode: os.chmod(path, mode),
            lambda pfd, name, mode: chmod_nofollow(pfd, name, mode))
        self.deferred_modes.clear()

    def _each_directory(self, values: dict[Key, T], on_root: Callable[[str, T], None],
                        on_child: Callable[[int, str, T], None]) -> None:
        """For each key (deepest first) still naming a directory in the rootfs:
        ``on_root(fd path, value)`` for the root itself, else ``on_child(parent
        fd, name, value)``; paths that vanished or are no longer directories
        (a later layer replaced them) are skipped."""
        for key in sorted(values, key=len, reverse=True):
            value = values[key]
            if not key:
                on_root(f"/proc/self/fd/{self.root.fd}", value)
                continue
            try:
                pfd, name, _ = self.root.walk(list(key), follow_final=False)
            except PathNotFound:
                continue
            try:
                st = _lstat(pfd, name)
                if st is not None and stat.S_ISDIR(st.st_mode):
                    on_child(pfd, name, value)
            finally:
                os.close(pfd)

    def _xattrs_fd(self, fd: int, member: tarfile.TarInfo) -> None:
        for attr, value in _xattrs(member).items():
            if attr.startswith("security.selinux") and not self.keep_selinux:
                continue
            if attr == ROOTLESS_XATTR and self.rootless:
                continue  # ownership is ours to record
            try:
                os.setxattr(f"/proc/self/fd/{fd}", attr, value)
            except OSError as e:
                if e.errno not in (errno.ENOTSUP, errno.EPERM, errno.EOPNOTSUPP):
                    raise
                self.warn(f"{member.name}: cannot set xattr {attr}: {e.strerror}")

    def _note_dir_time(self, dfd: int, key: Key) -> None:
        if key not in self.times:
            st = os.fstat(dfd)
            self.times[key] = (st.st_atime_ns, st.st_mtime_ns)

    def _apply_times(self) -> None:
        # Deepest first is not required (a child's utime does not touch its
        # parent), but it keeps the walk order predictable.
        self._each_directory(
            self.times,
            lambda path, ns: os.utime(path, ns=ns),
            lambda pfd, name, ns: os.utime(name, ns=ns, dir_fd=pfd, follow_symlinks=False))


def _replacing(pfd: int, name: str, create: Callable[[], T]) -> T:
    """Run ``create`` (which makes ``name`` in ``pfd``); when something is already
    there, remove it (never following a symlink) and create again."""
    try:
        return create()
    except FileExistsError:
        remove_nofollow(pfd, name)
        return create()


def _lstat(dfd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _times(member: tarfile.TarInfo) -> tuple[int, int]:
    """(atime, mtime) in ns: the PAX ``atime`` when the entry has one, else the mtime."""
    mtime = round(float(member.mtime) * 1_000_000_000)
    atime = mtime
    if "atime" in member.pax_headers:
        with contextlib.suppress(ValueError):
            atime = round(float(member.pax_headers["atime"]) * 1_000_000_000)
    return atime, mtime


def _copy_data(tf: tarfile.TarFile, fd: int, member: tarfile.TarInfo) -> None:
    """Copy a plain member's data straight from the archive reader into ``fd``.

    tarfile's own member reader goes through two more buffering layers;
    reading exactly ``size`` bytes at the reader's position is equivalent (the
    next header read skips the block padding that follows).
    """
    reader: _ArchiveReader = tf.fileobj  # type: ignore[assignment]  # see apply()
    remaining = member.size
    view = reader.view
    while remaining > 0:
        chunk = view(min(remaining, 1 << 20))
        if not chunk:
            raise LayerError(f"{member.name}: unexpected end of the layer archive")
        _write_all(fd, chunk)
        remaining -= len(chunk)


class _ArchiveReader:
    """The uncompressed layer as tarfile's read mode needs it: ``read`` (exactly
    ``size`` bytes unless the stream ends), ``tell``, and ``seek`` forward only
    (a backward seek raises ``tarfile.StreamError``, as in ``r|`` mode).

    ``stream``: any binary stream; a :class:`~ketch.image.layers.stream.LayerStream`
    (its ``read_view``) lets member data reach ``os.write`` without a copy.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._read = stream.read
        self._read_view = getattr(stream, "read_view", None)
        self.pos = 0

    def tell(self) -> int:
        return self.pos

    def read(self, size: int) -> bytes:
        data = self._read(size)
        if len(data) < size and data:  # a short read at a piece boundary: go on
            parts = [data]
            got = len(data)
            while got < size:
                more = self._read(size - got)
                if not more:
                    break
                parts.append(more)
                got += len(more)
            data = b"".join(parts)
        self.pos += len(data)
        return data

    def view(self, size: int) -> bytes | memoryview:
        """Up to ``size`` bytes (fewer at a piece boundary, empty at the end)."""
        data = self._read_view(size) if self._read_view is not None else self._read(size)
        self.pos += len(data)
        return data

    def seek(self, pos: int) -> int:
        if pos < self.pos:
            raise tarfile.StreamError("seeking backwards is not allowed")
        while self.pos < pos:
            if not self.view(min(pos - self.pos, 1 << 20)):
                break
        return self.pos


def _write_sparse(fd: int, src: BinaryIO, size: int) -> None:
    """Copy a sparse member (GNU or PAX sparse), leaving zero runs as holes."""
    while chunk := src.read(_SPARSE_CHUNK):
        if chunk.count(0) == len(chunk):
            os.lseek(fd, len(chunk), os.SEEK_CUR)
        else:
            _write_all(fd, chunk)
    os.ftruncate(fd, size)


def _xattrs(member: tarfile.TarInfo) -> dict[str, bytes]:
    out = {}
    for k, v in member.pax_headers.items():
        if k.startswith("SCHILY.xattr."):
            # tarfile decodes PAX values with surrogateescape; this restores the raw bytes.
            out[k[len("SCHILY.xattr."):]] = v.encode("utf-8", "surrogateescape")
    return out


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]

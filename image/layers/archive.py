"""Write reproducible layer tars (image-spec layer.md "Distributable Format").

The same input always gives the same bytes: entries sorted by path components
(a directory before its contents), PAX format, numeric uid/gid with empty
user/group names, whole-second mtimes, no atime/ctime, hardlinks recorded
against the first path in sorted order, and a gzip stream with a zero
timestamp and no file name. File attributes follow layer.md "File Attributes"
(mode, uid, gid, mtime, xattrs as ``SCHILY.xattr.*``, symlink and hardlink
targets); sockets cannot be represented in tar and are skipped.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from ketch.image.errors import LayerError
from ketch.image.layers.ownership import ROOTLESS_XATTR, decode_rootless
from ketch.image.paths import clean_name

# Host-specific labels must not leak into an image.
_SKIP_XATTR_PREFIXES = ("security.selinux", "system.")
GZIP_LEVEL = 6


def _ignore(_msg: str) -> None:
    pass


def _sort_key(name: str) -> list[str]:
    return name.split("/") if name else []


class _HashingWriter(io.RawIOBase):
    """Write-through stream that hashes and counts what passes."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.hash = hashlib.sha256()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        data = bytes(b)
        self.inner.write(data)
        self.hash.update(data)
        self.count += len(data)
        return len(data)


@dataclass
class LayerDigests:
    """Digests of a written layer: ``digest``/``size`` of the blob, ``diff_id`` of the tar."""

    digest: str
    size: int
    diff_id: str


@dataclass
class _Entry:
    info: tarfile.TarInfo
    opener: Callable[[], BinaryIO] | None = None


def _xattrs_of(path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for name in sorted(names):
        if name.startswith(_SKIP_XATTR_PREFIXES):
            continue
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
        # tarfile writes non-UTF-8 PAX values as hdrcharset=BINARY from surrogates.
        out["SCHILY.xattr." + name] = value.decode("utf-8", "surrogateescape")
    return out


def entry_for_path(path: str, name: str, st: os.stat_result,
                   warn: Callable[[str], None] = _ignore, *,
                   rootless: bool = False) -> _Entry | None:
    """A tar entry named ``name`` (``""`` for the root) for the file at host ``path``.

    ``st`` is its ``lstat``. Hardlinks are not detected here (callers that
    group inodes set ``LNKTYPE`` themselves). With ``rootless`` the owner is
    the one recorded in the ``user.rootlesscontainers`` xattr (0:0 without
    it), and that xattr is not copied. Returns None for sockets (with a
    warning): tar cannot represent them.
    """
    mode = st.st_mode
    info = tarfile.TarInfo(name or "./")
    info.mode = stat.S_IMODE(mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = int(st.st_mtime)
    opener = None
    if stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISREG(mode):
        info.type = tarfile.REGTYPE
        info.size = st.st_size
        opener = functools.partial(open, path, "rb")
    elif stat.S_ISLNK(mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(path)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    else:
        warn(f"skipping {name}: sockets cannot be stored in a layer")
        return None
    info.pax_headers = _xattrs_of(path)
    if rootless:
        raw = info.pax_headers.pop("SCHILY.xattr." + ROOTLESS_XATTR, None)
        info.uid, info.gid = (decode_rootless(raw.encode("utf-8", "surrogateescape"))
                              if raw is not None else (0, 0))
    return _Entry(info, opener)


def as_hardlink(entry: _Entry, target: str) -> _Entry:
    """``entry`` turned into a hardlink to ``target`` (an earlier name in the same layer)."""
    entry.info.type = tarfile.LNKTYPE
    entry.info.linkname = target
    entry.info.size = 0
    entry.info.pax_headers = {}
    entry.opener = None
    return entry


def entries_from_dir(src: str, warn: Callable[[str], None] = _ignore) -> Iterator[_Entry]:
    """Yield tar entries for everything under directory ``src`` (``src`` itself as ``./``)."""
    src = os.path.abspath(src)
    names: list[str] = []
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        rel = os.path.relpath(dirpath, src)
        prefix = "" if rel == "." else rel + "/"
        names.extend(prefix + n for n in dirnames + filenames)
    names.sort(key=_sort_key)
    first_link: dict[tuple[int, int], str] = {}
    for name in ["", *names]:
        path = os.path.join(src, name) if name else src
        st = os.lstat(path)
        entry = entry_for_path(path, name, st, warn)
        if entry is None:
            continue
        if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in first_link:
                entry = as_hardlink(entry, first_link[key])
            else:
                first_link[key] = name
        yield entry


def entries_from_tar(path: str, warn: Callable[[str], None] = _ignore) -> Iterator[_Entry]:
    """Yield normalised, sorted entries of an existing tar (any compression tarfile reads).

    Names are cleaned (``..`` escaping the root raises :class:`LayerError`),
    later duplicates win, and hardlink groups are re-anchored on the name that
    sorts first so every link follows its target.
    """
    try:
        tf = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by the with block below
    except tarfile.ReadError:
        raise LayerError(f"{path}: not a tar archive (plain, gzip, bzip2 or xz)") from None
    except (tarfile.TarError, OSError) as e:
        raise LayerError(f"{path}: cannot read tar archive: {e}") from None
    with tf:
        members: dict[str, tarfile.TarInfo] = {}
        for m in tf.getmembers():
            name = "/".join(clean_name(m.name))
            if m.islnk():
                m.linkname = "/".join(clean_name(m.linkname))
            members[name] = m
        # Union hardlinks into groups keyed by the member that holds the data.
        def data_owner(name: str) -> str:
            seen = set()
            while members.get(name) is not None and members[name].islnk():
                if name in seen:
                    raise LayerError(f"{path}: hardlink loop at {name!r}")
                seen.add(name)
                name = members[name].linkname
            if name not in members:
                raise LayerError(f"{path}: hardlink target {name!r} missing from the archive")
            return name

        groups: dict[str, list[str]] = {}
        for name, m in members.items():
            if m.islnk():
                groups.setdefault(data_owner(name), []).append(name)
        anchor: dict[str, str] = {}
        for owner, links in groups.items():
            first = min([owner, *links], key=_sort_key)
            for n in [owner, *links]:
                anchor[n] = first
        for name in sorted(members, key=_sort_key):
            m = members[name]
            owner = data_owner(name) if m.islnk() else name
            src = members[owner]
            info = tarfile.TarInfo(name or "./")
            info.mode = stat.S_IMODE(src.mode)
            info.uid, info.gid = src.uid, src.gid
            info.uname = info.gname = ""
            info.mtime = int(src.mtime)
            info.pax_headers = {k: v for k, v in src.pax_headers.items()
                                if k.startswith("SCHILY.xattr.")}
            opener = None
            if name in anchor and anchor[name] != name:
                info.type, info.linkname, info.pax_headers = tarfile.LNKTYPE, anchor[name], {}
            elif src.isreg():
                info.type, info.size = tarfile.REGTYPE, src.size
                opener = functools.partial(_read_member, tf, src)
            elif src.isdir() or src.issym() or src.ischr() or src.isblk() or src.isfifo():
                info.type, info.linkname = src.type, src.linkname
                info.devmajor, info.devminor = src.devmajor, src.devminor
            else:
                warn(f"skipping {name}: unsupported tar entry type {src.type!r}")
                continue
            if not name and info.type != tarfile.DIRTYPE:
                raise LayerError(f"{path}: root entry is not a directory")
            yield _Entry(info, opener)


def _read_member(tf: tarfile.TarFile, member: tarfile.TarInfo) -> BinaryIO:
    f = tf.extractfile(member)
    if f is None:
        raise LayerError(f"cannot read {member.name} from the archive")
    return f  # type: ignore[return-value]


def write_layer(entries: Iterable[_Entry], out: BinaryIO, *, compress: bool = True) -> LayerDigests:
    """Write ``entries`` as a (gzip-compressed) layer tar into ``out``.

    Returns the blob digest/size and the diff_id (sha256 of the uncompressed tar).
    """
    blob = _HashingWriter(out)
    gz = gzip.GzipFile(filename="", mode="wb", fileobj=blob, mtime=0,  # type: ignore[arg-type]
                       compresslevel=GZIP_LEVEL) if compress else None
    tar_stream = _HashingWriter(gz if gz is not None else blob)  # type: ignore[arg-type]
    with tarfile.open(fileobj=tar_stream, mode="w|", format=tarfile.PAX_FORMAT) as tf:  # type: ignore[call-overload]
        for e in entries:
            if e.opener is None:
                tf.addfile(e.info)
                continue
            with e.opener() as f:
                tf.addfile(e.info, f)
    if gz is not None:
        gz.close()
    return LayerDigests(digest="sha256:" + blob.hash.hexdigest(), size=blob.count,
                        diff_id="sha256:" + tar_stream.hash.hexdigest())

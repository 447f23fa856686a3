"""An mtree-like manifest of a root filesystem, and the changes made since it was taken.

``ketch-image unpack`` records what it laid down (one line per path, like
BSD mtree(5): ``type mode uid gid size time link device`` plus a digest of the
xattrs); ``repack`` walks the rootfs again and compares. The comparison is
stat-based, as git's index is: besides the mtree keywords each line keeps the
inode number and ctime, and a regular file whose inode or ctime moved is
treated as modified (any write, chmod, chown, link or xattr change moves the
ctime). Content is never hashed at unpack, which keeps unpack fast.

A copied bundle (``cp -a``, rsync, a restore from backup) has new inode
numbers and ctimes everywhere, so they say nothing there. The rule: when the
rootfs root directory's inode number differs from the recorded one (or its
device from the one ``ketch-image.json`` recorded), the tree counts as copied
and :func:`compare` runs in copied mode:

- directories are compared by the mtree keywords only (a new inode is not
  "replaced": no opaque whiteout; deletions inside still give whiteouts);
- regular files whose keywords differ (or whose link count moved) are
  modified; those whose keywords all agree but whose inode or ctime moved
  are candidates, and the caller decides by content: repack compares each
  candidate byte for byte with the content the recorded image's layers
  leave at that path (streamed from the layout, only in copied mode), so a
  same-size, same-mtime content change is still found; a file the layers do
  not hold counts as modified. No digest is kept per file at unpack: that
  would cost every unpack a read of every file, for the rare copied bundle.

Copied mode is as exact as the in-place compare about the tree a layer
reproduces; what it gives up is only the detection of a directory deleted
and re-created with identical metadata, which is recorded as individual
whiteouts and additions instead of an opaque whiteout (same resulting tree).
It costs a read of the base image's layers (about as long as an unpack).

The change kinds map to image-spec layer.md "Change Types": additions and
modifications become entries, deletions become whiteouts (``.wh.NAME``,
"Whiteouts"), and a directory whose inode changed (deleted and re-created)
becomes an opaque whiteout (``.wh..wh..opq``, "Opaque Whiteout") followed by
all its current content.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from ketch.image.errors import ImageError

HEADER = "#ketch-mtree v1"
# Same as the layer writer: host-specific labels never enter an image.
SKIP_XATTR_PREFIXES = ("security.selinux", "system.")

_TYPES = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "link",
          stat.S_IFIFO: "fifo", stat.S_IFCHR: "char", stat.S_IFBLK: "block",
          stat.S_IFSOCK: "socket"}


class Record(NamedTuple):
    """What the manifest keeps about one path (``mtime``/``ctime`` in nanoseconds).

    A named tuple rather than a dataclass: one is built per path on every unpack
    and repack, and a tuple is several times cheaper to make.
    """

    type: str
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int
    link: str = ""
    device: str = ""
    xattrs: str = ""
    ino: int = 0
    ctime: int = 0
    nlink: int = 1

    def same_metadata(self, other: Record) -> bool:
        """True when every mtree keyword agrees (inode and ctime are not compared)."""
        return self[:9] == other[:9]


Manifest = dict[str, Record]  # "" is the root, else "a/b/c" relative to it


def _xattr_digest(path: str, names: list[str] | None = None) -> str:
    """Digest of the xattrs of ``path`` (not followed) that an image keeps; ``names``:
    its xattr names when already listed."""
    if names is None:
        try:
            names = os.listxattr(path, follow_symlinks=False)
        except OSError:
            return ""
    h = hashlib.sha256()
    kept = 0
    for name in sorted(names):
        if name.startswith(SKIP_XATTR_PREFIXES):
            continue
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
        h.update(name.encode() + b"\0" + len(value).to_bytes(8, "big") + value)
        kept += 1
    return h.hexdigest()[:32] if kept else ""


def record_for(path: str, st: os.stat_result) -> Record:
    """The :class:`Record` of the file at host ``path`` whose ``lstat`` is ``st``."""
    kind = _TYPES.get(stat.S_IFMT(st.st_mode), "other")
    link = os.readlink(path) if kind == "link" else ""
    device = (f"{os.major(st.st_rdev)},{os.minor(st.st_rdev)}" if kind in ("char", "block")
              else "")
    return Record(kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                  st.st_size if kind == "file" else 0, st.st_mtime_ns, link, device,
                  _xattr_digest(path), st.st_ino, st.st_ctime_ns, st.st_nlink)


def snapshot(rootfs: str, known: dict[str, Record] | None = None) -> Manifest:
    """Walk ``rootfs`` (never following symlinks) and return its manifest.

    ``known``: records of regular files taken by whoever just wrote them
    (:meth:`~ketch.image.layers.apply.LayerApplier.recorded_files`), exact as
    long as the inode they name is still there; one is used instead of an
    ``lstat`` when the directory entry is a regular file with that inode number.
    """
    out: Manifest = {"": record_for(rootfs, os.lstat(rootfs))}
    known = known or {}
    # A loop over a stack of directories rather than nested generators, and regular
    # files and directories (nearly every path) recorded inline: this runs once per
    # unpack and per repack over every path of the rootfs.
    pending = [""]
    join, listxattr, lookup = os.path.join, os.listxattr, known.get
    reg, dir_ = stat.S_IFREG, stat.S_IFDIR
    while pending:
        rel = pending.pop()
        prefix = rel + "/" if rel else ""
        with os.scandir(join(rootfs, rel) if rel else rootfs) as it:
            for e in it:
                name = prefix + e.name
                if known:
                    rec = lookup(name)
                    if rec is not None and rec.ino == e.inode() and e.is_file(
                            follow_symlinks=False):
                        out[name] = rec
                        continue
                st = e.stat(follow_symlinks=False)
                fmt = st.st_mode & 0o170000  # stat.S_IFMT
                if fmt != reg and fmt != dir_:
                    out[name] = record_for(e.path, st)
                    continue
                path = e.path
                try:
                    xattrs = listxattr(path, follow_symlinks=False)
                except OSError:
                    xattrs = []
                out[name] = Record(
                    "file" if fmt == reg else "dir", st.st_mode & 0o7777, st.st_uid, st.st_gid,
                    st.st_size if fmt == reg else 0, st.st_mtime_ns, "", "",
                    _xattr_digest(path, xattrs) if xattrs else "", st.st_ino, st.st_ctime_ns,
                    st.st_nlink)
                if fmt == dir_:
                    pending.append(name)
    return out


# -- text form ------------------------------------------------------------------------

_PLAIN = re.compile(r"[!-<>-\[\]-~]*")  # printable ASCII but space, "=" and "\\"


def _escape(text: str) -> str:
    """mtree-style escaping: bytes outside printable ASCII, space, ``\\`` and ``=`` as ``\\ooo``."""
    if _PLAIN.fullmatch(text):
        return text
    out = []
    for b in os.fsencode(text):
        if 0x21 <= b <= 0x7E and b not in (0x5C, 0x3D):
            out.append(chr(b))
        else:
            out.append(f"\\{b:03o}")
    return "".join(out)


def _unescape(text: str) -> str:
    if "\\" not in text:  # nearly every name: nothing was escaped
        return text
    raw = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "\\":
            raw.append(int(text[i + 1:i + 4], 8))
            i += 4
        else:
            raw.append(ord(text[i]))
            i += 1
    return os.fsdecode(bytes(raw))


def _tree_order(name: str) -> str:
    """Sort key putting paths in tree order (component by component, as
    ``name.split("/")`` would): "/" becomes NUL, which sorts before every
    character a name can hold."""
    return name.replace("/", "\0")


def dumps(manifest: Manifest) -> str:
    """The manifest as text: a header line, then one ``PATH key=value ...`` line per path."""
    lines = [HEADER]
    append = lines.append
    plain = _PLAIN.fullmatch
    for name in sorted(manifest, key=_tree_order):
        (kind, mode, uid, gid, size, mtime, link, device, xattrs, ino, ctime,
         nlink) = manifest[name]
        extra = ""
        if link:
            extra = f" link={link if plain(link) else _escape(link)}"
        if device:
            extra += f" device={device}"
        if xattrs:
            extra += f" xattrs={xattrs}"
        path = (name if plain(name) else _escape(name)) if name else "."
        sec, nsec = divmod(mtime, 1_000_000_000)
        append(f"{path} type={kind} mode={mode:04o} uid={uid} gid={gid} size={size} "
               f"time={sec}.{nsec:09d}{extra} inode={ino} ctime={ctime} nlink={nlink}")
    return "\n".join(lines) + "\n"


def loads(text: str) -> Manifest:
    """Parse :func:`dumps` output. Raises :class:`ImageError` on anything else."""
    lines = text.splitlines()
    if not lines or lines[0] != HEADER:
        raise ImageError("not a ketch-image rootfs manifest")
    out: Manifest = {}
    for n, line in enumerate(lines[1:], 2):
        parts = line.split(" ")
        try:
            kv = dict(p.split("=", 1) for p in parts[1:])
            sec, _, nsec = kv["time"].partition(".")
            rec = Record(type=kv["type"], mode=int(kv["mode"], 8), uid=int(kv["uid"]),
                         gid=int(kv["gid"]), size=int(kv["size"]),
                         mtime=int(sec) * 1_000_000_000 + int(nsec or 0),
                         link=_unescape(kv.get("link", "")), device=kv.get("device", ""),
                         xattrs=kv.get("xattrs", ""), ino=int(kv["inode"]),
                         ctime=int(kv["ctime"]), nlink=int(kv.get("nlink", "1")))
        except (KeyError, ValueError, IndexError):
            raise ImageError(f"rootfs manifest line {n} is malformed") from None
        name = "" if parts[0] == "." else _unescape(parts[0])
        out[name] = rec
    if "" not in out:
        raise ImageError("rootfs manifest has no entry for the root")
    return out


# -- comparison ---------------------------------------------------------------------

@dataclass
class Changes:
    """What changed between two manifests (paths relative to the root, ``""`` = root).

    ``added``/``modified``: paths to write as layer entries (a type change counts
    as added); ``deleted``: the top-most removed paths (one whiteout each);
    ``opaque``: directories that were replaced (deleted and re-created), whose
    current content is all in ``added``.
    """

    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    opaque: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.added or self.modified or self.deleted or self.opaque)


def _parent(name: str) -> str:
    return name.rpartition("/")[0]


def is_copy(old: Manifest, new: Manifest) -> bool:
    """True when the root directory of ``new`` is not the inode ``old`` recorded (the
    tree was copied, so inode numbers and ctimes no longer identify unchanged files)."""
    return old[""].ino != new[""].ino


def compare(old: Manifest, new: Manifest, *, copied: bool = False,
            same_content: Callable[[list[str]], set[str]] | None = None) -> Changes:
    """The :class:`Changes` that turn the tree ``old`` describes into ``new``.

    ``copied``: compare in copied mode (module docstring): no directory counts as
    replaced, and regular files whose mtree keywords and link count agree but
    whose inode or ctime moved are passed (as a list of paths) to
    ``same_content``, which returns those whose content is unchanged; the rest
    are modified. Without ``same_content`` every such file is modified.
    """
    changes = Changes()
    replaced = set() if copied else {
        n for n, r in new.items()
        if r.type == "dir" and n in old and old[n].type == "dir" and old[n].ino != r.ino}

    def under_replaced(name: str) -> bool:
        p = name
        while p:
            p = _parent(p)
            if p in replaced:
                return True
        return False

    changed_inodes: set[int] = set()
    candidates: list[str] = []
    for name, r in new.items():
        o = old.get(name)
        if o is None or o.type != r.type or under_replaced(name):
            changes.added.append(name)
        elif name in replaced or not o.same_metadata(r) or (
                copied and r.type == "file" and o.nlink != r.nlink):
            changes.modified.append(name)
        elif r.type == "file" and (o.ino, o.ctime) != (r.ino, r.ctime):
            if copied:
                candidates.append(name)
                continue
            changes.modified.append(name)
        else:
            continue
        if r.type == "file" and r.nlink > 1:
            changed_inodes.add(r.ino)
    if candidates:
        unchanged = same_content(candidates) if same_content is not None else set()
        for name in candidates:
            if name not in unchanged:
                changes.modified.append(name)
                if new[name].nlink > 1:
                    changed_inodes.add(new[name].ino)
    # A hardlink group travels whole: every name of a changed inode is rewritten,
    # so the layer's links never point at content from a lower layer.
    if changed_inodes:
        chosen = set(changes.added) | set(changes.modified)
        for name, r in new.items():
            if r.type == "file" and r.ino in changed_inodes and name not in chosen:
                changes.modified.append(name)
    for name in old:
        if name in new or not name:
            continue
        parent = _parent(name)
        pnew = new.get(parent)
        if pnew is None or pnew.type != "dir" or parent in replaced or under_replaced(parent):
            continue  # covered by the parent's whiteout, type change or opaque marker
        if old[parent].type != "dir":
            continue
        changes.deleted.append(name)
    changes.opaque = sorted(replaced, key=lambda n: n.split("/") if n else [])
    for lst in (changes.added, changes.modified, changes.deleted):
        lst.sort(key=lambda n: n.split("/") if n else [])
    return changes

"""The OCI image layout store (image-spec image-layout.md).

A layout is a directory with ``oci-layout`` (``{"imageLayoutVersion": "1.0.0"}``),
``index.json`` (an image index whose descriptors carry
``org.opencontainers.image.ref.name`` tags) and ``blobs/<alg>/<hex>``.

Crash safety: every file is written to a temporary file inside the layout
(``.ketch-tmp/``, same filesystem), fsynced and renamed into place, and the
directory fsynced, so a reader sees either the old or the new file. Blobs are
committed before the ``index.json`` that references them, so an interrupted
operation leaves a valid layout (at worst with unreferenced blobs, which the
spec allows). ``index.json`` updates hold an ``flock`` on the layout directory.

Two processes on one layout: a :class:`Layout` that writes a blob takes a
shared ``flock`` on ``blobs/`` and keeps it until :meth:`Layout.release` (or
the process ends), so from its first blob to its ``index.json`` update;
garbage collection takes it exclusively (:meth:`Layout.exclusive`), so gc never
deletes a blob a running pull, import or copy has written but not yet tagged,
and waits for them to finish. Readers (push, unpack, inspect, copy from a
layout) take the same shared lock with :meth:`Layout.hold_read_lock` before
they read ``index.json`` and keep it while they read blobs, so gc also waits
for them. ``flock`` needs only a read-only descriptor of ``blobs/``, so a
layout owned by another user or on a read-only filesystem can still be read;
when even that cannot be opened the reader goes on unlocked and says why
(:attr:`Layout.lock_skipped`). Blob writes themselves need no lock:
content-addressed files are renamed into place atomically.

Reads are verified: a blob must be a regular file (not a symlink) whose size and
digest match the descriptor before its content is used.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from typing import BinaryIO

from ketch.image import oci
from ketch.image.errors import DigestError, ImageError, LayoutError
from ketch.image.oci import Verifier, parse_digest

TMP_DIR = ".ketch-tmp"
_BLOB_TMP_PREFIX = "blob-"
_CHUNK = 1 << 20


# Temp files of this process's unfinished blob writes (absolute paths). A copy that
# is interrupted abandons workers stuck on a slow peer; their partial files are
# removed from here instead (see remove_own_partial_blobs).
_own_partial_blobs: set[str] = set()


def remove_own_partial_blobs(tmp_dir: str | None = None) -> list[str]:
    """Delete the temp files of this process's unfinished blob writes (those under
    ``tmp_dir`` only, if given), and ``tmp_dir``/their directories when left empty.
    For the end of an interrupted command whose writer threads are abandoned.
    Returns the paths removed."""
    removed = []
    for path in sorted(_own_partial_blobs):
        if tmp_dir is not None and os.path.dirname(path) != tmp_dir:
            continue
        _own_partial_blobs.discard(path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            removed.append(path)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(path))
    return removed


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobWriter:
    """Streams one blob into the layout: temp file, hash, fsync, rename.

    Use as a context manager; call :meth:`write` per chunk and :meth:`commit`
    at the end. If ``digest``/``size`` are given, they are enforced while
    writing (too much data fails at once) and at commit; if not, the blob is
    named by its sha256. Leaving the ``with`` block without commit removes the
    temp file.
    """

    def __init__(self, layout: Layout, digest: str | None = None, size: int | None = None) -> None:
        self.layout = layout
        layout.hold_write_lock()
        self.expected = digest
        self._verifier = Verifier(digest, size) if digest else None
        self._sha256 = None if digest else hashlib.sha256()
        self.size = 0
        fd, self._tmp = _temp_file(layout.tmp_dir, _BLOB_TMP_PREFIX)
        _own_partial_blobs.add(self._tmp)
        self._file: BinaryIO | None = os.fdopen(fd, "wb")
        self.digest: str | None = None

    def write(self, chunk: bytes) -> None:
        if self._verifier is not None:
            self._verifier.update(chunk)
        else:
            self._sha256.update(chunk)  # type: ignore[union-attr]
        self.size += len(chunk)
        assert self._file is not None
        self._file.write(chunk)

    def restart(self) -> None:
        """Drop what was written so far (the source sends the blob again from byte 0)."""
        assert self._file is not None
        self._file.seek(0)
        self._file.truncate()
        self._verifier = Verifier(self.expected, self._verifier.size) \
            if self._verifier is not None else None
        self._sha256 = None if self.expected else hashlib.sha256()
        self.size = 0

    def commit(self) -> dict:
        """Verify, fsync and rename into ``blobs/``; return ``{"digest", "size"}``."""
        assert self._file is not None
        if self._verifier is not None:
            self._verifier.verify()
            digest = self.expected
        else:
            digest = "sha256:" + self._sha256.hexdigest()  # type: ignore[union-attr]
        assert digest is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        final = self.layout.blob_path(digest)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.chmod(self._tmp, 0o644)
        os.rename(self._tmp, final)
        _own_partial_blobs.discard(self._tmp)
        _fsync_dir(os.path.dirname(final))
        self.digest = digest
        return {"digest": digest, "size": self.size}

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)
        _own_partial_blobs.discard(self._tmp)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.digest is None:
            self.abort()


class Layout:
    """An OCI image layout at ``path``. Use :meth:`open` or :meth:`create`."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.tmp_dir = os.path.join(self.path, TMP_DIR)
        self._write_lock: int | None = None
        self.lock_skipped: str | None = None

    # -- opening ------------------------------------------------------------------

    @classmethod
    def open(cls, path: str) -> Layout:
        """Open an existing layout; raise :class:`LayoutError` if it is not one."""
        layout = cls(path)
        marker = os.path.join(layout.path, "oci-layout")
        try:
            with open(marker, "rb") as f:
                doc = oci.load_json(f.read(), f"{marker}")
        except FileNotFoundError:
            why = "no oci-layout file" if os.path.isdir(layout.path) else "no such directory"
            raise LayoutError(f"{path}: not an OCI image layout ({why})") from None
        except NotADirectoryError:
            raise LayoutError(f"{path}: not an OCI image layout (not a directory)") from None
        except IsADirectoryError:
            raise LayoutError(f"{path}: not an OCI image layout (oci-layout is a "
                              "directory)") from None
        except OSError as e:
            raise LayoutError(f"{path}: cannot read {marker} ({e.strerror})") from None
        except oci.ManifestError as e:
            raise LayoutError(str(e)) from None
        if doc.get("imageLayoutVersion") != oci.OCI_LAYOUT_VERSION:
            raise LayoutError(
                f"{path}: unsupported imageLayoutVersion {doc.get('imageLayoutVersion')!r}")
        return layout

    @classmethod
    def create(cls, path: str) -> Layout:
        """Open the layout at ``path``, initialising an empty one if the directory is new/empty.

        Raises :class:`LayoutError` when ``path`` (or a parent) is a file, cannot be
        created, or is a non-empty directory that is not a layout.
        """
        if os.path.lexists(path) and not os.path.isdir(path):
            raise LayoutError(f"{path}: exists and is not a directory (a layout is a "
                              "directory)")
        try:
            os.makedirs(path, exist_ok=True)
        except NotADirectoryError:
            raise LayoutError(f"{path}: cannot create the layout directory (a parent is not "
                              "a directory)") from None
        except OSError as e:
            raise LayoutError(f"{path}: cannot create the layout directory "
                              f"({e.strerror})") from None
        layout = cls(path)
        if os.path.exists(os.path.join(layout.path, "oci-layout")):
            return cls.open(path)
        if any(n not in (TMP_DIR,) for n in os.listdir(layout.path)):
            raise LayoutError(f"{path}: directory is not empty and not an OCI image layout")
        os.makedirs(os.path.join(layout.path, "blobs", "sha256"), exist_ok=True)
        with layout.locked():
            if not os.path.exists(os.path.join(layout.path, "index.json")):
                layout._write_file("index.json", oci.dumps(
                    {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": []}))
            layout._write_file("oci-layout", oci.dumps(
                {"imageLayoutVersion": oci.OCI_LAYOUT_VERSION}))
        return layout

    # -- files --------------------------------------------------------------------

    def _write_file(self, name: str, data: bytes) -> None:
        fd, tmp = _temp_file(self.tmp_dir, name + "-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.rename(tmp, os.path.join(self.path, name))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        _fsync_dir(self.path)
        self.cleanup_tmp()  # tag/untag alone left an empty .ketch-tmp in the layout

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive flock on the layout directory (serialises index.json updates)."""
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _blobs_lock(self, mode: int) -> Iterator[None]:
        path = os.path.join(self.path, "blobs")
        os.makedirs(path, exist_ok=True)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)

    def writing(self) -> contextlib.AbstractContextManager[None]:
        """Shared lock held while blobs are added and then referenced (many writers at once)."""
        return self._blobs_lock(fcntl.LOCK_SH)

    def hold_write_lock(self) -> None:
        """Take the shared write lock (once) and keep it until :meth:`release`.

        When no other process holds it, the partial blobs an interrupted
        writer left in the temp directory are removed first (an interrupted
        pull resumes without them; the blobs it completed are kept).
        """
        if self._write_lock is not None:
            return
        path = os.path.join(self.path, "blobs")
        os.makedirs(path, exist_ok=True)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # another writer is running: its temp files are its own
        else:
            self.remove_partial_blobs()
        fcntl.flock(fd, fcntl.LOCK_SH)
        self._write_lock = fd

    def hold_read_lock(self) -> None:
        """Take the shared lock as a reader (once) and keep it until :meth:`release`.

        Call before reading ``index.json``: gc (which takes the lock exclusively)
        then waits until the reader is done with the blobs its tags name. Nothing is
        created or written, so read-only layouts work; if ``blobs/`` cannot be
        opened (no permission) or locked, the reader continues without the lock and
        :attr:`lock_skipped` says why.
        """
        if self._write_lock is not None:
            return
        path = os.path.join(self.path, "blobs")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            self.lock_skipped = f"{path} does not exist (no blobs to protect)"
            return
        except OSError as e:
            self.lock_skipped = f"cannot open {path} to lock it ({e.strerror})"
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
        except OSError as e:
            os.close(fd)
            self.lock_skipped = f"cannot lock {path} ({e.strerror})"
            return
        self._write_lock = fd

    def partial_blobs(self) -> list[str]:
        """Names (under :attr:`tmp_dir`) of the temp files of unfinished blob writes."""
        try:
            return sorted(n for n in os.listdir(self.tmp_dir) if n.startswith(_BLOB_TMP_PREFIX))
        except FileNotFoundError:
            return []

    def remove_partial_blobs(self) -> list[str]:
        """Delete the temp files of unfinished blob writes; call only with the blobs lock
        held exclusively (no writer running). Returns the names removed."""
        removed = []
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.tmp_dir):
                if name.startswith(_BLOB_TMP_PREFIX):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(self.tmp_dir, name))
                        removed.append(name)
        self.cleanup_tmp()
        return removed

    def release(self) -> None:
        """Drop the shared lock taken by the first blob write or :meth:`hold_read_lock`."""
        if self._write_lock is not None:
            os.close(self._write_lock)
            self._write_lock = None

    def __del__(self) -> None:
        # a Layout dropped without release() (an import, a library caller) must not
        # keep gc waiting for the rest of the process's life
        self.release()

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        """Exclusive lock for garbage collection: no writer is between blob and tag."""
        return self._blobs_lock(fcntl.LOCK_EX)

    def cleanup_tmp(self) -> None:
        """Remove the temp directory if it is empty (best effort)."""
        with contextlib.suppress(OSError):
            os.rmdir(self.tmp_dir)

    # -- blobs --------------------------------------------------------------------

    def blob_path(self, digest: str) -> str:
        """``<layout>/blobs/<alg>/<hex>`` for a validated digest (raises DigestError)."""
        algorithm, encoded = parse_digest(digest)
        return os.path.join(self.path, "blobs", algorithm, encoded)

    def _open_blob(self, digest: str) -> BinaryIO:
        path = self.blob_path(digest)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            raise LayoutError(f"blob {digest} is missing from layout {self.path}") from None
        except OSError as e:
            raise LayoutError(f"blob {digest}: cannot open ({e.strerror})") from None
        f = os.fdopen(fd, "rb")
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            f.close()
            raise LayoutError(f"blob {digest} is not a regular file")
        return f

    def open_blob(self, digest: str) -> BinaryIO:
        """The stored blob opened for reading, NOT verified (the caller hashes what it
        reads); raises :class:`LayoutError` if absent or not a regular file."""
        return self._open_blob(digest)

    def has_blob(self, digest: str, size: int | None = None) -> bool:
        """True if the blob is present and verifies (digest and, if given, size)."""
        try:
            self.verify_blob(digest, size)
        except (LayoutError, DigestError):
            return False
        return True

    def verify_blob(self, digest: str, size: int | None = None) -> None:
        """Hash the whole stored blob; raise LayoutError/DigestError if absent or mismatched."""
        with self._open_blob(digest) as f:
            v = Verifier(digest, size)
            while chunk := f.read(_CHUNK):
                v.update(chunk)
            v.verify()

    def open_verified_blob(self, digest: str, size: int | None = None) -> BinaryIO:
        """Verify the blob, then return it opened for reading from the start."""
        f = self._open_blob(digest)
        try:
            v = Verifier(digest, size)
            while chunk := f.read(_CHUNK):
                v.update(chunk)
            v.verify()
            f.seek(0)
        except BaseException:
            f.close()
            raise
        return f

    def read_blob(self, digest: str, size: int | None = None,
                  limit: int = oci.MAX_DOCUMENT_SIZE) -> bytes:
        """Read a (small) blob fully, verified against digest and size."""
        with self._open_blob(digest) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise LayoutError(f"blob {digest} is larger than {limit} bytes")
        oci.verify_bytes(data, digest, size)
        return data

    def write_blob(self, data: bytes, digest: str | None = None) -> dict:
        """Store ``data`` as a blob (skipped if an intact copy exists); return ``{digest, size}``."""
        digest = digest or oci.sha256_digest(data)
        if self.has_blob(digest, len(data)):
            return {"digest": digest, "size": len(data)}
        with BlobWriter(self, digest, len(data)) as w:
            w.write(data)
            return w.commit()

    def blob_writer(self, digest: str | None = None, size: int | None = None) -> BlobWriter:
        """A :class:`BlobWriter` for streaming a blob into this layout."""
        return BlobWriter(self, digest, size)

    def read_document(self, desc: dict, what: str) -> dict:
        """Read and parse the JSON blob a descriptor points at (verified)."""
        oci.check_descriptor(desc, what)
        return oci.load_json(self.read_blob(desc["digest"], desc["size"]), what)

    # -- index.json and tags ------------------------------------------------------

    def index(self, check_entries: bool = True) -> dict:
        """The parsed ``index.json`` (validated as an image index; each entry as a
        descriptor unless ``check_entries`` is false). Raises :class:`LayoutError`,
        or the :class:`ManifestError`/:class:`DigestError` of a bad entry, named."""
        try:
            with open(os.path.join(self.path, "index.json"), "rb") as f:
                data = f.read(oci.MAX_LAYOUT_INDEX_SIZE + 1)
        except FileNotFoundError:
            raise LayoutError(f"{self.path}: index.json is missing") from None
        doc = oci.load_json(data, "index.json", oci.MAX_LAYOUT_INDEX_SIZE)
        if doc.get("schemaVersion") != 2 or not isinstance(doc.get("manifests"), list):
            raise LayoutError(f"{self.path}: index.json is not an image index")
        if check_entries:
            for i, d in enumerate(doc["manifests"]):
                try:
                    oci.check_descriptor(d, f"index.json manifests[{i}]")
                except ImageError as e:
                    raise type(e)(self._bad_entry_text(doc["manifests"], i, e)) from None
        return doc

    def _bad_entry_text(self, entries: list, i: int, error: ImageError) -> str:
        """What is wrong with index.json entry ``i``, and how to drop it."""
        tag = _ref_name(entries[i])
        where = f"index.json manifests[{i}]"
        text = str(error)
        text = (f"{where}{text[len(where):]}" if text.startswith(where) else f"{where}: {text}")
        if tag is None:
            fix = "; edit index.json to remove it (untag needs a tag)"
        elif sum(_ref_name(d) == tag for d in entries) > 1:
            fix = (f"; other entries share its tag {tag!r} (untag would drop them too): "
                   "edit index.json to remove it")
        elif not _valid_tag(tag):
            fix = "; edit index.json to remove it (its tag is not one untag accepts)"
        else:
            import shlex

            # quoted: the path may hold spaces or shell syntax, and the line is for pasting
            fix = f"; `ketch-image untag {shlex.quote(f'{self.path}:{tag}')}` removes it"
        tag_note = f" (tag {tag!r})" if tag is not None else ""
        return f"{self.path}: {text.replace(where, where + tag_note, 1)}{fix}"

    def tags(self) -> dict[str, dict]:
        """Map of ``ref.name`` -> descriptor for every tagged entry in index.json."""
        out = {}
        for d in self.index()["manifests"]:
            name = (d.get("annotations") or {}).get(oci.ANNOTATION_REF_NAME)
            if isinstance(name, str):
                out[name] = d
        return out

    def lookup(self, tag: str) -> dict:
        """The descriptor tagged ``tag``; raises :class:`LayoutError` if absent."""
        desc = self.tags().get(tag)
        if desc is None:
            raise LayoutError(f"tag {tag!r} not found in layout {self.path}")
        return desc

    def set_tag(self, tag: str, desc: dict) -> dict:
        """Record ``desc`` in index.json under ``tag``, replacing an older entry with that tag.

        The referenced blob must already be in the layout. Returns the stored descriptor.
        """
        entry = {k: v for k, v in desc.items() if k != "annotations"}
        annotations = dict(desc.get("annotations") or {})
        annotations[oci.ANNOTATION_REF_NAME] = tag
        entry["annotations"] = annotations
        if not self.has_blob(entry["digest"], entry["size"]):
            raise LayoutError(f"refusing to tag {tag!r}: blob {entry['digest']} is not stored")
        with self.locked():
            index = self.index()
            index["manifests"] = [
                d for d in index["manifests"]
                if (d.get("annotations") or {}).get(oci.ANNOTATION_REF_NAME) != tag
            ] + [entry]
            index.setdefault("mediaType", oci.OCI_INDEX)
            self._write_file("index.json", json.dumps(index, indent=2).encode() + b"\n")
        return entry

    def remove_tag(self, tag: str) -> dict:
        """Drop the index.json entry tagged ``tag`` (its blobs stay until gc).

        Returns the removed descriptor; raises :class:`LayoutError` if absent.
        """
        with self.locked():
            index = self.index(check_entries=False)  # a malformed entry can be dropped
            keep, removed = [], None
            for d in index["manifests"]:
                if _ref_name(d) == tag:
                    removed = d
                else:
                    keep.append(d)
            if removed is None:
                raise LayoutError(f"tag {tag!r} not found in layout {self.path}")
            index["manifests"] = keep
            self._write_file("index.json", json.dumps(index, indent=2).encode() + b"\n")
        return removed

    def blob_digests(self) -> Iterator[tuple[str, str]]:
        """``(digest, path)`` of every file under ``blobs/<alg>/`` (names not validated)."""
        root = os.path.join(self.path, "blobs")
        for alg in sorted(os.listdir(root)):
            sub = os.path.join(root, alg)
            if not os.path.isdir(sub):
                yield alg, sub
                continue
            for name in sorted(os.listdir(sub)):
                yield f"{alg}:{name}", os.path.join(sub, name)


def _ref_name(entry: object) -> str | None:
    """The ``org.opencontainers.image.ref.name`` of an index.json entry, if a string."""
    annotations = entry.get("annotations") if isinstance(entry, dict) else None
    name = annotations.get(oci.ANNOTATION_REF_NAME) if isinstance(annotations, dict) else None
    return name if isinstance(name, str) else None


def _temp_file(tmp_dir: str, prefix: str) -> tuple[int, str]:
    """``mkstemp`` in the layout's temp directory, made first if missing: another
    process's :meth:`Layout.cleanup_tmp` may remove the (then empty) directory between
    our makedirs and mkstemp, so that is retried. Returns ``(fd, path)``."""
    import tempfile  # only writers need it (and its import of random)

    for attempt in range(5):
        os.makedirs(tmp_dir, exist_ok=True)
        try:
            return tempfile.mkstemp(dir=tmp_dir, prefix=prefix)
        except FileNotFoundError:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def _valid_tag(tag: str) -> bool:
    from ketch.image.reference import validate_ref_name

    try:
        validate_ref_name(tag)
    except ImageError:
        return False
    return True

"""Image locations named skopeo-style, and ``oci-archive`` tar files.

``docker://[registry/]repo[:tag][@digest]`` is a registry (distribution-spec),
``oci:PATH[:TAG]`` an OCI image layout directory (image-spec image-layout.md)
and ``oci-archive:FILE[:TAG]`` the same layout stored in a tar file (the
layout's files at the top of the archive, as skopeo writes them). A bare
``PATH[:TAG]`` is a layout.

An archive is read by extracting it into a temporary layout, accepting only
the layout's own files (``oci-layout``, ``index.json``, directories and
regular files under ``blobs/``), so a hostile archive cannot write elsewhere
(no links, devices, absolute or ``..`` names). An archive is written by
building the layout in a temporary directory (starting from the existing
archive's content, so its other tags survive) and renaming a complete new tar
over the old one.

Those temporary files (``.ketch-archive-*`` beside the archive) are locked
(``flock``) by the process using them; the next archive operation in the same
directory removes the unlocked ones a killed process left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

from ketch.image.errors import LayoutError, ReferenceFormatError
from ketch.image.reference import Reference, parse_layout_arg, parse_reference

DOCKER, OCI, OCI_ARCHIVE = "docker", "oci", "oci-archive"
_TRANSPORT_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


@dataclass(frozen=True)
class Location:
    """A parsed image location: ``kind`` is docker/oci/oci-archive; ``ref`` is set for
    docker, ``path`` and ``tag`` (None when not given) for the other two."""

    kind: str
    ref: Reference | None = None
    path: str = ""
    tag: str | None = None

    def __str__(self) -> str:
        if self.kind == DOCKER:
            return f"docker://{self.ref}"
        return f"{self.kind}:{self.path}" + (f":{self.tag}" if self.tag else "")


def parse_location(text: str) -> Location:
    """Parse ``docker://REF``, ``oci:PATH[:TAG]``, ``oci-archive:FILE[:TAG]`` or ``PATH[:TAG]``.

    Raises :class:`ReferenceFormatError` for a malformed reference or tag, or
    another ``transport:`` prefix.
    """
    if text.startswith("docker://"):
        return Location(DOCKER, ref=parse_reference(text))
    for kind in (OCI_ARCHIVE, OCI):
        if text.startswith(kind + ":"):
            path, tag = parse_layout_arg(text[len(kind) + 1:], default_tag=None)
            return Location(kind, path=path, tag=tag)
    head, sep, rest = text.partition(":")
    if sep and head in ("docker", "dir", "docker-archive", "docker-daemon",
                        "containers-storage"):
        raise ReferenceFormatError(f"unsupported transport {head!r} in {text!r} "
                                   "(use docker://, oci: or oci-archive:)")
    if sep and rest.startswith("//") and _TRANSPORT_NAME_RE.fullmatch(head):
        # "NAME://..." is a transport, never a layout path with a tag of "//..."
        raise ReferenceFormatError(f"unknown transport {head!r} in {text!r} "
                                   "(use docker://, oci: or oci-archive:)")
    if text.startswith("[") and _names_a_registry(text):
        # an IPv6 registry ([::1]:5000/app) is never a layout path
        raise ReferenceFormatError(f"{text!r} looks like a registry reference: write "
                                   f"docker://{text}")
    path, tag = parse_layout_arg(text, default_tag=None)
    if not os.path.exists(path) and _names_a_registry(text):
        # a pasted registry reference would otherwise become a new local layout
        # (127.0.0.1:5000/app:v1 -> directory "127.0.0.1", tag "5000/app:v1")
        raise ReferenceFormatError(f"{text!r} looks like a registry reference: write "
                                   f"docker://{text} (a new layout: oci:PATH:TAG)")
    return Location(OCI, path=path, tag=tag)


def _names_a_registry(text: str) -> bool:
    """True if ``text`` parses as a reference whose first component is a registry host
    (has a ``.`` or a port, or is ``localhost``), as docker decides."""
    first, sep, _ = text.partition("/")
    if not sep or not ("." in first or ":" in first or first == "localhost"
                       or first.startswith("[")):
        return False
    try:
        parse_reference(text)
    except ReferenceFormatError:
        return False
    return True


_TMP_PREFIX = ".ketch-archive-"
# A temporary file younger than this is left alone even when unlocked: its creator
# may be between creating it and locking it.
_STALE_AFTER = 10.0


def _lock(path: str) -> int:
    """An fd holding an exclusive flock on ``path``: the temporary file or directory is
    in use until the fd is closed (or the process ends)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def remove_stale_temps(directory: str) -> list[str]:
    """Remove the ``.ketch-archive-*`` files and directories in ``directory`` that no
    live process holds (left by a killed ketch-image); return their names."""
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(_TMP_PREFIX):
            continue
        path = os.path.join(directory, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if time.time() - st.st_mtime < _STALE_AFTER:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # in use
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            removed.append(name)
        finally:
            os.close(fd)
    return removed


def _member_ok(m: tarfile.TarInfo) -> bool:
    name = os.path.normpath(m.name)
    if name.startswith(("/", "..")) or name == ".":
        return m.isdir() and name == "."
    parts = name.split(os.sep)
    if m.isdir():
        return parts[0] == "blobs" and len(parts) <= 2
    if not m.isreg():
        return False
    return name in ("oci-layout", "index.json") or (parts[0] == "blobs" and len(parts) == 3)


@contextlib.contextmanager
def extracted_archive(path: str, must_exist: bool = True) -> Iterator[str]:
    """Extract the oci-archive ``path`` into a temp dir; yield the layout directory.

    With ``must_exist=False`` a missing archive yields an empty directory.
    Raises :class:`LayoutError` for unreadable archives or members outside the
    layout's own files.
    """
    parent = os.path.dirname(os.path.abspath(path))
    remove_stale_temps(parent)
    try:
        tmp = tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=parent)
    except FileNotFoundError:
        raise LayoutError(f"{path}: directory {parent} does not exist") from None
    except NotADirectoryError:
        raise LayoutError(f"{path}: {parent} is not a directory") from None
    except OSError as e:
        raise LayoutError(f"{path}: cannot work in {parent} ({e.strerror})") from None
    lock = _lock(tmp)
    try:
        layout_dir = os.path.join(tmp, "layout")
        os.mkdir(layout_dir)
        if os.path.exists(path) or must_exist:
            try:
                with tarfile.open(path, "r:*") as tf:
                    for m in tf:
                        if not _member_ok(m):
                            raise LayoutError(f"{path}: unexpected archive member {m.name!r} "
                                              "(not a file of an OCI image layout)")
                        if m.isdir():
                            os.makedirs(os.path.join(layout_dir, os.path.normpath(m.name)),
                                        exist_ok=True)
                            continue
                        dest = os.path.join(layout_dir, os.path.normpath(m.name))
                        os.makedirs(os.path.dirname(dest), exist_ok=True)
                        src = tf.extractfile(m)
                        assert src is not None
                        with src, open(dest, "xb") as out:
                            shutil.copyfileobj(src, out, 1 << 20)
            except FileNotFoundError:
                raise LayoutError(f"{path}: no such oci-archive") from None
            except FileExistsError as e:
                raise LayoutError(f"{path}: duplicate archive member {e.filename}") from None
            except (tarfile.TarError, EOFError) as e:
                raise LayoutError(f"{path}: not a readable tar archive ({e})") from None
        yield layout_dir
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        os.close(lock)


def write_archive(layout_dir: str, path: str) -> None:
    """Write the layout at ``layout_dir`` as the tar file ``path`` (atomically replaced).

    Entries: ``oci-layout``, ``index.json``, ``blobs/`` and each blob, owned by
    0:0 with fixed mode and mtime, so the same layout gives the same bytes.
    """
    parent = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=".tar", dir=parent)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # in use (see remove_stale_temps)
        with os.fdopen(fd, "wb") as f, tarfile.open(fileobj=f, mode="w",
                                                    format=tarfile.PAX_FORMAT) as tf:
            names = ["oci-layout", "index.json", "blobs"]
            blobs = os.path.join(layout_dir, "blobs")
            for alg in sorted(os.listdir(blobs)):
                names.append(f"blobs/{alg}")
                names += [f"blobs/{alg}/{n}" for n in sorted(os.listdir(os.path.join(blobs, alg)))]
            for name in names:
                full = os.path.join(layout_dir, name)
                info = tf.gettarinfo(full, arcname=name)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = 0
                info.mode = 0o755 if info.isdir() else 0o644
                if info.isreg():
                    with open(full, "rb") as src:
                        tf.addfile(info, src)
                else:
                    tf.addfile(info)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise

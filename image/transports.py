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
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tarfile
import tempfile
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
    if not sep or not ("." in first or ":" in first or first == "localhost"):
        return False
    try:
        parse_reference(text)
    except ReferenceFormatError:
        return False
    return True


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
    try:
        tmp = tempfile.mkdtemp(prefix=".ketch-archive-", dir=parent)
    except FileNotFoundError:
        raise LayoutError(f"{path}: directory {parent} does not exist") from None
    except NotADirectoryError:
        raise LayoutError(f"{path}: {parent} is not a directory") from None
    except OSError as e:
        raise LayoutError(f"{path}: cannot work in {parent} ({e.strerror})") from None
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


def write_archive(layout_dir: str, path: str) -> None:
    """Write the layout at ``layout_dir`` as the tar file ``path`` (atomically replaced).

    Entries: ``oci-layout``, ``index.json``, ``blobs/`` and each blob, owned by
    0:0 with fixed mode and mtime, so the same layout gives the same bytes.
    """
    parent = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".ketch-archive-", suffix=".tar", dir=parent)
    try:
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

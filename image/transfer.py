"""Copy an image (manifest or index, with every blob) from a source to a destination.

The one engine behind ``pull``, ``push`` and ``copy``. Sources and destinations
are registries (distribution-spec spec.md, see :mod:`.registry.client`) and OCI
image layouts (image-spec image-layout.md, see :mod:`.layout`); ``oci-archive``
is a layout in a tar file (:mod:`.transports`).

Order (distribution-spec "Pushing manifests": a manifest's blobs, and an
index's manifests, must exist before it): config and layers first (in
parallel, largest first), then the manifest; for an index with ``all_platforms``, each child
first, then the index. Without ``all_platforms`` an index is resolved to one
platform (image-index.md) and the destination gets that manifest only.
Documents are copied byte for byte, so digests never change. Every blob and
document is verified against its descriptor (digest over the whole stream,
size) before it is stored; a destination layout's ``index.json`` is only
updated at the end, so an interrupted copy leaves a valid layout whose stored
blobs a later copy reuses.

Index entries with a media type that is neither a manifest nor an index are
not candidates for platform selection; with ``all_platforms`` they are copied
as opaque documents.

Non-distributable layers (image-spec layer.md "Non-distributable layers", and
Docker's foreign layers) are not pushed to a registry: the manifest goes as it
is and clients fetch them from the descriptor's ``urls`` (docker and skopeo do
the same). With ``allow_nondistributable`` (docker's and crane's
``--allow-nondistributable-artifacts``) those the source holds are pushed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Protocol

from ketch.image import oci
from ketch.image.errors import (
    BlobUnknown,
    ImageError,
    LayoutError,
    ManifestError,
    RegistryError,
    RegistryUnreachable,
    TransferInterrupted,
)
from ketch.image.layout import Layout, remove_own_partial_blobs
from ketch.image.platforms import Platform, host_platform, select_manifest

if TYPE_CHECKING:
    from ketch.image.reference import Reference
    from ketch.image.registry.client import RegistryClient

_MAX_INDEX_DEPTH = 4
DEFAULT_JOBS = 4
# A download cut mid-stream is resumed (Range) or started again this many times, and
# a blob upload that lost its connection or got a 429/5xx answer is restarted as
# often (a new session, from byte 0); pauses between attempts grow exponentially.
BLOB_RETRY_DELAYS = (0.5, 1.0, 2.0)
BLOB_ATTEMPTS = len(BLOB_RETRY_DELAYS) + 1
NONDISTRIBUTABLE_LAYER_TYPES = frozenset({oci.OCI_LAYER_ND, oci.OCI_LAYER_ND_GZIP,
                                          oci.OCI_LAYER_ND_ZSTD, oci.DOCKER_FOREIGN_LAYER})


def _quiet(_msg: str) -> None:
    pass


def _report_bytes(progress: Callable[[str], None], digest: str, done: int, total: int) -> None:
    """Feed a live display (see :class:`~ketch.image.progress.TerminalProgress`), if any."""
    blob_bytes = getattr(progress, "blob_bytes", None)
    if blob_bytes is not None:
        blob_bytes(digest, done, total)


# -- sources ------------------------------------------------------------------------


class Source(Protocol):
    """Where an image is read from."""

    name: str

    def top(self) -> tuple[bytes, str | None, str]:
        """The tagged document: ``(body, declared media type, digest)``."""

    def document(self, desc: dict) -> bytes:
        """A manifest or index by descriptor, verified against digest and size."""

    def small_blob(self, desc: dict) -> bytes:
        """A small blob (a config) read whole, verified; at most 4 MiB."""

    def blob_chunks(self, desc: dict) -> Iterator[bytes]:
        """A blob's bytes in chunks (the destination verifies them)."""

    def blob_file(self, desc: dict) -> IO[bytes] | None:
        """A seekable file of the blob if the source has one (its reader verifies), else None."""

    def resume_chunks(self, desc: dict, start: int) -> tuple[int, Iterator[bytes]]:
        """The blob's bytes from ``start`` on if the source can skip ahead, else from 0:
        returns ``(offset, chunks)`` with ``offset`` either ``start`` or 0."""


class RegistrySource:
    """Reads ``ref`` (tag or digest) from a registry through ``client``."""

    def __init__(self, ref: Reference, client: RegistryClient) -> None:
        self.ref, self.client, self.name = ref, client, str(ref)

    def top(self) -> tuple[bytes, str | None, str]:
        body, content_type = self.client.get_manifest(self.ref.ref)
        return body, content_type, self.ref.digest or oci.sha256_digest(body)

    def document(self, desc: dict) -> bytes:
        media_type = desc.get("mediaType")
        known = oci.MANIFEST_TYPES | oci.INDEX_TYPES
        # an opaque index entry is asked for by its own type, known ones by all ours
        if isinstance(media_type, str) and media_type not in known:
            data, _ = self.client.get_manifest(desc["digest"], accept=media_type)
        else:
            data, _ = self.client.get_manifest(desc["digest"])
        oci.verify_bytes(data, desc["digest"], desc["size"])
        return data

    def small_blob(self, desc: dict) -> bytes:
        if desc["size"] > oci.MAX_DOCUMENT_SIZE:
            raise ManifestError(f"blob {desc['digest']} is larger than "
                                f"{oci.MAX_DOCUMENT_SIZE} bytes")
        data = b"".join(self.client.blob_chunks(desc["digest"]))
        oci.verify_bytes(data, desc["digest"], desc["size"])
        return data

    def blob_chunks(self, desc: dict) -> Iterator[bytes]:
        """From the registry; a blob it does not have is fetched from the descriptor's
        ``urls`` (foreign / non-distributable layers), without credentials."""
        digest = desc["digest"]
        urls = desc.get("urls")
        if not isinstance(urls, list) or not urls:
            yield from self.client.blob_chunks(digest)
            return
        try:
            yield from self.client.blob_chunks(digest)
            return
        except BlobUnknown as e:
            errors = [str(e)]
        for url in urls:
            try:
                yield from self.client.foreign_chunks(str(url), digest)
                return
            except TransferInterrupted:
                raise
            except RegistryError as e:
                errors.append(str(e))
        raise RegistryError("; ".join(errors))

    def blob_file(self, desc: dict) -> IO[bytes] | None:
        return None

    def has_blob(self, desc: dict) -> bool:
        """True if the registry itself serves the blob (not only its ``urls``)."""
        return self.client.has_blob(desc["digest"])

    def resume_chunks(self, desc: dict, start: int) -> tuple[int, Iterator[bytes]]:
        if start and not desc.get("urls"):
            try:
                return self.client.open_blob(desc["digest"], start)
            except BlobUnknown:
                pass  # served from the descriptor's urls: fetch it all
        return 0, self.blob_chunks(desc)


class LayoutSource:
    """Reads ``tag`` from an OCI image layout; with ``tag`` None, the layout's only
    image (as skopeo does for ``oci:PATH`` without a tag). Holds the layout's shared
    lock (:meth:`Layout.hold_read_lock`) from here until the layout is released, so
    gc cannot remove blobs while they are read."""

    def __init__(self, layout: Layout, tag: str | None, name: str | None = None) -> None:
        layout.hold_read_lock()
        self.layout, self.tag = layout, tag
        self.name = name or layout.path

    def top(self) -> tuple[bytes, str | None, str]:
        if self.tag is None:
            entries = self.layout.index()["manifests"]
            if len(entries) != 1:
                raise LayoutError(f"{self.name}: no tag given and the layout holds "
                                  f"{len(entries)} images")
            desc = entries[0]
        else:
            desc = self.layout.tags().get(self.tag)
            if desc is None:
                raise LayoutError(f"tag {self.tag!r} not found in {self.name}")
        oci.check_descriptor(desc, f"tag {self.tag!r}")
        return self.layout.read_blob(desc["digest"], desc["size"]), desc["mediaType"], \
            desc["digest"]

    def document(self, desc: dict) -> bytes:
        return self.layout.read_blob(desc["digest"], desc["size"])

    def small_blob(self, desc: dict) -> bytes:
        return self.layout.read_blob(desc["digest"], desc["size"])

    def blob_chunks(self, desc: dict) -> Iterator[bytes]:
        with self.layout.open_verified_blob(desc["digest"], desc["size"]) as f:
            while chunk := f.read(1 << 20):
                yield chunk

    def blob_file(self, desc: dict) -> IO[bytes] | None:
        # unverified here: uploads verify while sending (see _UploadReader)
        return self.layout.open_blob(desc["digest"])

    def has_blob(self, desc: dict) -> bool:
        """True if the layout holds the blob (and it verifies)."""
        return self.layout.has_blob(desc["digest"], desc["size"])

    def resume_chunks(self, desc: dict, start: int) -> tuple[int, Iterator[bytes]]:
        return 0, self.blob_chunks(desc)


# -- destinations -------------------------------------------------------------------


class Destination(Protocol):
    """Where an image is written to."""

    name: str

    def put_blob(self, desc: dict, src: Source, progress: Callable[[str], None]) -> None:
        """Store a blob (skipped if already there)."""

    def put_document(self, body: bytes, desc: dict, tag: str | None) -> dict:
        """Store a manifest/index (``tag`` None: by digest, as an index's child);
        returns the descriptor recorded."""

    def stored_small_blob(self, desc: dict) -> bytes | None:
        """The verified bytes of a small blob the destination already holds, else None
        (spares a download of a config a previous, interrupted copy stored)."""


class LayoutDestination:
    """Writes into the OCI image layout at ``path``; ``tag`` entries go to index.json.

    The layout is created on the first write and held with its shared write lock
    (:meth:`Layout.hold_write_lock`) until :meth:`close`. A copy that fails
    leaves no directory behind when it made the layout and stored nothing in it
    (leaving the context with an exception); blobs it did store are kept, so a
    rerun resumes.
    """

    def __init__(self, path: str) -> None:
        self.path, self.name = path, path
        self._layout: Layout | None = None
        self._made = False

    @property
    def layout(self) -> Layout:
        if self._layout is None:
            made = not os.path.lexists(self.path)
            layout = Layout.create(self.path)
            layout.hold_write_lock()
            self._layout, self._made = layout, made
        return self._layout

    def close(self) -> None:
        if self._layout is not None:
            self._layout.release()
            self._layout.cleanup_tmp()

    def __enter__(self) -> LayoutDestination:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is not None and self._layout is not None:
            # workers abandoned by an interrupted copy may still hold partial blobs
            # here: the copy has failed, so they are of no use
            remove_own_partial_blobs(self._layout.tmp_dir)
        self.close()
        if exc_type is not None and self._made and self._layout is not None:
            with contextlib.suppress(OSError):
                _remove_if_unused(self._layout)


    def put_blob(self, desc: dict, src: Source, progress: Callable[[str], None]) -> None:
        digest, size = desc["digest"], desc["size"]
        if self.layout.has_blob(digest, size):
            progress(f"Blob {digest} already present")
            return
        progress(f"Copying blob {digest} ({size} bytes)")
        with self.layout.blob_writer(digest, size) as w:
            for delay in (*BLOB_RETRY_DELAYS, None):
                try:
                    offset, chunks = src.resume_chunks(desc, w.size)
                    if offset != w.size:
                        w.restart()  # the source sends it all again
                    for chunk in chunks:
                        w.write(chunk)
                        _report_bytes(progress, digest, w.size, size)
                    w.commit()
                    return
                except TransferInterrupted as e:
                    if delay is None:
                        raise
                    progress(f"Retrying blob {digest} from byte {w.size} ({e})")
                    time.sleep(delay)

    def put_document(self, body: bytes, desc: dict, tag: str | None) -> dict:
        self.layout.write_blob(body, desc["digest"])
        if tag is None:
            return desc
        return self.layout.set_tag(tag, desc)

    def stored_small_blob(self, desc: dict) -> bytes | None:
        try:
            return self.layout.read_blob(desc["digest"], desc["size"])
        except ImageError:
            return None



def _remove_if_unused(layout: Layout) -> None:
    """Remove ``layout`` if it holds no blob, no tag and no temp file and no other process
    has it open for writing (its blobs lock is free)."""
    import fcntl
    import shutil

    fd = os.open(os.path.join(layout.path, "blobs"), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another writer has started on it
        if (any(":" in digest for digest, _path in layout.blob_digests())
                or layout.index().get("manifests") or os.path.exists(layout.tmp_dir)):
            return
        shutil.rmtree(layout.path)
    finally:
        os.close(fd)


class RegistryDestination:
    """Pushes into one repository of a registry.

    ``mount_from`` lists repositories of the same registry to try a
    cross-repository mount from before uploading; ``chunk_size`` (bytes)
    switches blobs larger than it to chunked uploads (None: monolithic).
    Non-distributable layers are skipped unless ``allow_nondistributable``
    (then pushed when the source has them).
    """

    def __init__(self, ref: Reference, client: RegistryClient, *,
                 mount_from: tuple[str, ...] = (), chunk_size: int | None = None,
                 allow_nondistributable: bool = False) -> None:
        self.ref, self.client, self.name = ref, client, str(ref)
        self.mount_from = mount_from
        self.chunk_size = chunk_size
        self.allow_nondistributable = allow_nondistributable

    def put_blob(self, desc: dict, src: Source, progress: Callable[[str], None]) -> None:
        digest, size = desc["digest"], desc["size"]
        if desc.get("mediaType") in NONDISTRIBUTABLE_LAYER_TYPES:
            if not self.allow_nondistributable:
                progress(f"Skipping non-distributable layer {digest} (not pushed; "
                         "--allow-nondistributable-artifacts pushes it)")
                return
            has_blob = getattr(src, "has_blob", None)
            if has_blob is not None and not has_blob(desc):
                progress(f"Skipping non-distributable layer {digest}: not in {src.name}")
                return
        if self.client.has_blob(digest):
            progress(f"Blob {digest} already present")
            return
        from ketch.image.registry.client import UploadBusy

        location = None
        for repo in self.mount_from:
            try:
                location = self.client.mount_blob(digest, repo)
            except UploadBusy as e:
                # a mount only spares an upload: a busy answer means upload it instead
                progress(f"Not mounting blob {digest} ({e})")
                location = None
                break
            if location is None:
                progress(f"Mounted blob {digest} from {repo}")
                return
        progress(f"Copying blob {digest} ({size} bytes)")

        with _blob_file(src, desc, progress) as f:
            for attempt, delay in enumerate((*BLOB_RETRY_DELAYS, None), 1):
                try:
                    self._upload(location, desc, f)
                    return
                except (RegistryUnreachable, UploadBusy) as e:
                    if delay is None:
                        if isinstance(e, UploadBusy):
                            raise RegistryError(f"upload of blob {digest} failed after "
                                                f"{attempt} attempts; last answer: {e}") from None
                        raise
                    if isinstance(e, UploadBusy):
                        delay = max(delay, e.retry_after)  # the registry asked for a pause
                    # the session's state on the registry is unknown: a new one, from byte 0
                    progress(f"Retrying upload of blob {digest} ({e})")
                    time.sleep(delay)
                    location = None
                    f.seek(0)

    def _upload(self, location: str | None, desc: dict, f: IO[bytes]) -> None:
        digest, size = desc["digest"], desc["size"]
        min_chunk = 0
        if location is None:
            location, min_chunk = self.client.start_upload()
        if self.chunk_size and size > self.chunk_size:
            self.client.upload_chunked(location, digest, f, size,
                                       max(self.chunk_size, min_chunk))
        else:
            self.client.upload_monolithic(location, digest, size, f)

    def put_document(self, body: bytes, desc: dict, tag: str | None) -> dict:
        media_type = desc["mediaType"]
        if tag is None and self.client.has_manifest(desc["digest"], media_type):
            return desc
        self.client.put_manifest(tag or desc["digest"], body, media_type)
        return desc

    def stored_small_blob(self, desc: dict) -> bytes | None:
        return None


class _UploadReader:
    """A blob file as an upload body: verified while it is sent (not in a pass of its
    own), with a length and a rewind for an auth retry.

    A mismatch raises :class:`~ketch.image.errors.DigestError` once the last
    byte is read (too many bytes: before they are sent). A monolithic upload
    has then sent its body, but the registry checks the ``digest`` it was given
    and refuses the blob; a chunked upload stops before its final ``PUT``.
    """

    def __init__(self, f: IO[bytes], desc: dict,
                 progress: Callable[[str], None] = _quiet) -> None:
        self.f, self.desc, self.progress = f, desc, progress
        self.seek(0)

    def __len__(self) -> int:
        return self.desc["size"] - self._verifier.count

    def seek(self, offset: int, whence: int = 0) -> int:
        if (offset, whence) != (0, 0):
            raise ValueError("an upload body can only be rewound")
        self.f.seek(0)
        self._verifier = oci.Verifier(self.desc["digest"], self.desc["size"])
        return 0

    def read(self, n: int = -1) -> bytes:
        chunk = self.f.read(n)
        if chunk:
            self._verifier.update(chunk)
            _report_bytes(self.progress, self.desc["digest"], self._verifier.count,
                          self.desc["size"])
        else:
            self._verifier.verify()
        return chunk


@contextlib.contextmanager
def _blob_file(src: Source, desc: dict,
               progress: Callable[[str], None] = _quiet) -> Iterator[IO[bytes]]:
    """The source's own file (verified as it is read), or the blob spooled (and
    verified) into a temp file, so an upload has a length and can be rewound
    after an auth challenge."""
    f = src.blob_file(desc)
    if f is not None:
        with f:
            yield _UploadReader(f, desc, progress)  # type: ignore[misc]
        return
    with tempfile.TemporaryFile(prefix="ketch-blob-") as tmp:
        v = oci.Verifier(desc["digest"], desc["size"])
        for chunk in src.blob_chunks(desc):
            v.update(chunk)
            tmp.write(chunk)
        v.verify()
        tmp.seek(0)
        yield tmp


# -- the copy -----------------------------------------------------------------------


@dataclass
class CopyOptions:
    """``all_platforms``: copy every manifest of an index (else pick ``platform``,
    default the host); ``jobs``: blobs copied at once; ``progress``: one line per step."""

    all_platforms: bool = False
    platform: Platform | None = None
    jobs: int = DEFAULT_JOBS
    progress: Callable[[str], None] = field(default=_quiet)


def copy_image(src: Source, dst: Destination, tag: str | None,
               options: CopyOptions | None = None) -> dict:
    """Copy the image ``src`` names to ``dst``, recording it as ``tag`` (None: by digest).

    Returns the descriptor stored for the top document (a manifest, or an index
    with ``all_platforms``). Raises :class:`~ketch.image.errors.ManifestError`
    (bad or unsupported documents), ``DigestError`` (content mismatch),
    ``PlatformError``, ``RegistryError``/``AuthError`` or ``LayoutError``.
    """
    options = options or CopyOptions()
    body, declared, digest = src.top()
    desc: dict = {"mediaType": declared, "digest": digest, "size": len(body)}
    oci.verify_bytes(body, digest, len(body))
    for _ in range(_MAX_INDEX_DEPTH):
        doc = oci.load_json(body, f"manifest {digest}")
        desc["mediaType"] = oci.document_media_type(doc, desc.get("mediaType"),
                                                    f"manifest {digest}")
        if desc["mediaType"] not in oci.INDEX_TYPES:
            return _copy_manifest(src, dst, body, doc, desc, tag, options, top=True)
        if options.all_platforms:
            for child in doc["manifests"]:
                _copy_child(src, dst, child, options, depth=1)
            options.progress(f"Writing index {digest}")
            return dst.put_document(body, desc, tag)
        candidates = [m for m in doc["manifests"]
                      if m.get("mediaType") in oci.MANIFEST_TYPES | oci.INDEX_TYPES]
        chosen = select_manifest(candidates, options.platform or host_platform())
        options.progress(f"Resolved {src.name} to {chosen['digest']} "
                         f"({_platform_text(chosen)})")
        body = src.document(chosen)
        digest = chosen["digest"]
        desc = {k: v for k, v in chosen.items()
                if k in ("mediaType", "digest", "size", "platform")}
    raise ManifestError(f"{src.name}: image indexes nested too deeply")


def _copy_child(src: Source, dst: Destination, desc: dict, options: CopyOptions,
                depth: int) -> None:
    oci.check_descriptor(desc, "index entry")
    body = src.document(desc)
    media_type = desc["mediaType"]
    if media_type not in oci.MANIFEST_TYPES | oci.INDEX_TYPES:
        options.progress(f"Copying {media_type} {desc['digest']} as an opaque document")
        dst.put_document(body, desc, None)
        return
    doc = oci.load_json(body, f"manifest {desc['digest']}")
    media_type = oci.document_media_type(doc, media_type, f"manifest {desc['digest']}")
    if media_type in oci.INDEX_TYPES:
        if depth >= _MAX_INDEX_DEPTH:
            raise ManifestError(f"{src.name}: image indexes nested too deeply")
        for child in doc["manifests"]:
            _copy_child(src, dst, child, options, depth + 1)
        dst.put_document(body, desc, None)
        return
    _copy_manifest(src, dst, body, doc, desc, None, options, top=False)


def _copy_manifest(src: Source, dst: Destination, body: bytes, doc: dict, desc: dict,
                   tag: str | None, options: CopyOptions, top: bool) -> dict:
    config_desc = doc["config"]
    where = f"{src.name} ({desc['digest']})"
    if config_desc.get("mediaType") not in oci.CONFIG_TYPES:
        raise ManifestError(f"{where}: config media type {config_desc.get('mediaType')!r} is "
                            "not an image config")
    for layer in doc["layers"]:
        if layer.get("mediaType") not in oci.LAYER_TYPES:
            raise ManifestError(f"{where}: unsupported layer media type "
                                f"{layer.get('mediaType')!r}")
    config_bytes = dst.stored_small_blob(config_desc) or src.small_blob(config_desc)
    config = oci.load_json(config_bytes, "image config")
    _check_config(config, doc)
    # the config goes beside the layers (only the manifest must wait for all of them):
    # its few small requests then overlap the first layer's upload or download
    _copy_blobs(dst, [(config_desc, _BytesSource(config_bytes)),
                      *((layer, src) for layer in doc["layers"])], options)
    if top and "platform" not in desc and config.get("os") and config.get("architecture"):
        desc["platform"] = {k: config[k] for k in ("os", "architecture", "variant")
                            if config.get(k)}
    return dst.put_document(body, desc, tag)


def _copy_blobs(dst: Destination, blobs: list[tuple[dict, Source]],
                options: CopyOptions) -> None:
    """Store each ``(descriptor, source)`` blob in ``dst``, ``options.jobs`` at a time
    (a digest listed twice is copied once, from its first source). In parallel the
    largest go first: the longest transfers start at once and the small ones fill in."""
    unique: dict[str, tuple[dict, Source]] = {}
    for d, s in blobs:
        unique.setdefault(d["digest"], (d, s))
    if options.jobs <= 1 or len(unique) <= 1:
        for d, s in unique.values():
            dst.put_blob(d, s, options.progress)
        return
    (first, first_src), *rest = sorted(unique.values(), key=lambda pair: -pair[0]["size"])
    under_way = threading.Event()
    stop = threading.Event()
    progress = _Stoppable(options.progress, stop)
    pool = ThreadPoolExecutor(max_workers=min(options.jobs, len(unique)))
    futures = [pool.submit(dst.put_blob, first, first_src, _FirstBytes(progress, under_way))]
    try:
        futures[0].add_done_callback(lambda _: under_way.set())
        # The others start once the largest one's bytes move (or it is done, or after
        # _HEAD_START): started together, their requests (a config's HEAD, POST, PUT)
        # held up the largest one's HEAD and POST, on its critical path (~6 ms of a
        # 50 MB push to a loopback registry).
        under_way.wait(_HEAD_START)
        futures += [pool.submit(dst.put_blob, d, s, progress) for d, s in rest]
        for f in as_completed(futures):
            if f.exception() is not None:
                raise f.exception()  # type: ignore[misc]  # the first failure wins
    except BaseException as e:
        # Queued blobs are dropped and running ones stop at their next piece, so a
        # failure or Ctrl-C/SIGTERM ends the copy at once (not after every blob).
        stop.set()
        for other in futures:
            other.cancel()
        if isinstance(e, Exception):
            wait(futures)  # no writer outlives the copy
        else:
            # interrupted: a worker stuck on a silent peer is not waited for, as the
            # process is about to end; the others remove their partial files first
            wait(futures, timeout=_STOP_GRACE)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


class _Stopped(Exception):
    """Raised in a blob worker whose copy was stopped (another blob failed, or the
    process was interrupted); never seen by callers."""


class _Stoppable:
    """A progress sink passing everything on to ``progress`` until ``stop`` is set;
    then the worker calling it (between two pieces of a blob) raises :class:`_Stopped`."""

    def __init__(self, progress: Callable[[str], None], stop: threading.Event) -> None:
        self.progress, self.stop = progress, stop

    def __call__(self, msg: str) -> None:
        if self.stop.is_set():
            raise _Stopped()
        self.progress(msg)

    def blob_bytes(self, digest: str, done: int, total: int) -> None:
        if self.stop.is_set():
            raise _Stopped()
        _report_bytes(self.progress, digest, done, total)


# How long (seconds) an interrupted copy waits for its blob workers to clean up.
_STOP_GRACE = 2.0


# At most this long (seconds) the other blobs wait for the largest one's first bytes.
_HEAD_START = 0.05


class _FirstBytes:
    """A progress sink passing everything on to ``progress`` that sets ``event`` when
    the first bytes of its blob move (reported through ``blob_bytes``)."""

    def __init__(self, progress: Callable[[str], None], event: threading.Event) -> None:
        self.progress, self.event = progress, event

    def __call__(self, msg: str) -> None:
        self.progress(msg)

    def blob_bytes(self, digest: str, done: int, total: int) -> None:
        self.event.set()
        _report_bytes(self.progress, digest, done, total)


class _BytesSource:
    """A source for one in-memory, already verified blob (the config)."""

    name = "memory"

    def __init__(self, data: bytes) -> None:
        self.data = data

    def blob_chunks(self, desc: dict) -> Iterator[bytes]:
        yield self.data

    def resume_chunks(self, desc: dict, start: int) -> tuple[int, Iterator[bytes]]:
        return 0, self.blob_chunks(desc)

    def blob_file(self, desc: dict) -> IO[bytes] | None:
        import io
        return io.BytesIO(self.data)


def _platform_text(desc: dict) -> str:
    p = desc.get("platform") or {}
    return str(Platform(str(p.get("os", "?")), str(p.get("architecture", "?")),
                        str(p.get("variant", "") or "")))


def _check_config(config: dict, manifest: dict) -> None:
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or len(diff_ids) != len(manifest["layers"]):
        raise ManifestError("image config rootfs.diff_ids does not match the manifest's layers")
    for d in diff_ids:
        oci.validate_digest(d)

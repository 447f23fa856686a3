"""Read a layer blob once: verify, decompress and hash on a second core while the tar is applied.

image-spec layer.md: a layer blob is verified against its descriptor's digest
and size, and its uncompressed content against the config's
``rootfs.diff_ids`` entry. :class:`LayerStream` does all of that in one pass
over the blob, on a worker thread (zlib, zstd and hashlib release the GIL on
large buffers, so this really runs beside the extraction): it reads the blob,
feeds the compressed bytes to the descriptor's :class:`~ketch.image.oci.Verifier`,
decompresses (gzip with ISA-L's inflate when the ``isal`` package is there,
else zlib's, and zstd; detected from the magic bytes, as
:mod:`ketch.image.layers.compression` explains; multi-member gzip and
multi-frame zstd accepted) and hands the uncompressed bytes to the reader
through a bounded queue. The diff_id hash of those bytes is fed in order by
whichever thread would otherwise idle: the reader while it waits for data,
the worker once a backlog builds up (and at the end). Every byte of the blob
is read, so the digests cover trailing data too.

The reader sees a plain binary stream; errors of the worker (digest, size,
corrupt compression, the byte budget against decompression bombs) are raised
on the reader's side. Content is extracted before the final digest check, so
the caller must treat a failure at :meth:`LayerStream.finish` as fatal for
everything written (``unpack`` removes the bundle).
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import io
import queue
import threading
import zlib
from typing import BinaryIO

from ketch.image.errors import ImageError, LayerError
from ketch.image.layers.compression import compression_of
from ketch.image.oci import Verifier

# Blob reads of 256 KiB: ISA-L inflates them with its output still in the L2 cache for
# the diff_id hash (about 10% less CPU than 1 MiB reads on the Debian layer), and the
# first piece reaches the reader sooner.
_CHUNK = 256 << 10
# Pieces handed to the reader hold at most this much (gzip output is capped at it,
# zstd output is cut into views of it), so the queue holds at most
# _QUEUE_DEPTH * _PIECE bytes of pieces (zstd: plus the one frame output they view).
_PIECE = 1 << 20
# Deep enough that neither thread waits for the other through a run of small
# files (reader busy) or of large ones (inflate busy): 64 MiB at most.
_QUEUE_DEPTH = 64
_DONE = object()
# Pieces the worker leaves unhashed for the reader to hash while it would wait for data
# (see _hash_backlog): beyond this many the worker hashes them itself.
_HASH_BACKLOG = 4


def gzip_decompressobj():
    """An incremental gzip decoder: ISA-L's (the ``isal`` package; about 2.5x less CPU
    than zlib for the same stream) when importable, zlib's otherwise."""
    try:
        from isal import isal_zlib
    except ImportError:
        return zlib.decompressobj(wbits=31)
    return isal_zlib.decompressobj(wbits=31)


class _Decompressor:
    """Incremental gzip/zstd/plain decoding that accepts concatenated members/frames."""

    def __init__(self, head: bytes) -> None:
        self.kind = compression_of(head)
        self._obj = None
        self._in_member = False

    def _new(self):
        if self.kind == "gzip":
            return gzip_decompressobj()
        try:
            import zstandard  # optional at import time; a dependency of the package
        except ImportError:
            raise LayerError("zstd-compressed layer: install the 'zstandard' package") from None
        return zstandard.ZstdDecompressor().decompressobj()

    def feed(self, data: bytes) -> list[bytes]:
        """Decode ``data``; return the output pieces (gzip: each at most ``_PIECE`` bytes)."""
        if self.kind == "plain":
            return [data]
        gzip = self.kind == "gzip"
        out = []
        while data:
            if not self._in_member:
                if not data.strip(b"\0"):
                    return out  # zero padding after the last member
                if self._obj is not None and len(data) >= 4 and compression_of(data) != self.kind:
                    # what follows a finished member is no member: Go's readers call it an
                    # invalid header, "truncated" would blame a cut-off download
                    raise LayerError(f"data after the end of the {self.kind} stream that is "
                                     f"not another {self.kind} member")
                self._obj = self._new()
                self._in_member = True
            assert self._obj is not None
            # zlib-style objects stop at max_length and keep the rest of the input in
            # unconsumed_tail; zstandard's have no such limit.
            chunk = self._obj.decompress(data, _PIECE) if gzip else self._obj.decompress(data)
            if chunk:
                out.append(chunk)
            if self._obj.eof:
                self._in_member = False
                data = self._obj.unused_data
            elif gzip:
                tail = self._obj.unconsumed_tail
                if tail and not chunk and len(tail) == len(data):
                    raise LayerError("gzip stream makes no progress")
                data = tail
            else:
                data = b""
        return out

    def finish(self) -> None:
        if self._in_member:
            raise LayerError(f"truncated {self.kind} stream")


def media_type_compression(media_type: str) -> str | None:
    """Compression an OCI layer media type promises (None for Docker's, which is known
    to label uncompressed blobs ``tar.gzip``: there the magic bytes decide)."""
    if not media_type.startswith("application/vnd.oci.image.layer."):
        return None
    if media_type.endswith("+gzip"):
        return "gzip"
    if media_type.endswith("+zstd"):
        return "zstd"
    return "plain" if media_type.endswith(".tar") else None


class LayerStream(io.RawIOBase):
    """A readable, uncompressed view of a layer blob, produced on a worker thread.

    ``blob``: the blob file opened at its start; ``digest``/``size``: its
    descriptor's; ``diff_id_algorithm``: hash for the uncompressed stream;
    ``max_bytes``: the largest uncompressed size accepted (a decompression
    bomb budget; ``None`` for no limit); ``compression``: what the media type
    says (``"gzip"``, ``"zstd"``, ``"plain"``; None accepts whatever the magic
    bytes show), a mismatch is a LayerError. Use as a context manager; call
    :meth:`finish` after the tar has been applied.
    """

    def __init__(self, blob: BinaryIO, digest: str, size: int | None,
                 diff_id_algorithm: str = "sha256", max_bytes: int | None = None,
                 compression: str | None = None) -> None:
        super().__init__()
        self._blob = blob
        self._verifier = Verifier(digest, size)
        self.diff_hash = hashlib.new(diff_id_algorithm)
        self.uncompressed_size = 0
        self._max = max_bytes
        self._expected = compression
        self._queue: queue.Queue = queue.Queue(_QUEUE_DEPTH)
        self._unhashed: collections.deque = collections.deque()
        self._hash_lock = threading.Lock()
        self._stop = threading.Event()
        self._buf = memoryview(b"")
        self._eof = False
        self._thread = threading.Thread(target=self._work, name="layer-stream", daemon=True)
        self._thread.start()

    # -- worker ---------------------------------------------------------------------

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            self._pump()
            self._put(_DONE)
        except (ImageError, OSError) as e:
            self._put(e)

    def _pump(self) -> None:
        chunk = self._blob.read(_CHUNK)
        dec = _Decompressor(chunk[:4])
        if self._expected is not None and chunk and dec.kind != self._expected:
            raise LayerError(f"the media type says {self._expected} but the blob's magic "
                             f"bytes say {dec.kind}")
        try:
            while chunk:
                self._verifier.update(chunk)
                for out in dec.feed(chunk):
                    self.uncompressed_size += len(out)
                    if self._max is not None and self.uncompressed_size > self._max:
                        raise LayerError(f"layer expands beyond the budget of {self._max} bytes")
                    if len(out) <= _PIECE:
                        if not self._put(out):
                            return
                    else:
                        view = memoryview(out)
                        for start in range(0, len(out), _PIECE):
                            if not self._put(view[start:start + _PIECE]):
                                return
                    self._unhashed.append(out)
                    if len(self._unhashed) > _HASH_BACKLOG:
                        self._hash_backlog(keep=_HASH_BACKLOG, wait=False)
                chunk = self._blob.read(_CHUNK)
            dec.finish()
            self._hash_backlog(keep=0, wait=True)
        except Exception as e:  # zlib.error, IsalError, zstandard.ZstdError, LayerError
            self._fail_corrupt(e, dec.kind)
        self._verifier.verify()

    def _hash_backlog(self, keep: int, wait: bool, until_data: bool = False) -> None:
        """Feed unhashed pieces, oldest first, to the diff_id hash until ``keep`` are left
        (``until_data``: or the reader's queue has data). One thread at a time, so the
        order holds; ``wait``: wait for the other thread's turn, else give up at once.

        Both threads call it: the reader while it would otherwise wait for data (the
        worker is the slower one then, with big files), the worker when the backlog
        grows (the reader is the slower one, with runs of small files), and the worker
        at the end for the rest.
        """
        if not self._hash_lock.acquire(blocking=wait):
            return
        try:
            backlog, update = self._unhashed, self.diff_hash.update
            while len(backlog) > keep and not (until_data and self._queue.qsize()):
                update(backlog.popleft())
        finally:
            self._hash_lock.release()

    def _fail_corrupt(self, error: Exception, kind: str) -> None:
        """A decoding error: a corrupt blob is the likelier cause, so check the digest first."""
        while chunk := self._blob.read(_CHUNK):
            self._verifier.update(chunk)
        self._verifier.verify()  # raises DigestError for a corrupt blob
        if isinstance(error, LayerError):
            raise error
        raise LayerError(f"corrupt {kind} stream: {error}")

    # -- reader ---------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def _next(self) -> bool:
        if self._unhashed and not self._queue.qsize():
            self._hash_backlog(keep=0, wait=False, until_data=True)
        item = self._queue.get()
        if item is _DONE:
            self._eof = True
            return False
        if isinstance(item, BaseException):
            self._eof = True
            raise item
        self._buf = memoryview(item)  # type: ignore[arg-type]
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if not self._buf and (self._eof or not self._next()):
            return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def read(self, size: int = -1) -> bytes:
        # Hand whole chunks through without the copy readinto needs.
        if size is None or size < 0:
            return self.readall()
        if not self._buf and (self._eof or not self._next()):
            return b""
        if size >= len(self._buf):
            out = self._buf.tobytes()
            self._buf = memoryview(b"")
            return out
        out = self._buf[:size].tobytes()
        self._buf = self._buf[size:]
        return out

    def read_view(self, size: int) -> memoryview:
        """Up to ``size`` (> 0) bytes as a view of the current piece, without copying;
        an empty view at the end of the stream. The view stays valid after later reads."""
        if not self._buf and (self._eof or not self._next()):
            return memoryview(b"")
        out = self._buf[:size]
        self._buf = self._buf[len(out):]
        return out

    def finish(self) -> str:
        """Read to the end (raising the worker's error, if any); return ``alg:hex`` of the
        uncompressed stream. The compressed digest and size have been verified."""
        while self._buf or not self._eof:
            self._buf = memoryview(b"")
            if not self._eof:
                self._next()
        return f"{self.diff_hash.name}:{self.diff_hash.hexdigest()}"

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.1)
        super().close()

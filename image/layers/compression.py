"""Layer compression (image-spec layer.md "+gzip"/"+zstd" media types).

Decompression sniffs the magic bytes rather than trusting the media type alone:
Docker's ``tar.gzip`` media type has been seen on uncompressed blobs, and the
magic is unambiguous (gzip ``1f 8b``, zstd ``28 b5 2f fd`` or a skippable frame,
else plain tar).
"""

from __future__ import annotations

import gzip
import io
from typing import BinaryIO

from ketch.image.errors import LayerError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# RFC 8878 3.1.2: skippable frames, magic 0x184D2A50..0x184D2A5F (little-endian); a
# zstd stream may start with one (zstd -dc and skopeo read such blobs).
_ZSTD_SKIPPABLE_TAIL = b"\x2a\x4d\x18"


def compression_of(head: bytes) -> str:
    """``"gzip"``, ``"zstd"`` or ``"plain"`` from a blob's first 4 bytes."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC) or (
            len(head) >= 4 and head[0] & 0xF0 == 0x50 and head[1:4] == _ZSTD_SKIPPABLE_TAIL):
        return "zstd"
    return "plain"


def open_decompressed(raw: BinaryIO) -> BinaryIO:
    """Wrap ``raw`` (positioned at the start of a layer blob) in a decompressing reader.

    Raises :class:`LayerError` for zstd when the optional ``zstandard`` package
    is missing.
    """
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type]
    kind = compression_of(buffered.peek(4)[:4])
    if kind == "gzip":
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    if kind == "zstd":
        try:
            import zstandard  # optional: only zstd layers need it
        except ImportError:
            raise LayerError("zstd-compressed layer: install the 'zstandard' package") from None
        return zstandard.ZstdDecompressor().stream_reader(buffered)  # type: ignore[no-any-return]
    return buffered


class HashingReader(io.RawIOBase):
    """A read-only stream that feeds everything read through it into ``hash_obj``."""

    def __init__(self, inner: BinaryIO, hash_obj: object) -> None:
        self._inner = inner
        self.hash = hash_obj
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(b))
        n = len(data)
        b[:n] = data
        self.hash.update(data)  # type: ignore[attr-defined]
        self.count += n
        return n

    def drain(self) -> None:
        """Read to EOF so the hash covers the whole stream (tar padding included)."""
        while self.read(1 << 20):
            pass

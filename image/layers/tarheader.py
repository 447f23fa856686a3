"""A cheaper parser for the common tar header block, with ``tarfile``'s as the fallback.

POSIX.1-2001 pax / ustar "Header Block" (the format image-spec layer.md's
"Distributable Format" refers to): one 512-byte block of fixed fields.
``tarfile.TarInfo.frombuf`` decodes it with a helper call per field (13
string, 8 number and two checksum passes): on a 6,700-entry base layer that
is the largest single cost of the extraction. :class:`FastTarInfo` is a
drop-in ``TarInfo`` (``tarfile.open(..., tarinfo=FastTarInfo)``) whose
``frombuf`` decodes a plain block in fewer steps and hands every block it
is not sure about to ``tarfile``'s own ``frombuf``: old GNU sparse headers
(``S``), base-256 numbers, a checksum that is not the plain unsigned sum,
anything a strict octal parse rejects, empty, end-of-archive and short
blocks. Everything after the block (PAX and GNU long-name records, sparse
maps, the data offsets) stays ``tarfile``'s, so only the field decoding
changes, and it gives the same ``TarInfo`` field by field
(``tests/image/test_tarheader.py`` compares both parsers entry by entry).
"""

from __future__ import annotations

import struct
import tarfile
from zlib import adler32 as _adler32

_BLOCK = tarfile.BLOCKSIZE
# The numeric fields: mode, uid, gid, size, mtime, chksum, devmajor, devminor.
_NUMERIC = struct.Struct("100x8s8s8s12s12s8s173x8s8s167x")
_GNU_SPARSE = tarfile.GNUTYPE_SPARSE
_GNU_TYPES = tarfile.GNU_TYPES
_AREG = tarfile.AREGTYPE
_DIR = tarfile.DIRTYPE


class _Unsure(Exception):
    """The block needs ``tarfile``'s parser."""


class FastTarInfo(tarfile.TarInfo):
    """``tarfile.TarInfo`` with a faster ``frombuf`` for plain header blocks."""

    @classmethod
    def frombuf(cls, buf, encoding, errors):  # type: ignore[override]
        try:
            return cls._fast_frombuf(buf, encoding, errors)
        except _Unsure:
            return super().frombuf(buf, encoding, errors)

    @classmethod
    def _fast_frombuf(cls, buf: bytes, encoding: str, errors: str) -> FastTarInfo:
        if len(buf) != _BLOCK or buf[156:157] == _GNU_SPARSE or not buf.strip(b"\0"):
            raise _Unsure
        # tarfile.nti for plain octal: the text up to the first NUL, in base 8. int() on
        # bytes accepts a subset of what nti accepts after decoding (only ASCII
        # whitespace is stripped; base-256 and blank fields raise) with the same value.
        try:
            mode, uid, gid, size, mtime, chksum, devmajor, devminor = [
                int(f.split(b"\0", 1)[0] or b"0", 8) for f in _NUMERIC.unpack(buf)]
        except ValueError:
            raise _Unsure from None
        # tarfile also accepts the signed sum some old tars wrote: its parser decides those.
        # The unsigned sum of the block's bytes with the checksum field as spaces (256 =
        # 8 * 0x20); a 256-byte half sums to at most 65,280, below Adler-32's modulus, so
        # its Adler-32 low half is exactly 1 + its byte sum (about 3x cheaper than sum()).
        if chksum != 254 + (_adler32(buf[:256]) & 0xFFFF) + (_adler32(buf[256:]) & 0xFFFF) \
                - sum(buf[148:156]):
            raise _Unsure
        try:
            name = buf[0:100].split(b"\0", 1)[0].decode(encoding, errors)
            linkname = buf[157:257].split(b"\0", 1)[0].decode(encoding, errors)
            uname = buf[265:297].split(b"\0", 1)[0].decode(encoding, errors)
            gname = buf[297:329].split(b"\0", 1)[0].decode(encoding, errors)
            prefix = buf[345:500].split(b"\0", 1)[0].decode(encoding, errors)
        except UnicodeError:
            raise _Unsure from None
        # Every attribute TarInfo.__init__ sets, set once (not __init__'s defaults first).
        obj = cls.__new__(cls)
        obj.offset = obj.offset_data = 0
        obj.sparse = None
        obj.pax_headers = {}
        obj.name = name
        obj.mode = mode
        obj.uid = uid
        obj.gid = gid
        obj.size = size
        obj.mtime = mtime
        obj.chksum = chksum
        obj.type = kind = buf[156:157]
        obj.linkname = linkname
        obj.uname = uname
        obj.gname = gname
        obj.devmajor = devmajor
        obj.devminor = devminor
        # Same normalisations as tarfile: a V7 directory is a regular file named "x/",
        # directories lose trailing slashes, a ustar prefix joins the name.
        if kind == _AREG and name.endswith("/"):
            obj.type = kind = _DIR
        if kind == _DIR:
            obj.name = name = name.rstrip("/")
        if prefix and kind not in _GNU_TYPES:
            obj.name = prefix + "/" + name
        return obj

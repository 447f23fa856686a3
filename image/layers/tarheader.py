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

import tarfile

_BLOCK = tarfile.BLOCKSIZE
# Numeric fields as (start, end) offsets in the header block.
_NUMERIC = ((100, 108), (108, 116), (116, 124), (124, 136), (136, 148), (148, 156),
            (329, 337), (337, 345))
_GNU_SPARSE = tarfile.GNUTYPE_SPARSE
_GNU_TYPES = tarfile.GNU_TYPES
_AREG = tarfile.AREGTYPE
_DIR = tarfile.DIRTYPE


class _Unsure(Exception):
    """The block needs ``tarfile``'s parser."""


def _octal(field: bytes) -> int:
    """``tarfile.nti`` for a plain octal field, or :class:`_Unsure`.

    ``int()`` on bytes accepts a subset of what ``tarfile`` accepts after
    decoding (it strips only ASCII whitespace), with the same value.
    """
    if field[0] in (0o200, 0o377):  # base-256 (GNU) numbers
        raise _Unsure
    end = field.find(b"\0")
    if end != -1:
        field = field[:end]
    if not field.strip():
        return 0
    try:
        return int(field, 8)
    except ValueError:
        raise _Unsure from None


def _text(field: bytes, encoding: str, errors: str) -> str:
    end = field.find(b"\0")
    if end != -1:
        field = field[:end]
    return field.decode(encoding, errors)


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
        mode, uid, gid, size, mtime, chksum, devmajor, devminor = (
            _octal(buf[a:b]) for a, b in _NUMERIC)
        # tarfile also accepts the signed sum some old tars wrote: its parser decides those.
        if chksum != 256 + sum(buf) - sum(buf[148:156]):
            raise _Unsure
        try:
            name = _text(buf[0:100], encoding, errors)
            linkname = _text(buf[157:257], encoding, errors)
            uname = _text(buf[265:297], encoding, errors)
            gname = _text(buf[297:329], encoding, errors)
            prefix = _text(buf[345:500], encoding, errors)
        except UnicodeError:
            raise _Unsure from None
        obj = cls()
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

"""Who owns an extracted file: plain chown, id-mapped chown, or rootless bookkeeping.

image-spec layer.md "File Attributes" wants uid/gid kept. Three ways to do it:

- as root without maps: ``chown`` to the tar header's numeric ids;
- with ``--uid-map``/``--gid-map`` (``CONTAINER:HOST:SIZE``, as in runtime-spec
  config-linux.md "User namespace mappings"): ``chown`` to the host id the
  container id maps to, so a user-namespaced container sees the image's
  owners; an id outside every range is an error;
- rootless (``--rootless``, umoci's mode of the same name): no ``chown`` at all
  (an unprivileged user cannot); the files belong to whoever unpacks, and the
  image's ids are recorded in the ``user.rootlesscontainers`` xattr, the
  protobuf ``Resource {uint32 uid = 1; uint32 gid = 2;}`` defined by
  github.com/rootless-containers/proto, which umoci and PRoot-style tools read.
  As that definition says, 0:0 is the default and is stored as no xattr.
  Symlinks cannot carry ``user.*`` xattrs on Linux, so theirs is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from ketch.image.errors import ImageError, LayerError

ROOTLESS_XATTR = "user.rootlesscontainers"


@dataclass(frozen=True)
class IdMap:
    """One mapping range: container ids ``[container, container+size)`` are host ids from ``host``."""

    container: int
    host: int
    size: int


def parse_id_map(text: str) -> IdMap:
    """Parse ``CONTAINER:HOST:SIZE`` (umoci's ``--uid-map`` syntax). Raises ImageError."""
    parts = text.split(":")
    try:
        if len(parts) != 3:
            raise ValueError
        c, h, s = (int(p, 10) for p in parts)
    except ValueError:
        raise ImageError(f"invalid id map {text!r}: expected CONTAINER:HOST:SIZE") from None
    if min(c, h) < 0 or s <= 0 or max(c, h) + s > 2**32:
        raise ImageError(f"invalid id map {text!r}: ids out of range")
    return IdMap(c, h, s)


def map_to_host(maps: list[IdMap], ident: int, kind: str) -> int:
    """Host id for container id ``ident``; identity without maps. Raises LayerError if unmapped."""
    if not maps:
        return ident
    for m in maps:
        if m.container <= ident < m.container + m.size:
            return m.host + (ident - m.container)
    raise LayerError(f"{kind} {ident} is not covered by the {kind} map")


def map_to_container(maps: list[IdMap], ident: int) -> int | None:
    """Container id for host id ``ident`` (identity without maps; None when unmapped)."""
    if not maps:
        return ident
    for m in maps:
        if m.host <= ident < m.host + m.size:
            return m.container + (ident - m.host)
    return None


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_rootless(uid: int, gid: int) -> bytes:
    """Protobuf bytes of ``Resource{uid, gid}`` (zero fields omitted, as proto3 does)."""
    out = b""
    if uid:
        out += b"\x08" + _varint(uid)
    if gid:
        out += b"\x10" + _varint(gid)
    return out


def decode_rootless(data: bytes) -> tuple[int, int]:
    """``(uid, gid)`` from ``Resource`` bytes; unknown fields are skipped. Raises ImageError."""
    uid = gid = 0
    i = 0

    def varint() -> int:
        nonlocal i
        shift = value = 0
        while True:
            if i >= len(data) or shift > 63:
                raise ImageError(f"malformed {ROOTLESS_XATTR} xattr")
            b = data[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value

    while i < len(data):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            value = varint()
            if field == 1:
                uid = value
            elif field == 2:
                gid = value
        elif wire == 2:
            length = varint()  # read before adding: varint() moves i itself
            i += length
        else:
            raise ImageError(f"malformed {ROOTLESS_XATTR} xattr")
    return uid, gid

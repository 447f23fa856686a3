"""Media types, digests and descriptors.

Implements image-spec ``descriptor.md`` (descriptor properties, the digest
grammar ``algorithm ":" encoded`` and the registered algorithms sha256/sha512),
``media-types.md`` (OCI and the compatible Docker schema2 media types) and the
document shape checks of ``manifest.md`` / ``image-index.md`` / ``config.md``
that the rest of the package relies on.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from ketch.image.errors import DigestError, ManifestError

# --- media types (media-types.md) -------------------------------------------------

OCI_LAYOUT_VERSION = "1.0.0"

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_ND = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_ND_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_ND_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})
LAYER_TYPES = frozenset({
    OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD,
    OCI_LAYER_ND, OCI_LAYER_ND_GZIP, OCI_LAYER_ND_ZSTD,
    DOCKER_LAYER, DOCKER_FOREIGN_LAYER,
})

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"

# Documents we parse are small; a bound stops a hostile server or layout from
# making us read gigabytes into memory (distribution-spec suggests 4 MiB for manifests).
MAX_DOCUMENT_SIZE = 4 * 1024 * 1024
# A layout's own index.json lists every tag: tens of thousands of tags make a few
# MiB (umoci and skopeo read such layouts); it is local, so a larger bound will do.
MAX_LAYOUT_INDEX_SIZE = 256 * 1024 * 1024

# --- digests (descriptor.md "Digests") --------------------------------------------

_ALGORITHM_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*$")
_ENCODED_RE = re.compile(r"^[a-zA-Z0-9=_-]+$")
# Registered algorithms: encoded part is lowercase hex of a fixed length.
_REGISTERED = {"sha256": 64, "sha512": 128}


def parse_digest(digest: Any) -> tuple[str, str]:
    """Validate ``digest`` and return ``(algorithm, hex)``.

    Accepts only the registered algorithms sha256 and sha512 with lowercase hex
    of the exact length, so the result is safe to use as a path component
    (``blobs/<alg>/<hex>``). Raises :class:`DigestError` otherwise.
    Source: image-spec descriptor.md, "Digests" and "Registered algorithms".
    """
    if not isinstance(digest, str):
        raise DigestError(f"digest must be a string, not {type(digest).__name__}")
    algorithm, sep, encoded = digest.partition(":")
    if not sep or not _ALGORITHM_RE.match(algorithm) or not _ENCODED_RE.match(encoded):
        raise DigestError(f"invalid digest {digest!r}")
    length = _REGISTERED.get(algorithm)
    if length is None:
        raise DigestError(f"unsupported digest algorithm {algorithm!r} in {digest!r}")
    if len(encoded) != length or not re.fullmatch(r"[a-f0-9]+", encoded):
        raise DigestError(
            f"invalid {algorithm} digest {digest!r}: need {length} lowercase hex characters")
    return algorithm, encoded


def validate_digest(digest: Any) -> str:
    """Return ``digest`` unchanged if :func:`parse_digest` accepts it; else raise DigestError."""
    parse_digest(digest)
    return digest


def hasher(digest: str) -> hashlib._Hash:
    """A fresh hash object for the algorithm of ``digest`` (validated)."""
    algorithm, _ = parse_digest(digest)
    return hashlib.new(algorithm)


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Verifier:
    """Hashes a stream and checks it against a descriptor's digest and size.

    Feed every chunk to :meth:`update`; it raises as soon as the size is
    exceeded, :meth:`verify` checks the total length and the digest at the end.
    """

    def __init__(self, digest: str, size: int | None) -> None:
        self.digest = validate_digest(digest)
        self.size = size
        self.count = 0
        self._hash = hasher(digest)

    def update(self, chunk: bytes) -> None:
        self.count += len(chunk)
        if self.size is not None and self.count > self.size:
            raise DigestError(
                f"blob {self.digest}: more data than the expected size {self.size}")
        self._hash.update(chunk)

    def verify(self) -> None:
        if self.size is not None and self.count != self.size:
            raise DigestError(
                f"blob {self.digest}: size {self.count} does not match expected {self.size}")
        actual = self.digest.split(":", 1)[0] + ":" + self._hash.hexdigest()
        if actual != self.digest:
            raise DigestError(f"blob digest mismatch: expected {self.digest}, got {actual}")


def verify_bytes(data: bytes, digest: str, size: int | None = None) -> None:
    """Raise :class:`DigestError` unless ``data`` has ``digest`` (and ``size`` if given)."""
    v = Verifier(digest, size)
    v.update(data)
    v.verify()


# --- descriptors and documents ----------------------------------------------------


def check_descriptor(desc: Any, what: str = "descriptor") -> dict:
    """Validate the required descriptor properties and return ``desc``.

    ``desc`` is a JSON object with ``mediaType`` (str), ``digest`` (valid,
    see :func:`parse_digest`) and ``size`` (int >= 0). Raises
    :class:`ManifestError` (or :class:`DigestError` for the digest).
    Source: image-spec descriptor.md "Properties".
    """
    if not isinstance(desc, dict):
        raise ManifestError(f"{what} is not a JSON object")
    media_type = desc.get("mediaType")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestError(f"{what} has no mediaType")
    validate_digest(desc.get("digest"))
    size = desc.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestError(f"{what} {desc.get('digest')} has an invalid size {size!r}")
    return desc


def load_json(data: bytes, what: str, limit: int = MAX_DOCUMENT_SIZE) -> dict:
    """Parse a JSON object document of at most ``limit`` bytes (callers read at most
    ``limit + 1``, so the size of a longer one is not known); raise
    :class:`ManifestError` if it is longer or not a JSON object."""
    if len(data) > limit:
        raise ManifestError(f"{what} is larger than the limit of {limit} bytes")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ManifestError(f"{what} is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ManifestError(f"{what} is not a JSON object")
    return doc


def document_media_type(doc: dict, declared: str | None, what: str) -> str:
    """Decide whether ``doc`` is a manifest or an index and return its media type.

    ``declared`` is the media type claimed by the descriptor or HTTP
    Content-Type. A document carrying both ``manifests`` and ``layers`` is
    refused as ambiguous (the CVE-2021-41190 fix); a ``mediaType`` property
    must agree with ``declared`` when both name a known type.
    Source: image-spec manifest.md / image-index.md ``mediaType``.
    """
    if "manifests" in doc and ("layers" in doc or "config" in doc):
        raise ManifestError(f"{what} is ambiguous: has both manifests and layers/config")
    inner = doc.get("mediaType")
    known = MANIFEST_TYPES | INDEX_TYPES
    if inner is not None and not isinstance(inner, str):
        raise ManifestError(f"{what} has an invalid mediaType")
    if inner in known and declared in known and inner != declared:
        raise ManifestError(f"{what} mediaType {inner} does not match the declared {declared}")
    media_type = inner if inner in known else declared
    if media_type not in known:
        # Old OCI documents may omit mediaType; the shape then decides.
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST if "layers" in doc else None
    if media_type is None:
        raise ManifestError(f"{what} has unsupported media type {inner or declared!r}")
    if doc.get("schemaVersion") != 2:
        raise ManifestError(f"{what} has unsupported schemaVersion {doc.get('schemaVersion')!r}")
    if media_type in INDEX_TYPES:
        manifests = doc.get("manifests")
        if not isinstance(manifests, list):
            raise ManifestError(f"{what} (index) has no manifests list")
        for i, d in enumerate(manifests):
            check_descriptor(d, f"{what} manifests[{i}]")
    else:
        check_descriptor(doc.get("config"), f"{what} config")
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise ManifestError(f"{what} has no layers list")
        for i, d in enumerate(layers):
            check_descriptor(d, f"{what} layers[{i}]")
    return media_type


def dumps(doc: Any) -> bytes:
    """Canonical-enough JSON bytes for documents we write (stable key order, compact)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

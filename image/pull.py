"""Pull an image from a registry into an OCI image layout.

Follows distribution-spec spec.md "Pull" (manifest by tag or digest, then each
blob by digest) and image-spec image-index.md (platform selection from an
index or Docker manifest list, or every platform with ``all_platforms``),
through the copy engine of :mod:`.transfer`: every blob is streamed into the
layout through a :class:`~ketch.image.layout.BlobWriter`, which checks size and
digest over the whole stream before the atomic rename; ``index.json`` is only
updated after the manifest and all blobs it references are stored, so an
interrupted pull leaves a valid layout and the next pull reuses the blobs it
already stored. Documents are stored byte for byte (Docker media types stay
Docker media types), so digests keep matching the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ketch.image.platforms import Platform
from ketch.image.reference import Reference
from ketch.image.transfer import (
    DEFAULT_JOBS,
    CopyOptions,
    LayoutDestination,
    RegistrySource,
    copy_image,
)


def _quiet(_msg: str) -> None:
    pass


@dataclass
class PullResult:
    """What was stored: the tagged descriptor and the reference it came from."""

    reference: Reference
    descriptor: dict


def pull(ref: Reference, layout_path: str, tag: str, *, platform: Platform | None = None,
         creds: tuple[str, str] | None = None, tls_verify: bool = True,
         progress: Callable[[str], None] = _quiet, all_platforms: bool = False,
         jobs: int = DEFAULT_JOBS, cert_dir: str | None = None) -> PullResult:
    """Pull ``ref`` into the layout at ``layout_path`` and tag it ``tag``.

    Index/manifest lists resolve to ``platform`` (default: host) unless
    ``all_platforms``; ``jobs`` blobs download at once. ``cert_dir`` is a
    docker ``certs.d``-style directory (CA ``*.crt``, client ``*.cert``/``*.key``).
    Raises :class:`~ketch.image.errors.RegistryError`/``AuthError`` (network,
    HTTP), ``DigestError`` (content mismatch), ``ManifestError``,
    ``PlatformError`` or ``LayoutError``; the layout is created only once the
    registry has answered with a manifest.
    """
    from ketch.image.registry.client import RegistryClient

    client = RegistryClient(ref, creds=creds, tls_verify=tls_verify, cert_dir=cert_dir)
    try:
        client.ping()
        with LayoutDestination(layout_path) as dest:
            stored = copy_image(RegistrySource(ref, client), dest, tag,
                                CopyOptions(all_platforms=all_platforms, platform=platform,
                                            jobs=jobs, progress=progress))
            progress(f"Stored {stored['digest']} as {dest.layout.path}:{tag}")
        return PullResult(reference=ref, descriptor=stored)
    finally:
        client.close()

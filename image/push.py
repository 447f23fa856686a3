"""Push an image from an OCI image layout to a registry.

Implements distribution-spec spec.md "Push": for every blob a ``HEAD`` first
(existing blobs are skipped), then a cross-repository mount
(``POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<repo>``) from each
``mount_from`` repository, falling back to an upload in the session the
registry opened (or a new one), monolithic (``PUT ?digest=``) or chunked
(``PATCH`` with ``Content-Range``, then ``PUT ?digest=``); then the manifest
with ``PUT /v2/<name>/manifests/<tag>`` and ``Content-Type`` set to its media
type. An image index is pushed with all its manifests (each by digest, before
the index). Documents go byte for byte, so the registry's digests equal the
layout's. Non-distributable (foreign) layers are skipped unless
``allow_nondistributable`` (see :mod:`.transfer`).
"""

from __future__ import annotations

from collections.abc import Callable

from ketch.image.errors import DigestError
from ketch.image.layout import Layout
from ketch.image.reference import Reference
from ketch.image.transfer import (
    DEFAULT_JOBS,
    CopyOptions,
    LayoutSource,
    RegistryDestination,
    copy_image,
)


def _quiet(_msg: str) -> None:
    pass


def push(layout_path: str, tag: str, ref: Reference, *,
         creds: tuple[str, str] | None = None, tls_verify: bool = True,
         cert_dir: str | None = None, mount_from: tuple[str, ...] = (),
         chunk_size: int | None = None, jobs: int = DEFAULT_JOBS,
         allow_nondistributable: bool = False,
         progress: Callable[[str], None] = _quiet) -> dict:
    """Push ``layout_path:tag`` to ``ref`` (its tag, or its digest when it has only one).

    ``mount_from``: repositories of the same registry to mount blobs from;
    ``chunk_size``: bytes per ``PATCH`` for blobs larger than it (None:
    monolithic uploads); ``allow_nondistributable``: push the non-distributable
    layers the layout holds (default: skip them, the manifest still names them).
    Returns the descriptor of the pushed top document.
    Raises :class:`~ketch.image.errors.LayoutError` (no such tag, missing blob),
    ``DigestError`` (corrupt blob), ``ManifestError``, ``RegistryError`` /
    ``AuthError``.
    """
    layout = Layout.open(layout_path)
    try:
        return _push(LayoutSource(layout, tag), layout_path, tag, ref, creds=creds,
                     tls_verify=tls_verify, cert_dir=cert_dir, mount_from=mount_from,
                     chunk_size=chunk_size, jobs=jobs,
                     allow_nondistributable=allow_nondistributable, progress=progress)
    finally:
        layout.release()  # the shared lock LayoutSource took: gc may run again


def _push(source: LayoutSource, layout_path: str, tag: str, ref: Reference, *,
          creds: tuple[str, str] | None, tls_verify: bool, cert_dir: str | None,
          mount_from: tuple[str, ...], chunk_size: int | None, jobs: int,
          allow_nondistributable: bool, progress: Callable[[str], None]) -> dict:
    from ketch.image.registry.client import RegistryClient

    _, _, digest = source.top()
    if ref.digest and ref.digest != digest:
        raise DigestError(f"{layout_path}:{tag} is {digest}, not {ref.digest}")
    client = RegistryClient(ref, creds=creds, tls_verify=tls_verify, cert_dir=cert_dir,
                            actions=("pull", "push"), mount_from=mount_from)
    try:
        client.ping()
        dest = RegistryDestination(ref, client, mount_from=mount_from, chunk_size=chunk_size,
                                   allow_nondistributable=allow_nondistributable)
        pushed = copy_image(source, dest, ref.tag,
                            CopyOptions(all_platforms=True, jobs=jobs, progress=progress))
        progress(f"Pushed {pushed['digest']} to {ref}")
        return pushed
    finally:
        client.close()

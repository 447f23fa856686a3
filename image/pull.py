"""Pull an image from a registry into an OCI image layout.

Follows distribution-spec spec.md "Pull" (manifest by tag or digest, then each
blob by digest) and image-spec image-index.md (platform selection from an
index or Docker manifest list). Every blob is streamed into the layout through
a :class:`~ketch.image.layout.BlobWriter`, which checks size and digest over the
whole stream before the atomic rename; ``index.json`` is only updated after
the manifest and all blobs it references are stored, so an interrupted pull
leaves a valid layout. Documents are stored byte for byte (Docker media types
stay Docker media types), so digests keep matching the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ketch.image import oci
from ketch.image.errors import ManifestError
from ketch.image.layout import Layout
from ketch.image.platforms import Platform, host_platform, select_manifest
from ketch.image.reference import Reference

if TYPE_CHECKING:  # the client imports requests; only pull() loads it
    from ketch.image.registry.client import RegistryClient

_MAX_INDEX_DEPTH = 4


def _quiet(_msg: str) -> None:
    pass


@dataclass
class PullResult:
    """What was stored: the tagged descriptor and the reference it came from."""

    reference: Reference
    descriptor: dict


def pull(ref: Reference, layout_path: str, tag: str, *, platform: Platform | None = None,
         creds: tuple[str, str] | None = None, tls_verify: bool = True,
         progress: Callable[[str], None] = _quiet) -> PullResult:
    """Pull ``ref`` into the layout at ``layout_path`` and tag it ``tag``.

    Index/manifest lists resolve to ``platform`` (default: host). Raises
    :class:`~ketch.image.errors.RegistryError`/``AuthError`` (network, HTTP),
    ``DigestError`` (content mismatch), ``ManifestError``, ``PlatformError`` or
    ``LayoutError``.
    """
    from ketch.image.registry.client import RegistryClient

    client = RegistryClient(ref, creds=creds, tls_verify=tls_verify)
    layout: Layout | None = None
    try:
        client.ping()
        body, content_type = client.get_manifest(ref.ref)
        digest = ref.digest or oci.sha256_digest(body)
        desc: dict = {"mediaType": content_type, "digest": digest, "size": len(body)}
        for _ in range(_MAX_INDEX_DEPTH):
            doc = oci.load_json(body, f"manifest {digest}")
            media_type = oci.document_media_type(doc, desc.get("mediaType"), f"manifest {digest}")
            desc["mediaType"] = media_type
            if media_type not in oci.INDEX_TYPES:
                break
            chosen = select_manifest(doc["manifests"], platform or host_platform())
            progress(f"Resolved {ref} to {chosen['digest']} "
                     f"({Platform(**_platform_fields(chosen))})")
            body, _ = client.get_manifest(chosen["digest"])
            oci.verify_bytes(body, chosen["digest"], chosen["size"])
            digest = chosen["digest"]
            desc = {k: v for k, v in chosen.items() if k in ("mediaType", "digest", "size",
                                                             "platform")}
        else:
            raise ManifestError(f"{ref}: image indexes nested too deeply")

        layout = Layout.create(layout_path)
        config_desc = doc["config"]
        if config_desc.get("mediaType") not in oci.CONFIG_TYPES:
            raise ManifestError(f"{ref}: config media type {config_desc.get('mediaType')!r} is "
                                "not an image config")
        for layer in doc["layers"]:
            if layer.get("mediaType") not in oci.LAYER_TYPES:
                raise ManifestError(f"{ref}: unsupported layer media type {layer.get('mediaType')!r}")
        for blob in [config_desc, *doc["layers"]]:
            _fetch_blob(client, layout, blob, progress)
        config = oci.load_json(layout.read_blob(config_desc["digest"], config_desc["size"]),
                               "image config")
        _check_config(config, doc)
        if "platform" not in desc and config.get("os") and config.get("architecture"):
            desc["platform"] = {k: config[k] for k in ("os", "architecture", "variant")
                                if config.get(k)}
        layout.write_blob(body, digest)
        stored = layout.set_tag(tag, desc)
        progress(f"Stored {digest} as {layout.path}:{tag}")
        return PullResult(reference=ref, descriptor=stored)
    finally:
        client.close()
        if layout is not None:
            layout.cleanup_tmp()


def _platform_fields(desc: dict) -> dict:
    p = desc.get("platform") or {}
    return {"os": p.get("os", "?"), "architecture": p.get("architecture", "?"),
            "variant": p.get("variant", "")}


def _fetch_blob(client: RegistryClient, layout: Layout, desc: dict,
                progress: Callable[[str], None]) -> None:
    digest, size = desc["digest"], desc["size"]
    if layout.has_blob(digest, size):
        progress(f"Blob {digest} already present")
        return
    progress(f"Copying blob {digest} ({size} bytes)")
    with layout.blob_writer(digest, size) as w:
        for chunk in client.blob_chunks(digest):
            w.write(chunk)
        w.commit()


def _check_config(config: dict, manifest: dict) -> None:
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or len(diff_ids) != len(manifest["layers"]):
        raise ManifestError("image config rootfs.diff_ids does not match the manifest's layers")
    for d in diff_ids:
        oci.validate_digest(d)

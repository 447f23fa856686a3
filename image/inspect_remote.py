"""``ketch-image inspect docker://REF``: a registry image's manifest and config, without
storing anything.

Fetches the manifest (distribution-spec "Pulling manifests"), resolves an index
to one platform (image-spec image-index.md) and fetches the config blob; every
document is verified against its digest and bounded to 4 MiB.
"""

from __future__ import annotations

from ketch.image import oci
from ketch.image.errors import ManifestError
from ketch.image.platforms import Platform, host_platform, select_manifest
from ketch.image.reference import Reference

_MAX_INDEX_DEPTH = 4


def inspect_remote(ref: Reference, *, platform: Platform | None = None, raw: bool = False,
                   config_only: bool = False, creds: tuple[str, str] | None = None,
                   tls_verify: bool = True, cert_dir: str | None = None) -> bytes | dict:
    """With ``raw``: the top document's bytes as served; with ``config_only``: the config
    blob's bytes; else ``{"descriptor", ["index", "manifestDescriptor",] "manifest",
    "config"}`` as ``inspect`` prints for a layout. Raises ``RegistryError``/``AuthError``,
    ``DigestError``, ``ManifestError`` or ``PlatformError``."""
    from ketch.image.registry.client import RegistryClient
    from ketch.image.transfer import RegistrySource

    client = RegistryClient(ref, creds=creds, tls_verify=tls_verify, cert_dir=cert_dir)
    try:
        client.ping()
        source = RegistrySource(ref, client)
        body, declared, digest = source.top()
        if raw:
            return body
        top = desc = {"mediaType": declared, "digest": digest, "size": len(body)}
        index = None
        for _ in range(_MAX_INDEX_DEPTH):
            doc = oci.load_json(body, f"manifest {desc['digest']}")
            desc["mediaType"] = oci.document_media_type(doc, desc["mediaType"],
                                                        f"manifest {desc['digest']}")
            if desc["mediaType"] not in oci.INDEX_TYPES:
                break
            index = index or doc
            candidates = [m for m in doc["manifests"]
                          if m.get("mediaType") in oci.MANIFEST_TYPES | oci.INDEX_TYPES]
            desc = dict(select_manifest(candidates, platform or host_platform()))
            body = source.document(desc)
        else:
            raise ManifestError(f"{ref}: image indexes nested too deeply")
        config_bytes = source.small_blob(doc["config"])
        if config_only:
            return config_bytes
        out: dict = {"descriptor": top}
        if index is not None:
            out["index"] = index
            out["manifestDescriptor"] = desc
        out["manifest"] = doc
        out["config"] = oci.load_json(config_bytes, "image config")
        return out
    finally:
        client.close()

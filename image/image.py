"""Resolve a tag in a layout to a manifest and its config.

Implements the walk image-spec describes from ``index.json`` (image-layout.md)
through an optional image index (image-index.md, platform selection) to an
image manifest (manifest.md) and its config (config.md), verifying every blob.
Docker schema2 manifests and manifest lists are accepted as the compatible
types listed in media-types.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from ketch.image import oci
from ketch.image.errors import ManifestError
from ketch.image.layout import Layout
from ketch.image.platforms import Platform, host_platform, select_manifest

# An index may point at another index; a short bound stops reference cycles.
_MAX_INDEX_DEPTH = 4


@dataclass
class ResolvedImage:
    """A manifest picked for one platform, with its parsed config.

    ``descriptor`` is the index.json entry for the tag, ``index`` the image
    index document when the tag names one (else None), ``manifest_descriptor``
    the descriptor of the chosen manifest.
    """

    descriptor: dict
    manifest_descriptor: dict
    manifest: dict
    config: dict
    index: dict | None = None


def resolve(layout: Layout, tag: str, platform: Platform | None = None) -> ResolvedImage:
    """Find ``tag`` in ``layout`` and follow it to a manifest and config.

    An index is resolved to ``platform`` (default: the host). Raises
    :class:`~ketch.image.errors.LayoutError` (missing tag/blob),
    :class:`~ketch.image.errors.DigestError` (corrupt blob),
    :class:`~ketch.image.errors.ManifestError` (bad document) or
    :class:`~ketch.image.errors.PlatformError`.
    """
    top = layout.lookup(tag)
    desc = top
    first_index = None
    for _ in range(_MAX_INDEX_DEPTH):
        doc = layout.read_document(desc, f"manifest {desc['digest']}")
        media_type = oci.document_media_type(doc, desc.get("mediaType"), f"manifest {desc['digest']}")
        if media_type in oci.INDEX_TYPES:
            first_index = first_index or doc
            desc = select_manifest(doc["manifests"], platform or host_platform())
            continue
        config_desc = doc["config"]
        if config_desc.get("mediaType") not in oci.CONFIG_TYPES:
            raise ManifestError(
                f"manifest {desc['digest']}: config media type {config_desc.get('mediaType')!r} "
                "is not an image config")
        config = layout.read_document(config_desc, f"config {config_desc['digest']}")
        return ResolvedImage(descriptor=top, manifest_descriptor=desc, manifest=doc,
                             config=config, index=first_index)
    raise ManifestError(f"tag {tag!r}: image indexes nested too deeply")

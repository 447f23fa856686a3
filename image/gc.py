"""Garbage collection of an OCI image layout: remove blobs nothing references.

image-layout.md allows unreferenced blobs; this removes them. Reachability
starts at every descriptor of ``index.json`` and follows image indexes
(``manifests``), manifests (``config``, ``layers``) and their ``subject``;
blobs of other media types are kept when referenced but not opened. Runs under
the layout's exclusive lock (:meth:`~ketch.image.layout.Layout.exclusive`),
so it waits for running pulls/imports/copies and never removes a blob one of
them has written but not yet tagged; partial blobs interrupted writers left in
``.ketch-tmp/`` are removed too. If a referenced document cannot be read, gc
refuses to delete anything.
"""

from __future__ import annotations

import os

from ketch.image import oci
from ketch.image.errors import DigestError, ImageError, LayoutError
from ketch.image.layout import Layout

_MAX_DEPTH = 8


def reachable(layout: Layout) -> set[str]:
    """Digests referenced from ``index.json``, transitively.

    Raises :class:`LayoutError` when a referenced manifest or index is missing
    or unreadable (gc must not guess what it references).
    """
    seen: set[str] = set()

    def walk(desc: dict, depth: int) -> None:
        oci.check_descriptor(desc)
        digest = desc["digest"]
        if digest in seen:
            return
        seen.add(digest)
        if desc["mediaType"] not in oci.MANIFEST_TYPES | oci.INDEX_TYPES:
            return
        if depth > _MAX_DEPTH:
            raise LayoutError(f"manifest {digest}: indexes nested too deeply")
        try:
            doc = layout.read_document(desc, f"manifest {digest}")
            media_type = oci.document_media_type(doc, desc["mediaType"], f"manifest {digest}")
        except ImageError as e:
            raise LayoutError(f"gc refused: {e}") from None
        children = doc["manifests"] if media_type in oci.INDEX_TYPES else \
            [doc["config"], *doc["layers"]]
        if isinstance(doc.get("subject"), dict):
            children = [*children, doc["subject"]]
        for child in children:
            walk(child, depth + 1)

    for desc in layout.index()["manifests"]:
        walk(desc, 0)
    return seen


def gc(path: str, dry_run: bool = False, partials: list[str] | None = None) -> list[str]:
    """Remove unreferenced blobs of the layout at ``path``; return their digests (sorted).

    ``dry_run`` only lists them. Files under ``blobs/`` whose names are not
    valid digests are left alone. The temp files of unfinished blob writes go too;
    their paths (relative to the layout) are appended to ``partials`` when given.
    Raises :class:`LayoutError`.
    """
    layout = Layout.open(path)
    removed: list[str] = []
    with layout.exclusive():
        keep = reachable(layout)
        for digest, p in layout.blob_digests():
            try:
                oci.parse_digest(digest)
            except DigestError:
                continue
            if digest in keep:
                continue
            removed.append(digest)
            if not dry_run:
                os.unlink(p)
        names = layout.partial_blobs() if dry_run else layout.remove_partial_blobs()
        if partials is not None:
            rel = os.path.relpath(layout.tmp_dir, layout.path)
            partials.extend(os.path.join(rel, n) for n in sorted(names))
    return sorted(removed)

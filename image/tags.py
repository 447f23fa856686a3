"""Tags: names in a layout's ``index.json`` and tag lists of registry repositories.

A layout tag is the ``org.opencontainers.image.ref.name`` annotation of an
``index.json`` descriptor (image-spec image-layout.md, annotations.md);
``tag`` adds one for the descriptor another tag names, ``untag`` removes one
(blobs stay until ``gc``). Registry tags come from distribution-spec
``GET /v2/<name>/tags/list`` with ``Link`` pagination (see
:meth:`~ketch.image.registry.client.RegistryClient.list_tags`).
"""

from __future__ import annotations

from ketch.image import oci
from ketch.image.layout import Layout
from ketch.image.reference import Reference, validate_ref_name


def tag(path: str, source_tag: str, new_tag: str) -> dict:
    """Tag the descriptor ``source_tag`` names as ``new_tag`` too (replacing an older
    ``new_tag``); returns the new entry. Raises :class:`LayoutError`/``ReferenceFormatError``."""
    validate_ref_name(new_tag)
    layout = Layout.open(path)
    layout.hold_read_lock()  # gc must not remove the blob between lookup and set_tag
    desc = layout.lookup(source_tag)
    return layout.set_tag(new_tag, desc)


def untag(path: str, name: str) -> dict:
    """Remove the tag ``name``; returns the removed descriptor. Raises :class:`LayoutError`."""
    return Layout.open(path).remove_tag(name)


def layout_tags(path: str) -> list[tuple[str, dict]]:
    """``(tag, descriptor)`` of every tagged index.json entry, in index order."""
    out = []
    for d in Layout.open(path).index()["manifests"]:
        name = (d.get("annotations") or {}).get(oci.ANNOTATION_REF_NAME)
        if isinstance(name, str):
            out.append((name, d))
    return out


def registry_tags(ref: Reference, *, creds: tuple[str, str] | None = None,
                  tls_verify: bool = True, cert_dir: str | None = None,
                  page_size: int | None = None) -> list[str]:
    """Every tag of ``ref``'s repository (all pages). Raises ``RegistryError``/``AuthError``."""
    from ketch.image.registry.client import RegistryClient

    client = RegistryClient(ref, creds=creds, tls_verify=tls_verify, cert_dir=cert_dir)
    try:
        return client.list_tags(page_size)
    finally:
        client.close()

"""``ketch-image copy SRC DST``: any of registry, layout and oci-archive to any other.

Locations are parsed by :mod:`.transports`; the copy itself is
:func:`~ketch.image.transfer.copy_image` (blobs before manifests, children
before indexes, byte for byte, every blob verified). Between two repositories
of one registry, blobs are mounted (distribution-spec "Mounting a blob from
another repository") instead of downloaded and uploaded again. Without
``all_platforms`` an index is resolved to one platform, as ``pull`` does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from ketch.image.errors import DigestError
from ketch.image.layout import Layout
from ketch.image.platforms import Platform
from ketch.image.reference import DEFAULT_TAG
from ketch.image.transfer import (
    DEFAULT_JOBS,
    CopyOptions,
    Destination,
    LayoutDestination,
    LayoutSource,
    RegistryDestination,
    RegistrySource,
    Source,
    copy_image,
)
from ketch.image.transports import (
    DOCKER,
    OCI_ARCHIVE,
    Location,
    extracted_archive,
    write_archive,
)


def _quiet(_msg: str) -> None:
    pass


@dataclass
class Access:
    """How to reach one side's registry: credentials, TLS verification, certs.d directory."""

    creds: tuple[str, str] | None = None
    tls_verify: bool = True
    cert_dir: str | None = None


def copy(src: Location, dst: Location, *, all_platforms: bool = False,
         platform: Platform | None = None, src_access: Access | None = None,
         dst_access: Access | None = None, jobs: int = DEFAULT_JOBS,
         allow_nondistributable: bool = False,
         progress: Callable[[str], None] = _quiet) -> dict:
    """Copy the image at ``src`` to ``dst``; return the descriptor of what was written.

    A layout/archive source without a tag must hold exactly one image; a
    layout/archive destination without a tag gets the source's tag (or
    ``latest``); a registry destination with only a digest must receive
    exactly that document. Raises the :class:`~ketch.image.errors.ImageError`
    subclasses of :func:`~ketch.image.transfer.copy_image`; a failure leaves
    an existing destination archive untouched. Non-distributable layers are not
    pushed to a registry ``dst`` unless ``allow_nondistributable``.
    """
    from ketch.image.registry.client import RegistryClient

    src_access, dst_access = src_access or Access(), dst_access or Access()
    options = CopyOptions(all_platforms=all_platforms, platform=platform, jobs=jobs,
                          progress=progress)
    with contextlib.ExitStack() as stack:
        source: Source
        if src.kind == DOCKER:
            assert src.ref is not None
            client = RegistryClient(src.ref, creds=src_access.creds,
                                    tls_verify=src_access.tls_verify,
                                    cert_dir=src_access.cert_dir)
            stack.callback(client.close)
            client.ping()
            source = RegistrySource(src.ref, client)
            src_tag = src.ref.tag
        else:
            path = src.path
            if src.kind == OCI_ARCHIVE:
                path = stack.enter_context(extracted_archive(src.path))
            src_tag = src.tag
            src_layout = Layout.open(path)
            stack.callback(src_layout.release)
            source = LayoutSource(src_layout, src_tag, name=f"{src.kind}:{src.path}")

        dest: Destination
        archive_dir = None
        if dst.kind == DOCKER:
            assert dst.ref is not None
            mount_from: tuple[str, ...] = ()
            if src.kind == DOCKER and src.ref is not None and \
                    src.ref.registry == dst.ref.registry:
                mount_from = (src.ref.repository,)
            client = RegistryClient(dst.ref, creds=dst_access.creds,
                                    tls_verify=dst_access.tls_verify,
                                    cert_dir=dst_access.cert_dir, actions=("pull", "push"),
                                    mount_from=mount_from)
            stack.callback(client.close)
            client.ping()
            dest = RegistryDestination(dst.ref, client, mount_from=mount_from,
                                       allow_nondistributable=allow_nondistributable)
            tag = dst.ref.tag  # None for a digest-only reference: pushed by digest
        else:
            path = dst.path
            if dst.kind == OCI_ARCHIVE:
                archive_dir = stack.enter_context(extracted_archive(dst.path, must_exist=False))
                path = archive_dir
            dest = stack.enter_context(LayoutDestination(path))
            tag = dst.tag or src_tag or DEFAULT_TAG
        stored = copy_image(source, dest, tag, options)
        if dst.kind == DOCKER and dst.ref is not None and dst.ref.digest and \
                dst.ref.digest != stored["digest"]:
            raise DigestError(f"{src} is {stored['digest']}, not {dst.ref.digest}")
        if archive_dir is not None:
            assert isinstance(dest, LayoutDestination)
            dest.close()
            write_archive(archive_dir, dst.path)
        progress(f"Copied {stored['digest']} to {dst}")
        return stored

"""Import a root filesystem (directory or tar) as a one-layer image.

Builds what image-spec requires for a minimal image: a reproducible gzip layer
(layer.md), an image config (config.md: ``architecture``/``os`` of the host in
Go names, ``rootfs.type = "layers"``, ``diff_ids``, ``history``, ``created``), an
image manifest (manifest.md) and the ``index.json`` tag plus ``oci-layout`` file
of image-layout.md. ``created`` honours ``SOURCE_DATE_EPOCH`` so a build can be
made bit-for-bit reproducible.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ketch.image import oci
from ketch.image.errors import ImageError
from ketch.image.layers.archive import entries_from_dir, entries_from_tar, write_layer
from ketch.image.layout import TMP_DIR, Layout
from ketch.image.platforms import host_platform


def _ignore(_msg: str) -> None:
    pass


@dataclass
class ImportOptions:
    """Optional image config fields for the imported image (config.md ``config``)."""

    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: list[str] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    author: str | None = None


def created_timestamp() -> str:
    """RFC 3339 UTC time: ``SOURCE_DATE_EPOCH`` if set, else now."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    try:
        t = int(epoch) if epoch else int(time.time())
    except ValueError:
        raise ImageError(f"invalid SOURCE_DATE_EPOCH {epoch!r}") from None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def import_rootfs(source: str, layout_path: str, tag: str, options: ImportOptions | None = None,
                  warn: Callable[[str], None] = _ignore) -> dict:
    """Import ``source`` (a directory or a tar file) into the layout, tagged ``tag``.

    Returns the tagged manifest descriptor. Raises :class:`ImageError` subclasses
    (``LayerError`` for unreadable/hostile tar input, ``LayoutError``). A failed
    import leaves nothing behind: a layout it created is removed again, and an
    existing one keeps only what it had (blobs are written before they are
    referenced, so the index never points at a missing one).
    """
    existed = os.path.lexists(layout_path)
    try:
        return _import_rootfs(source, layout_path, tag, options, warn)
    except BaseException:
        if not existed:
            shutil.rmtree(layout_path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(layout_path, TMP_DIR))  # only if empty
        raise


def _import_rootfs(source: str, layout_path: str, tag: str, options: ImportOptions | None,
                   warn: Callable[[str], None]) -> dict:
    options = options or ImportOptions()
    if os.path.isdir(source):
        entries = entries_from_dir(source, warn)
    elif os.path.isfile(source):
        entries = entries_from_tar(source, warn)
    else:
        raise ImageError(f"{source}: not a directory or tar file")
    layout = Layout.create(layout_path)
    with layout.blob_writer() as w:
        digests = write_layer(entries, w)  # type: ignore[arg-type]
        w.commit()
    created = created_timestamp()
    platform = host_platform()
    image_config: dict = {}
    if options.entrypoint is not None:
        image_config["Entrypoint"] = options.entrypoint
    if options.cmd is not None:
        image_config["Cmd"] = options.cmd
    if options.env:
        image_config["Env"] = options.env
    if options.workdir:
        image_config["WorkingDir"] = options.workdir
    if options.user:
        image_config["User"] = options.user
    if options.labels:
        image_config["Labels"] = options.labels
    config: dict = {
        "created": created,
        "architecture": platform.architecture,
        "os": platform.os,
        "config": image_config,
        "rootfs": {"type": "layers", "diff_ids": [digests.diff_id]},
        "history": [{"created": created,
                     "created_by": f"ketch-image import {os.path.basename(source.rstrip('/'))}"}],
    }
    if platform.variant:
        config["variant"] = platform.variant
    if options.author:
        config["author"] = options.author
    config_blob = oci.dumps(config)
    config_desc = {"mediaType": oci.OCI_CONFIG, **layout.write_blob(config_blob)}
    manifest = {
        "schemaVersion": 2,
        "mediaType": oci.OCI_MANIFEST,
        "config": config_desc,
        "layers": [{"mediaType": oci.OCI_LAYER_GZIP, "digest": digests.digest,
                    "size": digests.size}],
    }
    manifest_blob = oci.dumps(manifest)
    desc = {"mediaType": oci.OCI_MANIFEST, **layout.write_blob(manifest_blob),
            "platform": {k: v for k, v in (("architecture", platform.architecture),
                                           ("os", platform.os),
                                           ("variant", platform.variant)) if v}}
    stored = layout.set_tag(tag, desc)
    layout.cleanup_tmp()
    return stored

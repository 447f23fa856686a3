"""What ``ketch-image unpack`` remembers in a bundle, for a later ``repack``.

Two files beside ``config.json`` and ``rootfs/`` (runtime-spec bundle.md allows
other files in a bundle; runtimes ignore them):

- ``ketch-image.json``: ``{"version": 1, "manifest": <descriptor of the image
  manifest the rootfs was built from>, "layout": <absolute layout path>}``;
- ``ketch-image.mtree``: the mtree-like manifest of ``rootfs/`` right after the
  unpack (:mod:`ketch.image.layers.mtree`); ``"rootless": true`` when the
  owners live in ``user.rootlesscontainers`` xattrs (repack reads them back).

umoci keeps the same pair (``umoci.json`` and ``sha256_<digest>.mtree``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from ketch.image.errors import BundleError, ImageError
from ketch.image.layers import mtree

META_FILE = "ketch-image.json"
MTREE_FILE = "ketch-image.mtree"
ROOTFS = "rootfs"


@dataclass
class BundleMeta:
    """The recorded base image of a bundle: its manifest descriptor and the layout path."""

    manifest: dict
    layout: str
    rootless: bool = False


def _write_atomic(path: str, data: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def record(bundle: str, manifest_desc: dict, layout: str,
           snap: mtree.Manifest | None = None, rootless: bool = False) -> None:
    """Record ``bundle/rootfs`` (``snap``, else a fresh snapshot) with its manifest descriptor."""
    if snap is None:
        snap = mtree.snapshot(os.path.join(bundle, ROOTFS))
    _write_atomic(os.path.join(bundle, MTREE_FILE), mtree.dumps(snap))
    desc = {k: manifest_desc[k] for k in ("mediaType", "digest", "size") if k in manifest_desc}
    meta = {"version": 1, "manifest": desc, "layout": os.path.abspath(layout),
            "rootless": rootless}
    _write_atomic(os.path.join(bundle, META_FILE), json.dumps(meta, indent=2) + "\n")


def load(bundle: str) -> tuple[BundleMeta, mtree.Manifest]:
    """Read what :func:`record` wrote. Raises :class:`BundleError` if it is missing or bad."""
    try:
        with open(os.path.join(bundle, META_FILE)) as f:
            meta = json.load(f)
        with open(os.path.join(bundle, MTREE_FILE)) as f:
            text = f.read()
    except FileNotFoundError:
        raise BundleError(f"bundle {bundle} was not unpacked by ketch-image "
                          f"(no {META_FILE} / {MTREE_FILE})") from None
    except (OSError, ValueError) as e:
        raise BundleError(f"bundle {bundle}: cannot read {META_FILE}: {e}") from None
    if (not isinstance(meta, dict) or meta.get("version") != 1
            or not isinstance(meta.get("manifest"), dict)
            or not isinstance(meta["manifest"].get("digest"), str)):
        raise BundleError(f"bundle {bundle}: {META_FILE} is malformed")
    try:
        manifest = mtree.loads(text)
    except ImageError as e:
        raise BundleError(f"bundle {bundle}: {e}") from None
    return BundleMeta(manifest=meta["manifest"], layout=str(meta.get("layout", "")),
                      rootless=meta.get("rootless") is True), manifest

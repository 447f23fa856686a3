"""What ``ketch-image unpack`` remembers in a bundle, for a later ``repack``.

Two files beside ``config.json`` and ``rootfs/`` (runtime-spec bundle.md allows
other files in a bundle; runtimes ignore them):

- ``ketch-image.json``: ``{"version": 1, "manifest": <descriptor of the image
  manifest the rootfs was built from>, "layout": <absolute layout path>,
  "rootless": <bool>, "uid_map": [...], "gid_map": [...], "rootfs_device": <int>}``.
  ``"rootless": true`` when the owners live in ``user.rootlesscontainers``
  xattrs (repack reads them back). ``uid_map``/``gid_map`` are the
  ``--uid-map``/``--gid-map`` ranges of the unpack (``{"container", "host",
  "size"}`` each, as runtime-spec config-linux.md "User namespace mappings";
  empty without maps): the rootfs holds host ids and repack maps them back.
  ``rootfs_device`` is ``st_dev`` of ``rootfs/`` when recorded, so repack can
  tell a copied bundle (:func:`ketch.image.layers.mtree.compare`);
- ``ketch-image.mtree``: the mtree-like manifest of ``rootfs/`` right after the
  unpack (:mod:`ketch.image.layers.mtree`).

umoci keeps the same pair (``umoci.json``, whose ``map_options`` hold its maps,
and ``sha256_<digest>.mtree``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from ketch.image.errors import BundleError, ImageError
from ketch.image.layers import mtree
from ketch.image.layers.ownership import IdMap

META_FILE = "ketch-image.json"
MTREE_FILE = "ketch-image.mtree"
ROOTFS = "rootfs"


@dataclass
class BundleMeta:
    """The recorded base image of a bundle: its manifest descriptor, the layout path,
    how owners were laid down (``rootless``, ``uid_map``/``gid_map``) and the
    ``st_dev`` of ``rootfs/`` when recorded (None in bundles recorded before it was kept)."""

    manifest: dict
    layout: str
    rootless: bool = False
    uid_map: list[IdMap] = field(default_factory=list)
    gid_map: list[IdMap] = field(default_factory=list)
    rootfs_device: int | None = None


def _maps_to_json(maps: list[IdMap]) -> list[dict]:
    return [{"container": m.container, "host": m.host, "size": m.size} for m in maps]


def _maps_from_json(value: object, bundle: str, key: str) -> list[IdMap]:
    if value is None:
        return []
    out: list[IdMap] = []
    if isinstance(value, list):
        for item in value:
            if not isinstance(item, dict):
                break
            nums = [item.get(k) for k in ("container", "host", "size")]
            if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                       for n in nums) or nums[2] == 0:
                break
            out.append(IdMap(*nums))  # type: ignore[arg-type]
        else:
            return out
    raise BundleError(f"bundle {bundle}: {META_FILE} has a malformed {key}")


def _write_atomic(path: str, data: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def record(bundle: str, manifest_desc: dict, layout: str,
           snap: mtree.Manifest | None = None, rootless: bool = False,
           uid_map: list[IdMap] | None = None, gid_map: list[IdMap] | None = None) -> None:
    """Record ``bundle/rootfs`` (``snap``, else a fresh snapshot) with its manifest descriptor.

    ``rootless``, ``uid_map``, ``gid_map``: how the unpack laid owners down
    (see :class:`~ketch.image.unpack.UnpackOptions`). Raises OSError.
    """
    rootfs = os.path.join(bundle, ROOTFS)
    if snap is None:
        snap = mtree.snapshot(rootfs)
    _write_atomic(os.path.join(bundle, MTREE_FILE), mtree.dumps(snap))
    desc = {k: manifest_desc[k] for k in ("mediaType", "digest", "size") if k in manifest_desc}
    meta = {"version": 1, "manifest": desc, "layout": os.path.abspath(layout),
            "rootless": rootless, "uid_map": _maps_to_json(uid_map or []),
            "gid_map": _maps_to_json(gid_map or []),
            "rootfs_device": os.lstat(rootfs).st_dev}
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
    device = meta.get("rootfs_device")
    return BundleMeta(manifest=meta["manifest"], layout=str(meta.get("layout", "")),
                      rootless=meta.get("rootless") is True,
                      uid_map=_maps_from_json(meta.get("uid_map"), bundle, "uid_map"),
                      gid_map=_maps_from_json(meta.get("gid_map"), bundle, "gid_map"),
                      rootfs_device=device if isinstance(device, int) else None), manifest

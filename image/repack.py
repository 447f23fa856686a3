"""Repack a bundle: turn the changes made to its rootfs since unpack into one new layer.

image-spec layer.md "Change Types" and "Representing Changes": the rootfs is
compared with the mtree-like manifest ``ketch-image unpack`` recorded
(:mod:`ketch.image.bundlemeta`, :mod:`ketch.image.layers.mtree`); additions
and modifications (content, mode, owner, xattrs, link target) become entries,
deletions become whiteouts and replaced directories opaque whiteouts. The
layer is reproducible (:mod:`ketch.image.layers.archive`: sorted, PAX, numeric
ids, whole-second mtimes kept; with ``SOURCE_DATE_EPOCH`` set, later mtimes
are clamped to it and it is the ``created`` time), so the same rootfs and
base image give the same digests.

The image config (config.md) gets the new ``rootfs.diff_ids`` entry and a
``history`` entry, the manifest (manifest.md) the new layer descriptor, and
``LAYOUT:TAG`` points at the new manifest (image-layout.md). A repack with no
change adds no layer: only a ``history`` entry with ``empty_layer: true`` (as
Docker records a step that changed no file). By default the bundle is then
refreshed (its recorded manifest and base image become the new ones), so a
second repack stacks on the first; umoci needs ``--refresh-bundle`` for that.

Owners: a bundle unpacked with ``--uid-map``/``--gid-map`` holds host ids
(runtime-spec config-linux.md "User namespace mappings"); repack maps every
entry's ids back to container ids through the recorded maps and refuses an id
no range covers (:class:`~ketch.image.errors.BundleError` naming the path), as
umoci does. A rootless bundle takes its owners from the
``user.rootlesscontainers`` xattrs instead.

A copied bundle (new root inode or device) is diffed in the mtree module's
copied mode; the content of the candidate files is compared with the content
the recorded image's layers hold, read from the layout only then.
"""

from __future__ import annotations

import copy
import os
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from ketch.image import bundlemeta, oci
from ketch.image.errors import BundleError, DigestError, LayerError, LayoutError
from ketch.image.importer import created_timestamp
from ketch.image.layers import mtree
from ketch.image.layers.apply import OPAQUE_WHITEOUT, WHITEOUT_PREFIX
from ketch.image.layers.archive import (
    LayerDigests,
    _Entry,
    as_hardlink,
    entry_for_path,
    write_layer,
)
from ketch.image.layers.ownership import IdMap, map_to_container
from ketch.image.layers.stream import LayerStream, media_type_compression
from ketch.image.layout import Layout
from ketch.image.paths import clean_name


def _ignore(_msg: str) -> None:
    pass


@dataclass
class RepackResult:
    """``descriptor``: the tagged manifest; ``layer``: the new layer's digests (None when
    nothing changed); ``changes``: what the layer records."""

    descriptor: dict
    layer: LayerDigests | None
    changes: mtree.Changes


def source_date_epoch() -> int | None:
    """``SOURCE_DATE_EPOCH`` as an int, None when unset (invalid values raise via importer)."""
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if not value:
        return None
    created_timestamp()  # validates
    return int(value)


_CHUNK = 1 << 20
_DIR = "dir"  # marks a directory in unchanged_files' table


def _same_bytes(member: BinaryIO | None, path: str, size: int) -> bool:
    """True when the file at ``path`` holds exactly the ``size`` bytes ``member`` reads."""
    if member is None:
        return False
    try:
        with open(path, "rb") as f:
            left = size
            while left:
                chunk = member.read(min(_CHUNK, left))
                if not chunk or f.read(len(chunk)) != chunk:
                    return False
                left -= len(chunk)
            return not f.read(1)
    except OSError:
        return False


def _drop_below(table: dict[str, tuple[int, object]], prefix: str, layer: int) -> None:
    """Remove the entries under ``prefix`` (a ``"dir/"`` or ``""`` for all) that lower
    layers than ``layer`` put there."""
    for name in [n for n, (i, _) in table.items() if i < layer and n.startswith(prefix)]:
        del table[name]


def unchanged_files(layout: Layout, manifest: dict, config: dict, rootfs: str,
                    names: set[str]) -> set[str]:
    """Those of ``names`` (regular files, paths relative to ``rootfs``) whose content is
    byte for byte what the layers of image ``manifest`` leave at that path.

    Applies layer.md "Whiteouts" and "Opaque Whiteout" (to lower layers only),
    type changes and hardlinks (a link is unchanged when its target was and
    both names are still one inode; layer application replaces, never writes
    through, a file). Each blob is checked against its descriptor and its
    uncompressed stream against ``config``'s ``rootfs.diff_ids``. Raises
    :class:`LayerError`, :class:`DigestError`, :class:`LayoutError`.
    """
    layers = manifest.get("layers", [])
    diff_ids = (config.get("rootfs") or {}).get("diff_ids")
    if not isinstance(diff_ids, list) or len(diff_ids) != len(layers):
        raise LayerError("base image config rootfs.diff_ids does not match its layers")
    # path -> (layer index, _DIR | True (same bytes now) | False)
    table: dict[str, tuple[int, object]] = {}
    for index, (desc, diff_id) in enumerate(zip(layers, diff_ids, strict=True)):
        digest = desc["digest"]
        algorithm, _ = oci.parse_digest(diff_id)
        with layout.open_blob(digest) as blob, \
                LayerStream(blob, digest, desc.get("size"), algorithm, None,
                            media_type_compression(desc.get("mediaType", ""))) as stream:
            try:
                with tarfile.open(fileobj=stream, mode="r|") as tf:  # type: ignore[call-overload]
                    for m in tf:
                        _apply_member(table, index, tf, m, rootfs, names)
            except tarfile.ReadError as e:
                # Zero bytes is an empty changeset, as the applier reads it.
                if str(e) != "empty file":
                    raise LayerError(f"layer {digest}: {e}") from None
            except (tarfile.TarError, OSError, EOFError) as e:
                raise LayerError(f"layer {digest}: {e}") from None
            actual = stream.finish()
        if actual != diff_id:
            raise DigestError(f"layer {digest}: uncompressed digest {actual} does not match "
                              f"diff_id {diff_id}")
    return {n for n, (_, same) in table.items() if same is True}


def _same_inode(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _apply_member(table: dict[str, tuple[int, object]], index: int, tf: tarfile.TarFile,
                  m: tarfile.TarInfo, rootfs: str, names: set[str]) -> None:
    comps = clean_name(m.name)
    if not comps:
        return
    name = "/".join(comps)
    base = comps[-1]
    parent = "/".join(comps[:-1])
    if base == OPAQUE_WHITEOUT:
        _drop_below(table, parent + "/" if parent else "", index)
        return
    if base.startswith(WHITEOUT_PREFIX):
        gone = (parent + "/" if parent else "") + base[len(WHITEOUT_PREFIX):]
        prev = table.get(gone)
        if prev is not None and prev[0] < index:
            del table[gone]
            if prev[1] == _DIR:
                _drop_below(table, gone + "/", index)
        return
    prev = table.get(name)
    if prev is not None and prev[1] == _DIR and not m.isdir():
        _drop_below(table, name + "/", index + 1)
    if m.isreg():
        same = name in names and _same_bytes(tf.extractfile(m), os.path.join(rootfs, name),
                                             m.size)  # type: ignore[arg-type]
        table[name] = (index, same)
    elif m.islnk():
        target = "/".join(clean_name(m.linkname))
        t = table.get(target)
        same = (t is not None and t[1] is True and name in names
                and _same_inode(os.path.join(rootfs, name), os.path.join(rootfs, target)))
        table[name] = (index, same)
    elif m.isdir():
        table[name] = (index, _DIR)
    else:
        table[name] = (index, False)


def diff_bundle(bundle: str, layout: Layout | None = None) -> tuple[mtree.Changes,
                                                                     mtree.Manifest]:
    """Changes of ``bundle/rootfs`` since it was unpacked (or last repacked).

    Returns the changes and the current manifest. A copied rootfs (its root's
    inode or device is not the recorded one) is compared in the mtree
    module's copied mode, reading the recorded image's layers from
    ``layout`` (default: the layout recorded in the bundle). Raises
    :class:`BundleError` when the bundle has no recorded manifest, and the
    layout's errors when a copied bundle's base image cannot be read.
    """
    meta, old = bundlemeta.load(bundle)
    rootfs = os.path.join(bundle, bundlemeta.ROOTFS)
    if not os.path.isdir(rootfs) or os.path.islink(rootfs):
        raise BundleError(f"bundle {bundle} has no rootfs directory")
    new = mtree.snapshot(rootfs)
    copied = mtree.is_copy(old, new) or (
        meta.rootfs_device is not None and os.lstat(rootfs).st_dev != meta.rootfs_device)
    if not copied:
        return mtree.compare(old, new), new

    def same_content(names: list[str]) -> set[str]:
        source = layout if layout is not None else Layout.open(meta.layout)
        base_desc = meta.manifest
        base = source.read_document(base_desc, f"manifest {base_desc['digest']}")
        config = source.read_document(base["config"], f"config {base['config']['digest']}")
        return unchanged_files(source, base, config, rootfs, set(names))

    return mtree.compare(old, new, copied=True, same_content=same_content), new


def _sort_key(name: str) -> list[str]:
    # The opaque marker sorts right after its directory, before any sibling.
    comps = name.split("/") if name else []
    if comps and comps[-1] == OPAQUE_WHITEOUT:
        comps[-1] = ""
    return comps


def _marker(name: str, mtime: int) -> _Entry:
    info = tarfile.TarInfo(name)
    info.type = tarfile.REGTYPE
    info.mode = 0o600
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = mtime
    return _Entry(info)


def _to_container(maps: list[IdMap], host_id: int, kind: str, name: str) -> int:
    ident = map_to_container(maps, host_id)
    if ident is None:
        raise BundleError(f"{name or '.'}: host {kind} {host_id} cannot be mapped to a "
                          f"container {kind} (not in the bundle's --{kind}-map)")
    return ident


def layer_entries(rootfs: str, changes: mtree.Changes, *,
                  clamp: int | None = None, rootless: bool = False,
                  uid_map: list[IdMap] | None = None, gid_map: list[IdMap] | None = None,
                  warn: Callable[[str], None] = _ignore) -> Iterator[_Entry]:
    """Tar entries for ``changes`` in layer order (sorted; each hardlink after its target).

    ``clamp``: latest mtime allowed (``SOURCE_DATE_EPOCH``); whiteouts get it (or 0).
    ``rootless``: owners come from ``user.rootlesscontainers`` xattrs.
    ``uid_map``/``gid_map``: the unpack's ranges (container:host:size); each
    entry's host ids are mapped back to container ids (ignored when rootless).
    Raises :class:`BundleError` for a host id outside every range.
    """
    uids = [] if rootless else (uid_map or [])
    gids = [] if rootless else (gid_map or [])
    marker_time = clamp if clamp is not None else 0
    names: list[tuple[str, str | None]] = [(n, None) for n in changes.added + changes.modified]
    for n in changes.deleted:
        parent, _, base = n.rpartition("/")
        names.append((f"{parent}/{WHITEOUT_PREFIX}{base}" if parent
                      else f"{WHITEOUT_PREFIX}{base}", "whiteout"))
    for n in changes.opaque:
        names.append((f"{n}/{OPAQUE_WHITEOUT}" if n else OPAQUE_WHITEOUT, "whiteout"))
    names.sort(key=lambda item: _sort_key(item[0]))
    first_of_inode: dict[int, str] = {}
    for name, kind in names:
        if kind == "whiteout":
            yield _marker(name, marker_time)
            continue
        path = os.path.join(rootfs, name) if name else rootfs
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            warn(f"{name}: removed while repacking, skipped")
            continue
        entry = entry_for_path(path, name, st, warn, rootless=rootless)
        if entry is None:
            continue
        if uids:
            entry.info.uid = _to_container(uids, entry.info.uid, "uid", name)
        if gids:
            entry.info.gid = _to_container(gids, entry.info.gid, "gid", name)
        if clamp is not None and entry.info.mtime > clamp:
            entry.info.mtime = clamp
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            if st.st_ino in first_of_inode:
                entry = as_hardlink(entry, first_of_inode[st.st_ino])
            else:
                first_of_inode[st.st_ino] = name
        yield entry


def _layer_media_type(manifest: dict) -> str:
    return oci.DOCKER_LAYER if manifest.get("mediaType") == oci.DOCKER_MANIFEST \
        else oci.OCI_LAYER_GZIP


def repack(bundle: str, layout_path: str, tag: str, *, created_by: str | None = None,
           comment: str | None = None, refresh: bool = True,
           warn: Callable[[str], None] = _ignore) -> RepackResult:
    """Write the changes in ``bundle``'s rootfs as a new layer of image ``layout_path:tag``.

    The base image is the manifest recorded in the bundle; ``layout_path`` must
    hold it (normally the layout the bundle was unpacked from). ``created_by``
    and ``comment`` go into the new ``history`` entry. With ``refresh`` the
    bundle's record then points at the new image. Returns a
    :class:`RepackResult`. Raises :class:`BundleError` (bundle not unpacked by
    ketch-image), :class:`LayoutError` (base manifest missing from the
    layout), other ImageError subclasses for corrupt blobs. On failure the
    layout's index and the bundle are unchanged.
    """
    meta, _ = bundlemeta.load(bundle)
    layout = Layout.open(layout_path)
    layout.hold_read_lock()  # gc waits until the new image is tagged
    base_desc = meta.manifest
    if not layout.has_blob(base_desc["digest"], base_desc.get("size")):
        raise LayoutError(f"layout {layout.path} does not hold the bundle's base manifest "
                          f"{base_desc['digest']}")
    base = layout.read_document(base_desc, f"manifest {base_desc['digest']}")
    media_type = oci.document_media_type(base, base_desc.get("mediaType"),
                                         f"manifest {base_desc['digest']}")
    if media_type not in oci.MANIFEST_TYPES:
        raise LayoutError(f"bundle base {base_desc['digest']} is not an image manifest")
    config = layout.read_document(base["config"], f"config {base['config']['digest']}")
    clamp = source_date_epoch()
    created = created_timestamp()

    changes, current = diff_bundle(bundle, layout)
    rootfs = os.path.join(bundle, bundlemeta.ROOTFS)
    layer: LayerDigests | None = None
    manifest = copy.deepcopy(base)
    new_config = copy.deepcopy(config)
    history: dict = {"created": created, "created_by": created_by or "ketch-image repack"}
    if comment:
        history["comment"] = comment
    if changes.empty():
        history["empty_layer"] = True
    else:
        with layout.blob_writer() as w:
            layer = write_layer(layer_entries(rootfs, changes, clamp=clamp,
                                               rootless=meta.rootless, uid_map=meta.uid_map,
                                               gid_map=meta.gid_map, warn=warn),
                                w)  # type: ignore[arg-type]
            w.commit()
        manifest["layers"] = [*manifest.get("layers", []),
                              {"mediaType": _layer_media_type(base), "digest": layer.digest,
                               "size": layer.size}]
        rootfs_cfg = new_config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
        rootfs_cfg["diff_ids"] = [*rootfs_cfg.get("diff_ids", []), layer.diff_id]
    new_config["created"] = created
    new_config["history"] = [*new_config.get("history", []), history]
    config_desc = {"mediaType": base["config"]["mediaType"],
                   **layout.write_blob(oci.dumps(new_config))}
    manifest["config"] = config_desc
    manifest_blob = oci.dumps(manifest)
    desc: dict = {"mediaType": media_type, **layout.write_blob(manifest_blob)}
    platform = {k: new_config[k] for k in ("architecture", "os", "variant")
                if isinstance(new_config.get(k), str) and new_config[k]}
    if {"architecture", "os"} <= platform.keys():
        desc["platform"] = platform
    stored = layout.set_tag(tag, desc)
    layout.cleanup_tmp()
    if refresh:
        bundlemeta.record(bundle, desc, layout.path, snap=current, rootless=meta.rootless,
                          uid_map=meta.uid_map, gid_map=meta.gid_map)
    return RepackResult(descriptor=stored, layer=layer, changes=changes)

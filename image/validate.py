"""Check an OCI image layout: files, schemas, blobs and the references between them.

Implements the MUSTs of image-spec image-layout.md (``oci-layout`` with
``imageLayoutVersion``, ``index.json`` as an image index, ``blobs/<alg>/<encoded>``
whose content hashes to its name, every referenced blob present with the
descriptor's size) and validates each reachable document against Ketch's
schemas in ``spec-schemas/image`` (index-schema, manifest-schema, config-schema
for OCI configs; Docker schema2 documents are checked for shape only, as they
have no OCI schema). Descriptors of a media type Ketch does not know are
checked for presence only when their blob is stored (image-spec: unknown
media types MUST be ignored, and non-distributable layers may be absent).

An image config's ``rootfs.diff_ids`` must list one diff_id per layer of the
manifest (image-spec config.md); with ``verify_layers`` each stored layer is
also decompressed and its uncompressed digest compared with that entry, the
check unpack makes (a layout can be valid blob by blob and still unpack to an
error when a diff_id is wrong).
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from typing import Any

from ketch.image import oci
from ketch.image.errors import DigestError, ImageError
from ketch.image.layout import TMP_DIR, Layout

_CHUNK = 1 << 20
_MAX_DEPTH = 8
_NON_DISTRIBUTABLE = frozenset({oci.OCI_LAYER_ND, oci.OCI_LAYER_ND_GZIP, oci.OCI_LAYER_ND_ZSTD,
                                oci.DOCKER_FOREIGN_LAYER})


@dataclass
class Report:
    """``problems``: what makes the layout invalid; ``warnings``: what is odd but allowed;
    counts of blobs, tags and documents checked."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    blobs: int = 0
    tags: int = 0
    documents: int = 0
    verify_layers: bool = False
    layers_verified: int = 0

    @property
    def valid(self) -> bool:
        return not self.problems


def _schema_errors(name: str, doc: Any) -> list[str]:
    """Schema violations as ``$.path: message``, the first one per path only (a digest
    breaking both the general and the sha256 pattern is one problem)."""
    from ketch import schemas  # imports jsonschema: only validate pays for it

    seen: set[str] = set()
    out = []
    for err in schemas.errors("image", name, doc):
        where = err.split(": ", 1)[0]
        if where not in seen:
            seen.add(where)
            out.append(err)
    return out


def validate_layout(path: str, verify_layers: bool = False) -> Report:
    """Check the layout at ``path``; return a :class:`Report` (never raises for content
    problems, only :class:`~ketch.image.errors.LayoutError` when ``path`` is no layout).

    ``verify_layers``: also decompress every stored layer of every image and compare
    its digest with the config's ``rootfs.diff_ids`` entry (reads all layer bytes).
    """
    report = Report(verify_layers=verify_layers)
    layout = Layout.open(path)  # oci-layout present, parseable, version 1.0.0
    layout.hold_read_lock()  # a concurrent gc would make blobs look missing
    with open(os.path.join(layout.path, "oci-layout"), "rb") as f:
        for err in _schema_errors("oci-layout", json.loads(f.read(oci.MAX_DOCUMENT_SIZE))):
            report.problems.append(f"oci-layout: {err}")
    stored = _check_blob_files(layout, report)
    try:
        with open(os.path.join(layout.path, "index.json"), "rb") as f:
            index = oci.load_json(f.read(oci.MAX_LAYOUT_INDEX_SIZE + 1), "index.json",
                                  oci.MAX_LAYOUT_INDEX_SIZE)
    except (OSError, ImageError) as e:
        report.problems.append(f"index.json: {e}")
        return report
    entries = index.get("manifests") if isinstance(index.get("manifests"), list) else []
    # an entry that is no descriptor is reported once, by the walk (in plain words),
    # not again by the schema's patterns
    broken = {i for i, desc in enumerate(entries) if not _is_descriptor(desc)}
    report.problems += [f"index.json: {err}" for err in _schema_errors("layout-index", index)
                        if not any(_under(err, i) for i in broken)]
    seen: set[str] = set()
    for i, desc in enumerate(entries):
        if isinstance(desc, dict) and oci.ANNOTATION_REF_NAME in (desc.get("annotations") or {}):
            report.tags += 1
        _walk(layout, desc, f"index.json manifests[{i}]", stored, seen, report, 0)
    tmp = os.path.join(layout.path, TMP_DIR)
    if os.path.isdir(tmp) and os.listdir(tmp):
        report.warnings.append(f"{TMP_DIR}/ holds {len(os.listdir(tmp))} unfinished file(s) of "
                               "an interrupted operation (not blobs; `ketch-image gc` removes "
                               "them)")
    return report


def _under(schema_error: str, i: int) -> bool:
    return schema_error.startswith((f"$.manifests[{i}]:", f"$.manifests[{i}]."))


def _is_descriptor(desc: Any) -> bool:
    try:
        oci.check_descriptor(desc)
    except ImageError:
        return False
    return True


def _check_blob_files(layout: Layout, report: Report) -> dict[str, int]:
    """Hash every file under ``blobs/``; return ``digest -> size`` of the good ones."""
    stored: dict[str, int] = {}
    if not os.path.isdir(os.path.join(layout.path, "blobs")):
        report.problems.append("blobs/ directory is missing")
        return stored
    for digest, p in layout.blob_digests():
        rel = os.path.relpath(p, layout.path)
        st = os.lstat(p)
        if stat.S_ISDIR(st.st_mode) and ":" not in digest:
            continue  # an algorithm directory with nothing in it
        try:
            oci.parse_digest(digest)
        except DigestError as e:
            report.problems.append(f"{rel}: not a blob name ({e})")
            continue
        if not stat.S_ISREG(st.st_mode):
            report.problems.append(f"{rel}: not a regular file")
            continue
        v = oci.Verifier(digest, None)
        with open(p, "rb") as f:
            while chunk := f.read(_CHUNK):
                v.update(chunk)
        try:
            v.verify()
        except DigestError as e:
            report.problems.append(f"{rel}: {e}")
            continue
        stored[digest] = st.st_size
        report.blobs += 1
    return stored


def _walk(layout: Layout, desc: Any, where: str, stored: dict[str, int], seen: set[str],
          report: Report, depth: int) -> None:
    try:
        oci.check_descriptor(desc, where)
    except ImageError as e:
        report.problems.append(str(e) if where in str(e) else f"{where}: {e}")
        return
    for err in _schema_errors("descriptor", desc):
        report.problems.append(f"{where}: {err}")
    digest, size, media_type = desc["digest"], desc["size"], desc["mediaType"]
    known = oci.MANIFEST_TYPES | oci.INDEX_TYPES | oci.CONFIG_TYPES | oci.LAYER_TYPES
    if digest not in stored:
        if media_type in _NON_DISTRIBUTABLE:
            report.warnings.append(f"{where}: non-distributable blob {digest} not stored")
            return
        if media_type not in known:
            return  # unknown media types are ignored (image-spec descriptor.md)
        report.problems.append(f"{where}: blob {digest} is missing or corrupt")
        return
    if stored[digest] != size:
        report.problems.append(f"{where}: blob {digest} has size {stored[digest]}, "
                               f"descriptor says {size}")
        return
    if digest in seen or media_type not in oci.MANIFEST_TYPES | oci.INDEX_TYPES:
        return
    seen.add(digest)
    if depth >= _MAX_DEPTH:
        report.problems.append(f"{where}: indexes nested too deeply")
        return
    report.documents += 1
    try:
        doc = oci.load_json(layout.read_blob(digest, size), f"{where} ({digest})")
        media_type = oci.document_media_type(doc, media_type, f"{where} ({digest})")
    except ImageError as e:
        report.problems.append(str(e))
        return
    if media_type in oci.INDEX_TYPES:
        if media_type == oci.OCI_INDEX:
            report.problems += [f"{where} ({digest}): {e}" for e in _schema_errors("index", doc)]
        for i, child in enumerate(doc["manifests"]):
            _walk(layout, child, f"{where} -> manifests[{i}]", stored, seen, report, depth + 1)
        return
    if media_type == oci.OCI_MANIFEST:
        report.problems += [f"{where} ({digest}): {e}" for e in _schema_errors("manifest", doc)]
    config = _check_config(layout, doc["config"], f"{where} -> config", stored, report)
    for i, layer in enumerate(doc["layers"]):
        _walk(layout, layer, f"{where} -> layers[{i}]", stored, seen, report, depth + 1)
    if config is not None:
        _check_diff_ids(layout, doc["layers"], config, f"{where} -> config", stored, report)


def _check_config(layout: Layout, desc: dict, where: str, stored: dict[str, int],
                  report: Report) -> dict | None:
    """Check an image config; return it when it is a readable image config (not an
    artifact's) whose schema holds, else None."""
    digest = desc["digest"]
    if stored.get(digest) != desc["size"]:
        report.problems.append(f"{where}: blob {digest} is missing, corrupt or of another size")
        return None
    if desc["mediaType"] not in oci.CONFIG_TYPES:
        return None  # an artifact's config: any content is allowed
    report.documents += 1
    try:
        config = oci.load_json(layout.read_blob(digest, desc["size"]), f"{where} ({digest})")
    except ImageError as e:
        report.problems.append(str(e))
        return None
    if desc["mediaType"] == oci.OCI_CONFIG:
        errors = [f"{where} ({digest}): {e}" for e in _schema_errors("config", config)]
        report.problems += errors
        if errors:
            return None
    return config if isinstance(config, dict) else None


def _check_diff_ids(layout: Layout, layers: list, config: dict, where: str,
                    stored: dict[str, int], report: Report) -> None:
    """One ``rootfs.diff_ids`` entry per layer; with ``report.verify_layers``, each stored
    layer's uncompressed digest equal to its entry."""
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list):
        report.problems.append(f"{where}: no rootfs.diff_ids list")
        return
    if len(diff_ids) != len(layers):
        report.problems.append(f"{where}: rootfs.diff_ids has {len(diff_ids)} entries for "
                               f"{len(layers)} layers")
        return
    if not report.verify_layers:
        return
    for i, (desc, diff_id) in enumerate(zip(layers, diff_ids, strict=True)):
        if (not isinstance(desc, dict) or desc.get("mediaType") not in oci.LAYER_TYPES
                or stored.get(desc.get("digest", "")) != desc.get("size")):
            continue  # reported by the walk, absent non-distributable, or not a layer
        try:
            actual = _uncompressed_digest(layout, desc, diff_id)
        except (ImageError, OSError) as e:
            report.problems.append(f"{where}: layers[{i}] ({desc['digest']}): {e}")
            continue
        report.layers_verified += 1
        if actual != diff_id:
            report.problems.append(f"{where}: rootfs.diff_ids[{i}] is {diff_id} but "
                                   f"layers[{i}] ({desc['digest']}) uncompresses to {actual}")


def _uncompressed_digest(layout: Layout, desc: dict, diff_id: object) -> str:
    from ketch.image.layers.stream import LayerStream, media_type_compression

    try:
        algorithm = oci.parse_digest(diff_id)[0] if isinstance(diff_id, str) else "sha256"
    except DigestError:
        algorithm = "sha256"  # the schema check names the bad entry; still hash the layer
    path = layout.blob_path(desc["digest"])
    with open(path, "rb") as blob, LayerStream(
            blob, desc["digest"], desc["size"], algorithm, None,
            media_type_compression(desc["mediaType"])) as stream:
        return stream.finish()

"""Image-spec schemas: descriptor.md, manifest.md, image-index.md, config.md, image-layout.md.

Valid documents are written by hand the way umoci and skopeo write them; invalid
ones break one MUST of the spec each, and the test checks jsonschema blames the
right place.  When umoci is installed, a real layout it creates is checked too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import ketch.schemas

from . import samples


def _errors(name: str, doc: object) -> list[str]:
    return ketch.schemas.errors("image", name, doc)


@pytest.mark.parametrize("key", sorted(samples.VALID_IMAGE_DOCS), ids="/".join)
def test_valid_documents(key):
    name, _ = key
    assert _errors(name, samples.VALID_IMAGE_DOCS[key]()) == []


def _mutated(make: Callable[[], dict], change: Callable[[dict], object]) -> dict:
    doc = make()
    change(doc)
    return doc


INVALID = [
    # descriptor.md
    ("descriptor", "size-negative", lambda: {"mediaType": "a/b", "digest": samples.SHA_A, "size": -1},
     "$.size"),
    ("descriptor", "size-missing", lambda: {"mediaType": "a/b", "digest": samples.SHA_A}, "$"),
    ("descriptor", "size-string", lambda: {"mediaType": "a/b", "digest": samples.SHA_A, "size": "1"},
     "$.size"),
    ("descriptor", "digest-uppercase-sha256",
     lambda: {"mediaType": "a/b", "digest": "sha256:" + "A" * 64, "size": 1}, "$.digest"),
    ("descriptor", "digest-short-sha256",
     lambda: {"mediaType": "a/b", "digest": "sha256:abc", "size": 1}, "$.digest"),
    ("descriptor", "digest-sha512-length",
     lambda: {"mediaType": "a/b", "digest": "sha512:" + "a" * 64, "size": 1}, "$.digest"),
    ("descriptor", "digest-no-algorithm",
     lambda: {"mediaType": "a/b", "digest": "a" * 64, "size": 1}, "$.digest"),
    ("descriptor", "digest-bad-separator",
     lambda: {"mediaType": "a/b", "digest": "sha256+:abc", "size": 1}, "$.digest"),
    ("descriptor", "digest-trailing-newline",
     lambda: {"mediaType": "a/b", "digest": samples.SHA_A + "\n", "size": 1}, "$.digest"),
    ("descriptor", "mediatype-no-subtype",
     lambda: {"mediaType": "application", "digest": samples.SHA_A, "size": 1}, "$.mediaType"),
    ("descriptor", "mediatype-space",
     lambda: {"mediaType": "application/x y", "digest": samples.SHA_A, "size": 1}, "$.mediaType"),
    ("descriptor", "data-not-base64",
     lambda: {"mediaType": "a/b", "digest": samples.SHA_A, "size": 2, "data": "e30"}, "$.data"),
    ("descriptor", "url-relative",
     lambda: {"mediaType": "a/b", "digest": samples.SHA_A, "size": 2, "urls": ["/x"]}, "$.urls[0]"),
    ("descriptor", "annotation-not-string",
     lambda: {"mediaType": "a/b", "digest": samples.SHA_A, "size": 2, "annotations": {"a": 1}},
     "$.annotations.a"),
    ("descriptor", "platform-without-os",
     lambda: {"mediaType": "a/b", "digest": samples.SHA_A, "size": 2,
              "platform": {"architecture": "amd64"}}, "$.platform"),
    # manifest.md
    ("manifest", "schema-version-1",
     lambda: _mutated(samples.umoci_manifest, lambda d: d.update(schemaVersion=1)),
     "$.schemaVersion"),
    ("manifest", "schema-version-string",
     lambda: _mutated(samples.umoci_manifest, lambda d: d.update(schemaVersion="2")),
     "$.schemaVersion"),
    ("manifest", "docker-media-type",
     lambda: _mutated(samples.umoci_manifest, lambda d: d.update(
         mediaType="application/vnd.docker.distribution.manifest.v2+json")), "$.mediaType"),
    ("manifest", "no-config", lambda: _mutated(samples.umoci_manifest, lambda d: d.pop("config")),
     "$"),
    ("manifest", "no-layers", lambda: _mutated(samples.umoci_manifest, lambda d: d.pop("layers")),
     "$"),
    ("manifest", "layer-without-digest",
     lambda: _mutated(samples.umoci_manifest, lambda d: d["layers"][0].pop("digest")),
     "$.layers[0]"),
    ("manifest", "empty-config-without-artifact-type",
     lambda: _mutated(samples.artifact_manifest, lambda d: d.pop("artifactType")), "$"),
    ("manifest", "subject-not-descriptor",
     lambda: _mutated(samples.umoci_manifest, lambda d: d.update(subject={"digest": samples.SHA_A})),
     "$.subject"),
    # image-index.md
    ("index", "no-manifests", lambda: _mutated(samples.multiarch_index, lambda d: d.pop("manifests")),
     "$"),
    ("index", "manifest-media-type",
     lambda: _mutated(samples.multiarch_index, lambda d: d.update(
         mediaType="application/vnd.oci.image.manifest.v1+json")), "$.mediaType"),
    ("index", "platform-without-architecture",
     lambda: _mutated(samples.multiarch_index,
                      lambda d: d["manifests"][0]["platform"].pop("architecture")),
     "$.manifests[0].platform"),
    ("index", "os-features-not-array",
     lambda: _mutated(samples.multiarch_index,
                      lambda d: d["manifests"][1]["platform"].update({"os.features": "x"})),
     "$.manifests[1].platform['os.features']"),
    ("layout-index", "schema-version-missing",
     lambda: _mutated(samples.layout_index, lambda d: d.pop("schemaVersion")), "$"),
    ("layout-index", "ref-name-not-string",
     lambda: _mutated(samples.layout_index, lambda d: d["manifests"][0]["annotations"].update(
         {"org.opencontainers.image.ref.name": 1})),
     "$.manifests[0].annotations['org.opencontainers.image.ref.name']"),
    # config.md
    ("config", "no-rootfs", lambda: _mutated(samples.image_config, lambda d: d.pop("rootfs")), "$"),
    ("config", "no-os", lambda: _mutated(samples.image_config, lambda d: d.pop("os")), "$"),
    ("config", "rootfs-type", lambda: _mutated(samples.image_config,
                                               lambda d: d["rootfs"].update(type="tar")),
     "$.rootfs.type"),
    ("config", "diff-id-not-digest", lambda: _mutated(
        samples.image_config, lambda d: d["rootfs"]["diff_ids"].append("c6f988f4874bb0ad")),
     "$.rootfs.diff_ids[2]"),
    ("config", "created-not-rfc3339", lambda: _mutated(
        samples.image_config, lambda d: d.update(created="2015-10-31 22:22")), "$.created"),
    ("config", "env-without-equals", lambda: _mutated(
        samples.image_config, lambda d: d["config"]["Env"].append("FOO")), "$.config.Env[3]"),
    ("config", "cmd-string", lambda: _mutated(
        samples.image_config, lambda d: d["config"].update(Cmd="sh")), "$.config.Cmd"),
    ("config", "exposed-ports-list", lambda: _mutated(
        samples.image_config, lambda d: d["config"].update(ExposedPorts=["80/tcp"])),
     "$.config.ExposedPorts"),
    ("config", "label-not-string", lambda: _mutated(
        samples.image_config, lambda d: d["config"]["Labels"].update(x=1)), "$.config.Labels.x"),
    ("config", "history-empty-layer-string", lambda: _mutated(
        samples.image_config, lambda d: d["history"][1].update(empty_layer="true")),
     "$.history[1].empty_layer"),
    # image-layout.md
    ("oci-layout", "missing-version", lambda: {}, "$"),
    ("oci-layout", "version-not-semver", lambda: {"imageLayoutVersion": "1.0"},
     "$.imageLayoutVersion"),
    ("oci-layout", "not-object", lambda: ["1.0.0"], "$"),
]


@pytest.mark.parametrize(("name", "make", "where"), [(c[0], c[2], c[3]) for c in INVALID],
                         ids=[f"{c[0]}/{c[1]}" for c in INVALID])
def test_invalid_documents(name, make, where):
    errors = _errors(name, make())
    assert errors, "expected a schema violation"
    assert any(e.startswith(where + ": ") for e in errors), errors


def test_every_schema_is_a_valid_2020_12_schema():
    import jsonschema

    for kind in ketch.schemas.KINDS:
        for name in ketch.schemas.schema_names(kind):
            schema = ketch.schemas.load_schema(kind, name)
            assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
            jsonschema.Draft202012Validator.check_schema(schema)


def test_real_umoci_layout(tmp_path):
    if shutil.which("umoci") is None:
        pytest.skip("umoci is not installed")
    layout = tmp_path / "layout"
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "hello").write_text("hi\n")
    for cmd in (["init", "--layout", str(layout)], ["new", "--image", f"{layout}:v1"],
                ["insert", "--image", f"{layout}:v1", str(rootfs), "/"],
                ["config", "--image", f"{layout}:v1", "--config.cmd", "sh",
                 "--config.env", "A=B", "--config.exposedports", "80/tcp"]):
        subprocess.run(["umoci", *cmd], check=True, capture_output=True)
    assert _errors("oci-layout", json.loads((layout / "oci-layout").read_text())) == []
    assert _errors("layout-index", json.loads((layout / "index.json").read_text())) == []
    checked = set()
    for blob in Path(layout, "blobs", "sha256").iterdir():
        try:
            doc = json.loads(blob.read_bytes())
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue  # a layer
        name = "config" if "rootfs" in doc else "manifest" if "layers" in doc else "index"
        assert _errors(name, doc) == [], blob.name
        checked.add(name)
    assert {"config", "manifest"} <= checked

"""ketch-image unpack / inspect: bundle handling, verification of what is unpacked."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

from .helpers import D, F, L, LayoutBuilder, make_tar, run_ki, sha256


def _layout(tmp_path: Path) -> tuple[Path, LayoutBuilder]:
    b = LayoutBuilder(str(tmp_path / "layout"))
    b.tag("latest", b.image([[D("etc"), F("etc/hostname", b"ketch\n")]],
                            config={"Cmd": ["/bin/true"]}))
    return tmp_path / "layout", b


def test_default_tag_and_bundle_shape(tmp_path: Path) -> None:
    layout, _ = _layout(tmp_path)
    run_ki("unpack", str(layout), str(tmp_path / "bundle"))
    assert sorted(os.listdir(tmp_path / "bundle")) == [
        "config.json", "ketch-image.json", "ketch-image.mtree", "rootfs"]
    spec = json.loads((tmp_path / "bundle/config.json").read_text())
    assert spec["root"]["path"] == "rootfs" and spec["process"]["args"] == ["/bin/true"]
    assert (tmp_path / "bundle/rootfs/etc/hostname").read_text() == "ketch\n"


def test_non_empty_bundle_is_refused_and_left_alone(tmp_path: Path) -> None:
    layout, _ = _layout(tmp_path)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "mine").write_text("keep me")
    p = run_ki("unpack", f"{layout}:latest", str(bundle), check=False)
    assert p.returncode == 1 and "not empty" in p.stderr
    assert os.listdir(bundle) == ["mine"] and (bundle / "mine").read_text() == "keep me"


def test_existing_empty_bundle_is_kept_but_emptied_on_failure(tmp_path: Path) -> None:
    layout, b = _layout(tmp_path)
    b.tag("bad", b.image([[F("../escape", b"x")]]))
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    p = run_ki("unpack", f"{layout}:bad", str(bundle), check=False)
    assert p.returncode == 1
    assert bundle.is_dir() and os.listdir(bundle) == []
    run_ki("unpack", f"{layout}:latest", str(bundle))
    assert (bundle / "rootfs/etc/hostname").exists()


def test_diff_id_mismatch_is_refused(tmp_path: Path) -> None:
    b = LayoutBuilder(str(tmp_path / "layout"))
    tar = make_tar([F("f", b"x")])
    layer = b.blob(gzip.compress(tar), "application/vnd.oci.image.layer.v1.tar+gzip")
    cfg = b.blob(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": [sha256(b"something else")]}}).encode(),
        "application/vnd.oci.image.config.v1+json")
    manifest = b.blob(json.dumps({"schemaVersion": 2, "config": cfg, "layers": [layer],
                                  "mediaType": "application/vnd.oci.image.manifest.v1+json"})
                      .encode(), "application/vnd.oci.image.manifest.v1+json")
    b.tag("t", manifest)
    p = run_ki("unpack", f"{tmp_path / 'layout'}:t", str(tmp_path / "bundle"), check=False)
    assert p.returncode == 1 and "diff_id" in p.stderr
    assert not (tmp_path / "bundle").exists()


def test_corrupt_layer_blob_is_refused(tmp_path: Path) -> None:
    layout, _ = _layout(tmp_path)
    manifest = json.loads(run_ki("inspect", str(layout)).stdout)["manifest"]
    blob = layout / "blobs/sha256" / manifest["layers"][0]["digest"][7:]
    data = bytearray(blob.read_bytes())
    data[-5] ^= 0xFF
    blob.write_bytes(bytes(data))
    p = run_ki("unpack", str(layout), str(tmp_path / "bundle"), check=False)
    assert p.returncode == 1 and "digest mismatch" in p.stderr
    assert not (tmp_path / "bundle").exists()


def test_unknown_tag_and_missing_layout(tmp_path: Path) -> None:
    layout, _ = _layout(tmp_path)
    p = run_ki("unpack", f"{layout}:nope", str(tmp_path / "b"), check=False)
    assert p.returncode == 1 and "tag 'nope' not found" in p.stderr
    p = run_ki("inspect", f"{tmp_path / 'missing'}:x", check=False)
    assert p.returncode == 1 and "not an OCI image layout" in p.stderr
    assert not (tmp_path / "b").exists()


def test_inspect(tmp_path: Path) -> None:
    layout, _ = _layout(tmp_path)
    out = json.loads(run_ki("inspect", f"{layout}:latest").stdout)
    assert set(out) == {"descriptor", "manifest", "config"}
    assert out["descriptor"]["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    assert out["config"]["config"]["Cmd"] == ["/bin/true"]


def test_missing_working_dir_is_created_inside_the_rootfs(tmp_path: Path) -> None:
    b = LayoutBuilder(str(tmp_path / "layout"))
    b.tag("w", b.image([[D("srv"), L("escape", "../../..")]],
                       config={"WorkingDir": "/escape/srv/new/app"}))
    run_ki("unpack", f"{tmp_path / 'layout'}:w", str(tmp_path / "bundle"))
    made = tmp_path / "bundle/rootfs/srv/new/app"
    assert made.is_dir() and oct(made.stat().st_mode & 0o777) == "0o755"
    assert not (tmp_path / "srv").exists()
    spec = json.loads((tmp_path / "bundle/config.json").read_text())
    assert spec["process"]["cwd"] == "/escape/srv/new/app"


def test_missing_parents_of_the_bundle_are_created(tmp_path: Path) -> None:
    """``unpack L:T a/b/bundle`` with ``a/b`` missing creates them, as umoci does."""
    layout, _ = _layout(tmp_path)
    run_ki("unpack", str(layout), str(tmp_path / "a/b/bundle"))
    assert (tmp_path / "a/b/bundle/rootfs/etc/hostname").read_text() == "ketch\n"

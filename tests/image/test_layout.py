"""OCI image layout store: atomic blob writes, verified reads, tags in index.json."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ketch.image import oci
from ketch.image.errors import DigestError, LayoutError
from ketch.image.layout import Layout

from .helpers import check_layout, sha256


def test_create_and_reopen(tmp_path: Path) -> None:
    layout = Layout.create(str(tmp_path / "l"))
    assert json.loads((tmp_path / "l/oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    assert layout.index()["manifests"] == []
    Layout.open(str(tmp_path / "l"))
    check_layout(str(tmp_path / "l"))


def test_create_refuses_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d/file").write_text("x")
    with pytest.raises(LayoutError):
        Layout.create(str(tmp_path / "d"))
    with pytest.raises(LayoutError):
        Layout.open(str(tmp_path / "d"))


def test_blob_writer_verifies_before_commit(tmp_path: Path) -> None:
    layout = Layout.create(str(tmp_path / "l"))
    data = b"content"
    good = sha256(data)
    with pytest.raises(DigestError, match="mismatch"), layout.blob_writer(good, len(data)) as w:
        w.write(b"CONTENT")
        w.commit()
    with pytest.raises(DigestError, match="more data"), layout.blob_writer(good, len(data)) as w:
        w.write(data + b"x")
    assert not os.path.exists(layout.blob_path(good))
    assert os.listdir(layout.tmp_dir) == []  # temp files cleaned up
    with layout.blob_writer(good, len(data)) as w:
        w.write(data)
        assert w.commit() == {"digest": good, "size": len(data)}
    assert layout.read_blob(good, len(data)) == data
    check_layout(str(tmp_path / "l"))


def test_verified_reads_detect_corruption(tmp_path: Path) -> None:
    layout = Layout.create(str(tmp_path / "l"))
    desc = layout.write_blob(b"hello")
    with open(layout.blob_path(desc["digest"]), "wb") as f:
        f.write(b"HELLO")
    with pytest.raises(DigestError):
        layout.read_blob(desc["digest"], desc["size"])
    assert not layout.has_blob(desc["digest"], desc["size"])
    # write_blob repairs a corrupt copy
    layout.write_blob(b"hello")
    assert layout.read_blob(desc["digest"]) == b"hello"
    with pytest.raises(LayoutError, match="missing"):
        layout.read_blob(sha256(b"absent"))
    with pytest.raises(DigestError):
        layout.blob_path("sha256:../../../etc/passwd")


def test_tags_replace_older_entries(tmp_path: Path) -> None:
    layout = Layout.create(str(tmp_path / "l"))
    a = {"mediaType": oci.OCI_MANIFEST, **layout.write_blob(b'{"a":1}')}
    b = {"mediaType": oci.OCI_MANIFEST, **layout.write_blob(b'{"b":2}')}
    layout.set_tag("v1", a)
    layout.set_tag("v2", a)
    layout.set_tag("v1", {**b, "annotations": {"x": "y"}})
    tags = layout.tags()
    assert set(tags) == {"v1", "v2"}
    assert tags["v1"]["digest"] == b["digest"] and tags["v1"]["annotations"]["x"] == "y"
    assert tags["v2"]["digest"] == a["digest"]
    assert len(layout.index()["manifests"]) == 2
    with pytest.raises(LayoutError, match="not found"):
        layout.lookup("v3")
    with pytest.raises(LayoutError, match="not stored"):
        layout.set_tag("v3", {"mediaType": oci.OCI_MANIFEST, "digest": sha256(b"x"), "size": 1})

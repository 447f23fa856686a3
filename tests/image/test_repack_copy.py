"""repack of a copied bundle (``cp -a``): inode numbers and ctimes all moved.

mtree.py's copied mode: directories by metadata, regular files by metadata and
then by content against the recorded image's layers, so a copy with no change
adds no layer and a copy with one change gives just that change. The in-place
compare (test_repack.py) is unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from ketch.image import bundlemeta
from ketch.image.layers import mtree
from ketch.image.repack import diff_bundle

from .helpers import LayoutBuilder, layout_tags, run_ki
from .test_repack import BASE, TOP, UPPER, _user_xattrs_supported, assert_same_tree, make_changes


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    path = tmp_path / "layout"
    b = LayoutBuilder(str(path))
    b.tag("base", b.image([BASE]))
    # Whiteouts, an opaque directory, type changes and hardlinks across layers.
    b.tag("three", b.image([BASE, UPPER, TOP]))
    # An empty changeset of zero bytes between layers, uncompressed blobs.
    b.tag("plain", b.image([BASE, b"", UPPER], compress=False))
    return path


def _copy(src: Path, dst: Path) -> Path:
    subprocess.run(["cp", "-a", str(src), str(dst)], check=True)
    assert os.lstat(dst / "rootfs").st_ino != os.lstat(src / "rootfs").st_ino
    return dst / "rootfs"


def _layers(layout: Path, tag: str) -> list[dict]:
    digest = layout_tags(str(layout))[tag]["digest"]
    return json.loads((layout / "blobs/sha256" / digest[7:]).read_text())["layers"]


def _names(layout: Path, tag: str) -> set[str]:
    blob = layout / "blobs/sha256" / _layers(layout, tag)[-1]["digest"][7:]
    with tarfile.open(blob, "r:gz") as tf:
        return {m.name.rstrip("/") or "." for m in tf.getmembers()}


@pytest.mark.parametrize(("tag", "flags"), [("base", []), ("three", []), ("plain", []),
                                             ("three", ["--rootless"]),
                                             ("base", ["--uid-map", "0:100000:65536",
                                                       "--gid-map", "0:100000:65536"])])
def test_copy_without_change_adds_no_layer(layout: Path, tmp_path: Path, tag: str,
                                           flags: list[str]) -> None:
    run_ki("unpack", *flags, f"{layout}:{tag}", str(tmp_path / "b"))
    _copy(tmp_path / "b", tmp_path / "copy")
    p = run_ki("repack", str(tmp_path / "copy"), f"{layout}:same")
    assert "no layer added" in p.stderr
    assert _layers(layout, "same") == _layers(layout, tag)
    # The refreshed record names the copy's inodes: the next diff is in-place again.
    _, recorded = bundlemeta.load(str(tmp_path / "copy"))
    assert recorded == mtree.snapshot(str(tmp_path / "copy/rootfs"))


def test_copy_with_same_size_and_mtime_content_change(layout: Path, tmp_path: Path) -> None:
    run_ki("unpack", f"{layout}:base", str(tmp_path / "b"))
    rootfs = _copy(tmp_path / "b", tmp_path / "copy")
    (rootfs / "etc/motd").write_bytes(b"HELLO\n")  # same size as "hello\n"
    subprocess.run(["touch", "-r", str(tmp_path / "b/rootfs/etc/motd"), str(rootfs / "etc/motd")],
                   check=True)
    run_ki("repack", str(tmp_path / "copy"), f"{layout}:one")
    assert _names(layout, "one") == {"etc/motd"}


def test_copy_with_a_hardlinked_content_change(layout: Path, tmp_path: Path) -> None:
    run_ki("unpack", f"{layout}:base", str(tmp_path / "b"))
    rootfs = _copy(tmp_path / "b", tmp_path / "copy")
    st = os.lstat(rootfs / "data/a")
    with open(rootfs / "data/a", "r+b") as f:
        f.write(b"A")
    os.utime(rootfs / "data/a", ns=(st.st_atime_ns, st.st_mtime_ns))
    run_ki("repack", str(tmp_path / "copy"), f"{layout}:link")
    assert _names(layout, "link") == {"data/a", "data/a-link"}  # the group travels whole


def test_copy_with_a_deleted_file(layout: Path, tmp_path: Path) -> None:
    run_ki("unpack", f"{layout}:base", str(tmp_path / "b"))
    rootfs = _copy(tmp_path / "b", tmp_path / "copy")
    (rootfs / "etc/issue").unlink()
    # Deleting moved the directory's mtime; put it back so only the whiteout remains.
    subprocess.run(["touch", "-r", str(tmp_path / "b/rootfs/etc"), str(rootfs / "etc")],
                   check=True)
    run_ki("repack", str(tmp_path / "copy"), f"{layout}:del")
    assert _names(layout, "del") == {"etc/.wh.issue"}


def test_copy_of_a_replaced_directory_gives_the_same_tree(layout: Path,
                                                         tmp_path: Path) -> None:
    # Copied mode cannot tell "replaced" from "changed" directories: whiteouts instead
    # of an opaque marker, and the tree unpacked from the result is still the same.
    run_ki("unpack", f"{layout}:base", str(tmp_path / "b"))
    rootfs = _copy(tmp_path / "b", tmp_path / "copy")
    make_changes(rootfs, _user_xattrs_supported(tmp_path))
    changes, _ = diff_bundle(str(tmp_path / "copy"))
    assert changes.opaque == []
    assert "etc/motd" in changes.modified  # same size and mtime, new content
    run_ki("repack", str(tmp_path / "copy"), f"{layout}:changed")
    run_ki("unpack", f"{layout}:changed", str(tmp_path / "out"))
    assert_same_tree(rootfs, tmp_path / "out/rootfs")


def test_copy_on_another_filesystem(layout: Path, tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on another filesystem")
    run_ki("unpack", f"{layout}:base", str(tmp_path / "b"))
    dst = shm / f"ketch-copy-{os.getpid()}-{tmp_path.name}"
    try:
        rootfs = _copy(tmp_path / "b", dst)
        (rootfs / "etc/new").write_bytes(b"n")
        run_ki("repack", str(dst), f"{layout}:shm")
        assert _names(layout, "shm") == {"etc", "etc/new"}
    finally:
        shutil.rmtree(dst, ignore_errors=True)


def test_in_place_still_uses_inodes(layout: Path, tmp_path: Path) -> None:
    # In place, a same-metadata rewrite through a new inode is still a modification
    # (no content is read), and a re-created directory is still opaque.
    run_ki("unpack", f"{layout}:base", str(tmp_path / "b"))
    rootfs = tmp_path / "b/rootfs"
    st = os.lstat(rootfs / "etc/motd")
    os.rename(rootfs / "etc/motd", rootfs / "etc/motd.old")
    shutil.copy2(rootfs / "etc/motd.old", rootfs / "etc/motd")
    os.unlink(rootfs / "etc/motd.old")
    os.utime(rootfs / "etc", ns=(st.st_atime_ns, os.lstat(tmp_path / "b/rootfs/etc").st_mtime_ns))
    shutil.rmtree(rootfs / "replace")
    (rootfs / "replace").mkdir(0o755)
    changes, _ = diff_bundle(str(tmp_path / "b"))
    assert "etc/motd" in changes.modified
    assert changes.opaque == ["replace"]

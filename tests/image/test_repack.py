"""ketch-image repack: changes since unpack become one reproducible layer.

Round trips (unpack -> change -> repack -> unpack elsewhere gives the changed
tree exactly), the documented no-change behaviour, reproducibility, stacking,
errors that leave the layout alone, and a differential against ``umoci repack``.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ketch.image import bundlemeta
from ketch.image.layers import mtree
from ketch.image.repack import diff_bundle, repack

from .helpers import (
    CHR,
    FIFO,
    MTIME,
    WH,
    D,
    F,
    H,
    L,
    LayoutBuilder,
    layout_tags,
    listing,
    run_ki,
)

BASE = [
    D("./", 0o755),
    D("bin"), F("bin/tool", b"#!/bin/sh\necho v1\n", 0o4755), L("bin/alias", "tool"),
    D("etc"), F("etc/motd", b"hello\n"), F("etc/issue", b"ketch\n", 0o644),
    F("etc/shadow", b"root:*:\n", 0o640, gid=42),
    D("data", 0o750, uid=1000, gid=1000), F("data/a", b"a" * 100, uid=1000, gid=1000),
    H("data/a-link", "data/a"), F("data/b", b"b"), F("data/c", b"c"),
    D("gone"), D("gone/deep"), F("gone/deep/f", b"f"),
    D("replace"), F("replace/old1", b"1"), D("replace/sub"), F("replace/sub/old2", b"2"),
    D("typechange"), F("typechange/file", b"f"), D("typechange/dir"), F("typechange/dir/x", b"x"),
    L("typechange/link", "/etc"),
    D("dev"), CHR("dev/null", 1, 3), FIFO("dev/pipe", 0o620),
]


def _user_xattrs_supported(path: Path) -> bool:
    probe = path / "xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
        return True
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return False
        raise
    finally:
        probe.unlink()


def make_changes(rootfs: Path, xattrs: bool) -> None:
    """One change of every kind repack must record."""
    (rootfs / "etc/new.conf").write_bytes(b"added\n")                     # added file
    (rootfs / "newdir/sub").mkdir(parents=True)                           # added dirs
    (rootfs / "newdir/sub/f").write_bytes(b"deep add")
    st = os.lstat(rootfs / "etc/motd")                                    # same size + mtime,
    (rootfs / "etc/motd").write_bytes(b"HELLO\n")                         # new content
    os.utime(rootfs / "etc/motd", ns=(st.st_atime_ns, st.st_mtime_ns))
    os.chmod(rootfs / "etc/issue", 0o600)                                 # mode
    os.chown(rootfs / "etc/shadow", 0, 7)                                 # owner
    (rootfs / "bin/alias").unlink()                                       # link target
    os.symlink("/bin/tool", rootfs / "bin/alias")
    (rootfs / "data/b").unlink()                                          # deleted file
    shutil.rmtree(rootfs / "gone")                                        # deleted tree
    shutil.rmtree(rootfs / "replace")                                     # replaced dir
    (rootfs / "replace").mkdir(0o711)
    (rootfs / "replace/new").write_bytes(b"only me")
    (rootfs / "typechange/file").unlink()                                 # file -> dir
    (rootfs / "typechange/file").mkdir()
    shutil.rmtree(rootfs / "typechange/dir")                              # dir -> symlink
    os.symlink("../etc", rootfs / "typechange/dir")
    (rootfs / "typechange/link").unlink()                                 # symlink -> file
    (rootfs / "typechange/link").write_bytes(b"was a link")
    os.link(rootfs / "data/c", rootfs / "data/c-link")                    # new hardlink
    with open(rootfs / "data/a", "r+b") as f:                             # hardlinked content
        f.write(b"A")
    os.mkfifo(rootfs / "dev/fifo2", 0o600)                                # new fifo
    if xattrs:
        os.setxattr(rootfs / "etc/issue", "user.note", b"v2")            # xattr


def tree(root: Path) -> dict:
    """listing() plus whole-second mtimes and user xattrs (what a layer carries)."""
    out = {}
    for path, row in listing(str(root)).items():
        p = root / path
        st = os.lstat(p)
        xa = {}
        if not os.path.islink(p):
            for n in os.listxattr(p):
                if n.startswith("user."):
                    xa[n] = os.getxattr(p, n)
        mtime = None if row[0] == "dir" and path == "." else int(st.st_mtime)
        out[path] = (*row, mtime, tuple(sorted(xa.items())))
    return out


def assert_same_tree(a: Path, b: Path) -> None:
    ta, tb = tree(a), tree(b)
    only_a, only_b = sorted(set(ta) - set(tb)), sorted(set(tb) - set(ta))
    differ = {p: (ta[p], tb[p]) for p in ta.keys() & tb.keys() if ta[p] != tb[p]}
    assert not only_a and not only_b and not differ, (
        f"only in {a}: {only_a}\nonly in {b}: {only_b}\ndiffer: {differ}")


@pytest.fixture
def base_layout(tmp_path: Path) -> Path:
    layout = tmp_path / "layout"
    b = LayoutBuilder(str(layout))
    b.tag("base", b.image([BASE], config={"Cmd": ["/bin/tool"]}))
    return layout


def test_round_trip_every_change_kind(base_layout: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    run_ki("unpack", f"{base_layout}:base", str(bundle))
    xattrs = _user_xattrs_supported(tmp_path)
    make_changes(bundle / "rootfs", xattrs)
    changes, _ = diff_bundle(str(bundle))
    assert changes.deleted == ["data/b", "gone"]
    assert changes.opaque == ["replace"]
    assert {"etc/motd", "etc/issue", "etc/shadow", "bin/alias", "data/a", "data/a-link",
            "data/c", "data/c-link"} <= set(changes.modified) | set(changes.added)
    digest = run_ki("repack", str(bundle), f"{base_layout}:next").stdout.strip()
    assert layout_tags(str(base_layout))["next"]["digest"] == digest
    out = tmp_path / "again"
    run_ki("unpack", f"{base_layout}:next", str(out))
    assert_same_tree(bundle / "rootfs", out / "rootfs")
    inspect = json.loads(run_ki("inspect", f"{base_layout}:next").stdout)
    assert len(inspect["manifest"]["layers"]) == 2
    assert len(inspect["config"]["rootfs"]["diff_ids"]) == 2
    assert inspect["config"]["history"][-1]["created_by"] == "ketch-image repack"
    assert inspect["config"]["config"]["Cmd"] == ["/bin/tool"]
    # The layer has whiteouts for the deletions and an opaque marker for the replaced dir.
    blob = base_layout / "blobs/sha256" / inspect["manifest"]["layers"][-1]["digest"][7:]
    names = subprocess.run(["tar", "-tzf", str(blob)], capture_output=True, text=True,
                           check=True).stdout.split()
    assert {"data/.wh.b", ".wh.gone", "replace/.wh..wh..opq", "replace/new"} <= set(names)
    assert "gone/deep/f" not in names and not any(n.startswith("replace/sub") for n in names)
    # unchanged files are not in the layer
    assert "bin/tool" not in names and "dev/null" not in names


def _with_xattr(entry, name: str, value: str):
    entry.info.pax_headers = {f"SCHILY.xattr.{name}": value}
    return entry


# A second and third layer that touch files of BASE every way an applier can: replaced,
# hardlinked to (ctime and nlink of the target move), a link sibling whited out, turned
# into a directory, an opaque directory, owner and mode changes, xattrs, setuid.
UPPER = [
    D("etc"), F("etc/motd", b"replaced\n"), H("etc/motd-link", "etc/motd"),
    F("etc/new", b"n", 0o2755), F("etc/owned", b"o", uid=5, gid=6),
    D("data", 0o750, uid=1000, gid=1000), WH("data/.wh.a-link"), D("data/c"),
    D("replace"), WH("replace/.wh..wh..opq"), F("replace/fresh", b"fresh"),
    H("bin/tool-link", "bin/tool"),
]
TOP = [D("etc"), H("etc/issue", "etc/new"), F("etc/motd-link", b"unlinked again")]


@pytest.mark.parametrize("rootless", [False, True])
def test_recorded_manifest_is_a_fresh_walk(tmp_path: Path, rootless: bool) -> None:
    # unpack records regular files from the extraction itself (LayerApplier's records,
    # not an lstat each); what it writes must be exactly what a walk of the rootfs gives.
    layout = tmp_path / "layout"
    b = LayoutBuilder(str(layout))
    xattrs = _user_xattrs_supported(tmp_path)
    upper = [*UPPER, _with_xattr(F("etc/noted", b"x"), "user.note", "v")] if xattrs else UPPER
    b.tag("t", b.image([BASE, upper, TOP]))
    bundle = tmp_path / "bundle"
    run_ki("unpack", *(["--rootless"] if rootless else []), f"{layout}:t", str(bundle))
    _, recorded = bundlemeta.load(str(bundle))
    fresh = mtree.snapshot(str(bundle / "rootfs"))
    assert recorded == fresh
    assert os.lstat(bundle / "rootfs/etc/new").st_nlink == 2
    assert (bundle / "rootfs/etc/motd-link").read_bytes() == b"unlinked again"
    changes, _ = diff_bundle(str(bundle))
    assert changes.empty()


def test_no_change_adds_no_layer_and_is_reproducible(base_layout: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(MTIME))
    bundle = tmp_path / "bundle"
    run_ki("unpack", f"{base_layout}:base", str(bundle))
    base = json.loads(run_ki("inspect", f"{base_layout}:base").stdout)
    p = run_ki("repack", "--no-refresh", str(bundle), f"{base_layout}:same")
    assert "no layer added" in p.stderr
    again = run_ki("repack", str(bundle), f"{base_layout}:same2").stdout.strip()
    assert again == p.stdout.strip()  # same input, same digest
    out = json.loads(run_ki("inspect", f"{base_layout}:same").stdout)
    assert out["manifest"]["layers"] == base["manifest"]["layers"]
    assert out["config"]["rootfs"] == base["config"]["rootfs"]
    assert out["config"]["history"][-1] == {"created": "2020-09-13T12:26:40Z",
                                            "created_by": "ketch-image repack",
                                            "empty_layer": True}


def test_same_changes_give_the_same_digests(base_layout: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # Two bundles changed independently (different inodes, ctimes, wall-clock mtimes):
    # with SOURCE_DATE_EPOCH the layers, configs and manifests are identical.
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(MTIME + 10))
    xattrs = _user_xattrs_supported(tmp_path)
    digests = []
    for i in range(2):
        bundle = tmp_path / f"bundle{i}"
        run_ki("unpack", f"{base_layout}:base", str(bundle))
        make_changes(bundle / "rootfs", xattrs)
        result = repack(str(bundle), str(base_layout), f"r{i}", created_by="RUN make-changes")
        assert result.layer is not None
        digests.append((result.layer.digest, result.layer.diff_id,
                        result.descriptor["digest"]))
    assert digests[0] == digests[1]


def test_repacks_stack_and_no_refresh_rediffs(base_layout: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    run_ki("unpack", f"{base_layout}:base", str(bundle))
    rootfs = bundle / "rootfs"
    (rootfs / "one").write_bytes(b"1")
    run_ki("repack", str(bundle), f"{base_layout}:s1")
    (rootfs / "two").write_bytes(b"2")
    (rootfs / "etc/motd").unlink()
    run_ki("repack", str(bundle), f"{base_layout}:s2")
    s2 = json.loads(run_ki("inspect", f"{base_layout}:s2").stdout)
    assert len(s2["manifest"]["layers"]) == 3
    out = tmp_path / "out"
    run_ki("unpack", f"{base_layout}:s2", str(out))
    assert_same_tree(rootfs, out / "rootfs")
    # --no-refresh: the bundle keeps diffing against s2, so a second repack replaces
    # (does not stack on) the first one.
    (rootfs / "three").write_bytes(b"3")
    run_ki("repack", "--no-refresh", str(bundle), f"{base_layout}:s3")
    (rootfs / "four").write_bytes(b"4")
    run_ki("repack", "--no-refresh", str(bundle), f"{base_layout}:s3")
    s3 = json.loads(run_ki("inspect", f"{base_layout}:s3").stdout)
    assert len(s3["manifest"]["layers"]) == 4
    out3 = tmp_path / "out3"
    run_ki("unpack", f"{base_layout}:s3", str(out3))
    assert_same_tree(rootfs, out3 / "rootfs")


def test_repack_of_a_foreign_bundle_is_refused(base_layout: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    index_before = (base_layout / "index.json").read_bytes()
    p = run_ki("repack", str(bundle), f"{base_layout}:x", check=False)
    assert p.returncode == 1 and "not unpacked by ketch-image" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert (base_layout / "index.json").read_bytes() == index_before


def test_repack_into_a_layout_without_the_base_is_refused(base_layout: Path,
                                                           tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    run_ki("unpack", f"{base_layout}:base", str(bundle))
    (bundle / "rootfs/new").write_bytes(b"n")
    other = tmp_path / "other"
    LayoutBuilder(str(other))
    index_before = (other / "index.json").read_bytes()
    mtree_before = (bundle / "ketch-image.mtree").read_bytes()
    p = run_ki("repack", str(bundle), f"{other}:x", check=False)
    assert p.returncode == 1 and "does not hold the bundle's base manifest" in p.stderr
    assert (other / "index.json").read_bytes() == index_before
    assert (bundle / "ketch-image.mtree").read_bytes() == mtree_before
    assert os.listdir(other / "blobs/sha256") == []


def test_differential_with_umoci_repack(debian_tools: None, base_layout: Path,
                                        tmp_path: Path) -> None:
    """The same changes repacked by umoci and by ketch-image unpack (with umoci) to the
    same tree."""
    shutil.copytree(base_layout, tmp_path / "ulayout", symlinks=True)
    ulayout = tmp_path / "ulayout"
    ub, kb = tmp_path / "ub", tmp_path / "kb"
    subprocess.run(["umoci", "unpack", "--image", f"{ulayout}:base", str(ub)], check=True,
                   capture_output=True)
    run_ki("unpack", f"{base_layout}:base", str(kb))
    # umoci 0.4.7 stores xattrs it finds but its mtree does not compare them: leave them out.
    for b in (ub, kb):
        make_changes(b / "rootfs", xattrs=False)
    subprocess.run(["umoci", "repack", "--image", f"{ulayout}:next", str(ub)], check=True,
                   capture_output=True)
    run_ki("repack", str(kb), f"{base_layout}:next")
    uu, ku = tmp_path / "uu", tmp_path / "ku"
    subprocess.run(["umoci", "unpack", "--image", f"{ulayout}:next", str(uu)], check=True,
                   capture_output=True)
    subprocess.run(["umoci", "unpack", "--image", f"{base_layout}:next", str(ku)], check=True,
                   capture_output=True)
    lu, lk = listing(str(uu / "rootfs")), listing(str(ku / "rootfs"))
    assert lu == lk
    assert lk == listing(str(kb / "rootfs"))

"""repack of a bundle unpacked with --uid-map/--gid-map: host ids go back to container ids.

runtime-spec config-linux.md "User namespace mappings": the rootfs holds host
ids (container id + offset); the layer must hold container ids, and a host id
no range covers cannot be represented, so repack refuses it (as umoci does).
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from ketch.image import bundlemeta
from ketch.image.layers.ownership import IdMap

from .helpers import D, F, L, LayoutBuilder, layout_tags, listing, run_ki

MAP = "0:100000:65536"
HOST = 100000
BASE = [
    D("./", 0o755), D("etc"), F("etc/hello", b"hi\n"), F("etc/other", b"o", uid=3, gid=4),
    L("etc/link", "hello"), D("home"), D("home/u", 0o700, uid=1000, gid=1000),
]


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    path = tmp_path / "layout"
    b = LayoutBuilder(str(path))
    b.tag("base", b.image([BASE]))
    return path


def _unpack_mapped(layout: Path, bundle: Path) -> Path:
    run_ki("unpack", "--uid-map", MAP, "--gid-map", MAP, f"{layout}:base", str(bundle))
    return bundle / "rootfs"


def _last_layer(layout: Path, tag: str) -> Path:
    digest = layout_tags(str(layout))[tag]["digest"]
    manifest = json.loads((layout / "blobs/sha256" / digest[7:]).read_text())
    return layout / "blobs/sha256" / manifest["layers"][-1]["digest"][7:]


def _headers(blob: Path) -> dict[str, tuple[int, int]]:
    with tarfile.open(blob, "r:gz") as tf:
        return {m.name.rstrip("/") or ".": (m.uid, m.gid) for m in tf.getmembers()}


def _all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


def _change_inside_map(rootfs: Path) -> None:
    os.chown(rootfs / "etc/hello", HOST + 5, HOST + 5)
    (rootfs / "etc/new").write_bytes(b"new\n")
    os.chown(rootfs / "etc/new", HOST + 7, HOST + 8)
    os.chown(rootfs / "etc/link", HOST + 3, HOST + 3, follow_symlinks=False)
    os.mkdir(rootfs / "home/v")
    os.chown(rootfs / "home/v", HOST + 1001, HOST + 1001)


def test_maps_are_recorded(layout: Path, tmp_path: Path) -> None:
    _unpack_mapped(layout, tmp_path / "b")
    meta, _ = bundlemeta.load(str(tmp_path / "b"))
    assert meta.uid_map == meta.gid_map == [IdMap(0, HOST, 65536)]
    assert not meta.rootless


def test_repack_maps_host_ids_back(layout: Path, tmp_path: Path) -> None:
    rootfs = _unpack_mapped(layout, tmp_path / "b")
    assert os.lstat(rootfs).st_uid == HOST  # the unpack did map
    _change_inside_map(rootfs)
    run_ki("repack", str(tmp_path / "b"), f"{layout}:next")
    headers = _headers(_last_layer(layout, "next"))
    assert headers["etc/hello"] == (5, 5)
    assert headers["etc/new"] == (7, 8)
    assert headers["etc/link"] == (3, 3)
    assert headers["home/v"] == (1001, 1001)
    assert headers["etc"] == (0, 0)  # its mtime moved: written, as container root
    assert all(uid < 65536 and gid < 65536 for uid, gid in headers.values()), headers
    # Unpacked elsewhere without maps: the container ids; with another map: that offset.
    run_ki("unpack", f"{layout}:next", str(tmp_path / "plain"))
    plain = listing(str(tmp_path / "plain/rootfs"))
    assert plain["etc/hello"][2] == "5:5" and plain["etc/new"][2] == "7:8"
    assert plain["etc/link"][2] == "3:3" and plain["home/v"][2] == "1001:1001"
    assert plain["."][2] == "0:0" and plain["etc/other"][2] == "3:4"
    run_ki("unpack", "--uid-map", "0:200000:65536", "--gid-map", "0:300000:65536",
           f"{layout}:next", str(tmp_path / "other"))
    other = listing(str(tmp_path / "other/rootfs"))
    assert other["etc/hello"][2] == "200005:300005"
    # The refreshed bundle keeps its maps: a second repack maps too.
    os.chown(rootfs / "etc/other", HOST + 9, HOST + 9)
    run_ki("repack", str(tmp_path / "b"), f"{layout}:third")
    assert _headers(_last_layer(layout, "third"))["etc/other"] == (9, 9)


@pytest.mark.parametrize(("owner", "message"), [
    ((0, 0), "new: host uid 0 cannot be mapped to a container uid "
             "(not in the bundle's --uid-map)"),
    ((HOST, 5), "new: host gid 5 cannot be mapped to a container gid "
                "(not in the bundle's --gid-map)"),
    ((HOST + 65536, HOST), "new: host uid 165536 cannot be mapped to a container uid "
                           "(not in the bundle's --uid-map)"),
])
def test_id_outside_the_map_is_refused(layout: Path, tmp_path: Path,
                                       owner: tuple[int, int], message: str) -> None:
    bundle = tmp_path / "b"
    rootfs = _unpack_mapped(layout, bundle)
    (rootfs / "new").write_bytes(b"x")
    os.chown(rootfs / "new", *owner)
    index = (layout / "index.json").read_bytes()
    files = _all_files(layout)
    record = (bundle / "ketch-image.mtree").read_bytes()
    p = run_ki("repack", str(bundle), f"{layout}:bad", check=False)
    assert p.returncode == 1
    assert p.stderr.strip().splitlines() == [f"ketch-image: error: {message}"]
    assert (layout / "index.json").read_bytes() == index
    assert _all_files(layout) == files  # no blob, no temp file left behind
    assert (bundle / "ketch-image.mtree").read_bytes() == record


def test_same_layer_entries_as_umoci(debian_tools: None, layout: Path, tmp_path: Path) -> None:
    """umoci unpack/repack with the same maps and the same change: every entry umoci's
    layer has, ketch-image's has with the same owner, and both images unpack alike."""
    ulayout = tmp_path / "ulayout"
    subprocess.run(["cp", "-a", str(layout), str(ulayout)], check=True)
    ub = tmp_path / "ub"
    subprocess.run(["umoci", "unpack", "--uid-map", MAP, "--gid-map", MAP, "--image",
                    f"{ulayout}:base", str(ub)], check=True, capture_output=True)
    kroot = _unpack_mapped(layout, tmp_path / "kb")
    for rootfs in (ub / "rootfs", kroot):
        _change_inside_map(rootfs)
    subprocess.run(["umoci", "repack", "--image", f"{ulayout}:next", str(ub)], check=True,
                   capture_output=True)
    run_ki("repack", str(tmp_path / "kb"), f"{layout}:next")
    umoci_headers = _headers(_last_layer(ulayout, "next"))
    ketch_headers = _headers(_last_layer(layout, "next"))
    assert umoci_headers, "umoci wrote an empty layer"
    for name, owner in umoci_headers.items():
        assert ketch_headers.get(name) == owner, (name, owner, ketch_headers.get(name))
    uu, ku = tmp_path / "uu", tmp_path / "ku"
    for lay, out in ((ulayout, uu), (layout, ku)):
        subprocess.run(["umoci", "unpack", "--image", f"{lay}:next", str(out)], check=True,
                       capture_output=True)
    lu, lk = listing(str(uu / "rootfs")), listing(str(ku / "rootfs"))
    assert {p: r[2] for p, r in lu.items()} == {p: r[2] for p, r in lk.items()}
    # umoci refuses the same out-of-map owner.
    for rootfs in (ub / "rootfs", kroot):
        (rootfs / "stray").write_bytes(b"s")
        os.chown(rootfs / "stray", 0, 0)
    u = subprocess.run(["umoci", "repack", "--image", f"{ulayout}:bad", str(ub)],
                       capture_output=True, text=True)
    k = run_ki("repack", str(tmp_path / "kb"), f"{layout}:bad", check=False)
    assert u.returncode != 0 and "host id 0 cannot be mapped to a container id" in u.stderr
    assert k.returncode == 1 and "host uid 0 cannot be mapped to a container uid" in k.stderr

"""Rootless and id-mapped unpack: owners recorded in ``user.rootlesscontainers`` (byte for
byte what ``umoci unpack --rootless`` writes) or chowned through --uid-map/--gid-map;
devices skipped with a warning; a real unprivileged user can unpack and repack."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ketch.image.layers.ownership import decode_rootless, encode_rootless

from .helpers import CHR, FIFO, D, F, H, L, LayoutBuilder, ketch_image_cmd, run_ki

XATTR = "user.rootlesscontainers"
NOBODY = 65534

IMAGE = [
    D("./", 0o755),
    D("bin"), F("bin/su", b"#!", 0o4755), L("bin/sh", "su", uid=5, gid=5),
    D("home"), D("home/app", 0o700, uid=1000, gid=1000),
    F("home/app/secret", b"s", 0o600, uid=1000, gid=1000), H("home/app/hl", "home/app/secret"),
    D("ro", 0o555), F("ro/inside", b"i", 0o444, uid=2, gid=3), D("ro/sub", 0o500),
    F("ro/sub/deep", b"d", 0o400),
    D("dev"), CHR("dev/null", 1, 3), FIFO("dev/pipe", 0o600, uid=7, gid=7),
    F("big-ids", b"x", uid=300000, gid=400000),
]


def owners(root: Path) -> dict[str, tuple[int, int]]:
    """Recorded owner of every regular file and directory (0:0 when no xattr)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in ["", *dirnames, *filenames] if dirpath == str(root) else dirnames + filenames:
            p = os.path.join(dirpath, n) if n else dirpath
            if os.path.islink(p) or not (os.path.isfile(p) or os.path.isdir(p)):
                continue
            try:
                raw = os.getxattr(p, XATTR, follow_symlinks=False)
            except OSError:
                raw = b""
            out[os.path.relpath(p, root)] = decode_rootless(raw)
    return out


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    b = LayoutBuilder(str(tmp_path / "layout"))
    b.tag("t", b.image([IMAGE], config={"User": "1000:1000"}))
    return tmp_path / "layout"


def test_protobuf_encoding() -> None:
    assert encode_rootless(0, 0) == b""
    assert encode_rootless(1000, 1000) == bytes.fromhex("08e80710e807")
    assert decode_rootless(encode_rootless(300000, 0)) == (300000, 0)
    assert decode_rootless(b"\x08\x05\x1a\x02hi\x10\x07") == (5, 7)  # unknown field skipped


def test_rootless_unpack_matches_umoci(debian_tools: None, layout: Path, tmp_path: Path) -> None:
    p = run_ki("unpack", "--rootless", f"{layout}:t", str(tmp_path / "k"))
    assert "skipping device 'dev/null'" in p.stderr
    subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{layout}:t",
                    str(tmp_path / "u")], check=True, capture_output=True)
    k, u = tmp_path / "k/rootfs", tmp_path / "u/rootfs"
    # umoci leaves an empty placeholder file where a device was; ketch-image leaves nothing.
    assert os.path.getsize(u / "dev/null") == 0
    assert owners(k) == {p: o for p, o in owners(u).items() if p != "dev/null"}
    assert owners(k)["home/app/secret"] == (1000, 1000)
    assert owners(k)["big-ids"] == (300000, 400000)
    assert not os.path.lexists(k / "dev/null")
    assert os.stat(k / "home/app/secret").st_uid == os.geteuid()  # no chown
    assert oct(os.stat(k / "ro").st_mode & 0o7777) == "0o555"
    assert oct(os.stat(k / "bin/su").st_mode & 0o7777) == "0o4755"
    spec = json.loads((tmp_path / "k/config.json").read_text())
    assert {"type": "user"} in spec["linux"]["namespaces"]
    assert {"type": "network"} not in spec["linux"]["namespaces"]
    assert spec["linux"]["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    assert "resources" not in spec["linux"]
    assert not any(o.startswith(("uid=", "gid=")) for m in spec["mounts"]
                   for o in m.get("options", []))


@pytest.fixture
def unprivileged_dir() -> Iterator[Path]:
    # pytest's tmp_path is 0700 root: an unprivileged user needs its own traversable place.
    top = Path(tempfile.mkdtemp(prefix="ketch-rootless-", dir="/var/tmp"))
    os.chmod(top, 0o755)
    yield top
    shutil.rmtree(top, ignore_errors=True)


def test_unprivileged_user_unpacks_and_repacks(layout: Path, unprivileged_dir: Path,
                                               tmp_path: Path) -> None:
    lay = unprivileged_dir / "layout"
    shutil.copytree(layout, lay)
    work = unprivileged_dir / "work"
    work.mkdir()
    for p in [lay, work, *lay.rglob("*")]:
        os.chown(p, NOBODY, NOBODY, follow_symlinks=False)
    as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                 *ketch_image_cmd()]
    bundle = work / "bundle"
    p = subprocess.run([*as_nobody, "unpack", "--rootless", f"{lay}:t", str(bundle)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    rootfs = bundle / "rootfs"
    assert (rootfs / "ro/sub/deep").read_bytes() == b"d"
    assert oct(os.stat(rootfs / "ro/sub").st_mode & 0o7777) == "0o500"
    assert os.stat(rootfs / "home/app/secret").st_uid == NOBODY
    assert owners(rootfs)["ro/inside"] == (2, 3)
    # "chown" the way a rootless tool does, then repack: the layer carries the new owner.
    os.setxattr(rootfs / "home/app/secret", XATTR, encode_rootless(1234, 5678))
    os.chown(rootfs / "home/app/secret", NOBODY, NOBODY)
    p = subprocess.run([*as_nobody, "repack", str(bundle), f"{lay}:next"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    run_ki("unpack", f"{lay}:next", str(tmp_path / "rooted"))
    st = os.stat(tmp_path / "rooted/rootfs/home/app/secret")
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    assert os.stat(tmp_path / "rooted/rootfs/ro/inside").st_uid == 2
    assert XATTR not in os.listxattr(tmp_path / "rooted/rootfs/home/app/secret")


def test_uid_map_chowns_to_host_ids(layout: Path, tmp_path: Path) -> None:
    run_ki("unpack", "--uid-map", "0:100000:500000", "--gid-map", "0:200000:500000",
           f"{layout}:t", str(tmp_path / "b"))
    rootfs = tmp_path / "b/rootfs"
    st = os.stat(rootfs / "home/app/secret")
    assert (st.st_uid, st.st_gid) == (101000, 201000)
    assert os.lstat(rootfs / "bin/sh").st_uid == 100005
    assert os.stat(rootfs).st_uid == 100000
    spec = json.loads((tmp_path / "b/config.json").read_text())
    assert spec["linux"]["uidMappings"] == [{"containerID": 0, "hostID": 100000, "size": 500000}]
    assert {"type": "user"} in spec["linux"]["namespaces"]
    assert {"type": "network"} in spec["linux"]["namespaces"]


def test_id_outside_the_map_is_an_error(layout: Path, tmp_path: Path) -> None:
    p = run_ki("unpack", "--uid-map", "0:100000:65536", f"{layout}:t", str(tmp_path / "b"),
               check=False)
    assert p.returncode == 1 and "uid 300000 is not covered by the uid map" in p.stderr
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("bad", ["1:2", "a:b:c", "0:0:0", "-1:0:5"])
def test_malformed_map_is_a_one_line_error(layout: Path, tmp_path: Path, bad: str) -> None:
    p = run_ki("unpack", "--uid-map", bad, f"{layout}:t", str(tmp_path / "b"), check=False)
    assert p.returncode == 1 and p.stderr.startswith("ketch-image: error: invalid id map")
    assert not (tmp_path / "b").exists()

"""ketch-image import: reproducible one-layer images other tools accept."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from ketch.image.platforms import host_platform

from .helpers import F, check_layout, ketch_image_cmd, layout_tags, listing, make_tar, run_ki


def make_rootfs(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin/busybox").write_bytes(Path("/bin/busybox").read_bytes())
    os.chmod(root / "bin/busybox", 0o4755)
    for applet in ("sh", "ls", "cat", "id"):
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\napp:x:1000:\n")
    os.link(root / "etc/passwd", root / "etc/passwd-")
    (root / "tmp").mkdir(mode=0o1777)
    os.chmod(root / "tmp", 0o1777)
    (root / "home/app").mkdir(parents=True)
    os.chown(root / "home/app", 1000, 1000)
    os.mkfifo(root / "fifo")
    os.mknod(root / "null", 0o666 | 0o020000, os.makedev(1, 3))
    os.utime(root / "etc/passwd", (1_500_000_000, 1_500_000_000))
    return root


@pytest.fixture
def rootfs(debian_tools: None, tmp_path: Path) -> Path:
    return make_rootfs(tmp_path / "rootfs")


def test_import_writes_a_valid_image(rootfs: Path, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    run_ki("import", "--cmd", '["/bin/sh"]', "--env", "A=1", "--label", "k=v", str(rootfs),
           f"{layout}:v1")
    index = check_layout(str(layout))
    assert [d["annotations"]["org.opencontainers.image.ref.name"] for d in index["manifests"]] == ["v1"]
    out = json.loads(run_ki("inspect", f"{layout}:v1").stdout)
    manifest, config = out["manifest"], out["config"]
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        "application/vnd.oci.image.layer.v1.tar+gzip"]
    assert config["os"] == "linux" and config["architecture"] == host_platform().architecture
    assert config["rootfs"]["type"] == "layers" and len(config["rootfs"]["diff_ids"]) == 1
    assert config["history"][0]["created"] == config["created"]
    assert config["config"] == {"Cmd": ["/bin/sh"], "Env": ["A=1"], "Labels": {"k": "v"}}
    # the layer is sorted, PAX, numeric ids, and its diff_id matches
    blob = layout / "blobs/sha256" / manifest["layers"][0]["digest"][7:]
    tar = gzip.decompress(blob.read_bytes())
    assert "sha256:" + hashlib.sha256(tar).hexdigest() == config["rootfs"]["diff_ids"][0]
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        members = tf.getmembers()
    names = [m.name for m in members]
    assert names[0] in (".", "./")
    assert names == [names[0], *sorted(names[1:], key=lambda n: n.split("/"))]
    assert all(m.uname == "" and m.gname == "" for m in members)
    by_name = {m.name: m for m in members}
    assert by_name["etc/passwd-"].islnk() and by_name["etc/passwd-"].linkname == "etc/passwd"
    assert by_name["home/app"].uid == 1000
    assert by_name["bin/busybox"].mode == 0o4755
    assert by_name["etc/passwd"].mtime == 1_500_000_000


def test_import_is_reproducible(rootfs: Path, tmp_path: Path) -> None:
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
    digests = []
    for i in range(2):
        p = subprocess.run([*ketch_image_cmd(), "import", str(rootfs), f"{tmp_path / f'l{i}'}:t"],
                           capture_output=True, text=True, env=env, check=True)
        digests.append(p.stdout.strip())
    assert digests[0] == digests[1]
    a = json.loads(run_ki("inspect", f"{tmp_path / 'l0'}:t").stdout)
    assert a["config"]["created"] == "2023-11-14T22:13:20Z"


def test_import_unpack_roundtrip(rootfs: Path, tmp_path: Path) -> None:
    run_ki("import", "--user", "app", "--workdir", "/home/app", "--entrypoint", "id",
           str(rootfs), f"{tmp_path / 'layout'}:t")
    run_ki("unpack", f"{tmp_path / 'layout'}:t", str(tmp_path / "bundle"))
    src, dst = listing(str(rootfs)), listing(str(tmp_path / "bundle/rootfs"))
    assert src == dst
    spec = json.loads((tmp_path / "bundle/config.json").read_text())
    assert spec["process"]["args"] == ["/bin/sh", "-c", "id"]
    assert spec["process"]["user"] == {"uid": 1000, "gid": 1000}
    assert spec["process"]["cwd"] == "/home/app"


def test_import_from_tar(rootfs: Path, tmp_path: Path) -> None:
    # a tar with ./-prefixed names, user names, an unsorted order and a hardlink before its target
    tar = tmp_path / "in.tar.gz"
    subprocess.run(["tar", "-czf", str(tar), "-C", str(rootfs), "."], check=True)
    run_ki("import", str(tar), f"{tmp_path / 'layout'}:t")
    run_ki("unpack", f"{tmp_path / 'layout'}:t", str(tmp_path / "bundle"))
    assert listing(str(rootfs)) == listing(str(tmp_path / "bundle/rootfs"))


def test_import_from_tar_rejects_escaping_names(tmp_path: Path) -> None:
    (tmp_path / "bad.tar").write_bytes(make_tar([F("../escape", b"x")]))
    p = run_ki("import", str(tmp_path / "bad.tar"), f"{tmp_path / 'layout'}:t", check=False)
    assert p.returncode == 1 and "escapes" in p.stderr


def test_other_tools_read_an_imported_image(debian_tools: None, rootfs: Path,
                                            tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    run_ki("import", str(rootfs), f"{layout}:t")
    run_ki("import", str(rootfs), f"{layout}:t2")
    p = subprocess.run(["skopeo", "inspect", f"oci:{layout}:t"], capture_output=True, text=True,
                       check=True)
    assert json.loads(p.stdout)["Architecture"] == host_platform().architecture
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:t", str(tmp_path / "ub")], check=True,
                   capture_output=True)
    assert listing(str(rootfs)) == listing(str(tmp_path / "ub/rootfs"))
    assert set(layout_tags(str(layout))) == {"t", "t2"}


def test_failed_import_leaves_no_layout_behind(tmp_path):
    """A file that is not a tar: one clear line, and the layout it would have made is gone."""
    import subprocess
    import sys
    from pathlib import Path

    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 20)
    layout = tmp_path / "new-layout"
    tool = Path(sys.executable).parent / "ketch-image"
    r = subprocess.run([str(tool), "import", str(junk), f"{layout}:x"], capture_output=True,
                       text=True)
    assert r.returncode == 1
    assert r.stderr.strip() == f"ketch-image: error: {junk}: not a tar archive (plain, gzip, bzip2 or xz)"
    assert not layout.exists()


def test_unpack_under_a_regular_file_is_one_clear_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "hostname").write_text("x\n")
    tool = Path(sys.executable).parent / "ketch-image"
    assert subprocess.run([str(tool), "import", str(rootfs), f"{tmp_path}/l:t"],
                          capture_output=True).returncode == 0
    regular = tmp_path / "file"
    regular.write_text("x")
    r = subprocess.run([str(tool), "unpack", f"{tmp_path}/l:t", f"{regular}/bundle"],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip() == f"ketch-image: error: create bundle path {regular}/bundle: not a directory"

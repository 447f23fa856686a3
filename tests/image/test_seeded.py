"""Acceptance on the team's anchor images (``/work/shared/tools/seed-images.sh``): busybox,
a debootstrap'd Debian (its tarball cached in /var/cache/ketch-tests/seed between runs) and
the 4-layer image (hardlink, symlinks, fifo, setuid, unicode and 150-character names,
whiteouts, an opaque dir). For each, ``ketch-image unpack`` and ``umoci unpack`` give the same
normalised tree (``rootfs-digest.py --mtime --xattrs``), and ``runc run`` of the bundle
ketch-image wrote works."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from .helpers import run_ki

TOOLS = "/work/shared/tools"
SEED = os.path.join(TOOLS, "seed-images.sh")
DIGEST = os.path.join(TOOLS, "rootfs-digest.py")
SEED_CACHE = "/var/cache/ketch-tests/seed"

pytestmark = pytest.mark.skipif(not os.path.exists(SEED), reason="/work/shared absent")

# image -> (command run in the container, expected stdout)
IMAGES = {
    "busybox:latest": (["/bin/sh", "-c", "echo hi from busybox"], "hi from busybox\n"),
    "debian:bookworm": (["/bin/sh", "-c", "cut -d. -f1 /etc/debian_version"], "12\n"),
    "layers:latest": (["/bin/sh", "-c", "cat /data/layer4.txt /opq/new.txt; ls /data/sub"],
                      "added by layer 4\nnew in opaque dir\ndeeper\n"),
}


@pytest.fixture(scope="session")
def seeded(debian_tools: None, ensure_debian_packages,
           tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeded layouts (built once per session; debootstrap cached across sessions)."""
    ensure_debian_packages("debootstrap", "runc")
    work = tmp_path_factory.mktemp("seed")
    os.makedirs(SEED_CACHE, exist_ok=True)
    env = {**os.environ, "NO_PUSH": "1", "ONLY": "busybox debian layers",
           "SEED_CACHE": SEED_CACHE, "SEED_WORK": str(work)}
    p = subprocess.run(["bash", SEED], env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    return work / "layouts"


def digest(rootfs: Path) -> str:
    return subprocess.run(["python3", DIGEST, "--mtime", "--xattrs", str(rootfs)],
                          capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("image", list(IMAGES))
def test_same_tree_as_umoci_and_runc_runs_it(seeded: Path, tmp_path: Path, image: str) -> None:
    name, tag = image.split(":")
    layout = f"{seeded / name}:{tag}"
    kb, ub = tmp_path / "ketch", tmp_path / "umoci"
    run_ki("unpack", layout, str(kb), timeout=300)
    subprocess.run(["umoci", "unpack", "--image", layout, str(ub)], check=True,
                   capture_output=True, timeout=300)
    k, u = digest(kb / "rootfs"), digest(ub / "rootfs")
    assert k == u, "\n".join(line for line in (k + u).splitlines()
                             if (line in k.splitlines()) != (line in u.splitlines()))
    args, expected = IMAGES[image]
    spec = json.loads((kb / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = args
    (kb / "config.json").write_text(json.dumps(spec))
    os.chmod(tmp_path, 0o755)
    cid = f"ketch-seed-{uuid.uuid4().hex[:12]}"
    p = subprocess.run(["runc", "--root", str(tmp_path / "runc-state"), "run", "--bundle",
                        str(kb), cid], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    assert p.stdout == expected


def test_zstd_layers_unpack_to_the_gzip_tree(seeded: Path, tmp_path: Path) -> None:
    # umoci 0.4.7 cannot read zstd layers: the gzip image unpacked by ketch-image is the
    # reference (itself checked against umoci above).
    for name in ("busybox", "debian"):
        tag = "latest" if name == "busybox" else "bookworm"
        run_ki("unpack", f"{seeded / name}:{tag}", str(tmp_path / f"{name}-gz"), timeout=300)
        run_ki("unpack", f"{seeded / (name + '-zstd')}:{tag}", str(tmp_path / f"{name}-zst"),
               timeout=300)
        assert digest(tmp_path / f"{name}-gz/rootfs") == digest(tmp_path / f"{name}-zst/rootfs")

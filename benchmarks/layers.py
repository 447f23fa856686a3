#!/usr/bin/env python3
"""Layer speed: ``ketch-image unpack``/``repack`` beside ``umoci unpack``/``repack`` (run as root).

    .venv/bin/python benchmarks/layers.py [-n 7] [--layout PATH:TAG] [--workdir DIR]
                                          [--baseline OTHER/ketch-image]

1. The image: ``--layout``, or the seeded Debian image (one ~50 MB gzip layer
   from ``debootstrap --variant=minbase``), built with
   ``/work/shared/tools/seed-images.sh`` (debootstrap tarball cached in
   /var/cache/ketch-tests/seed, layout in /var/tmp/ketch-bench-layers).
2. Unpack: ``ketch-image unpack L:T B`` and ``umoci unpack --image L:T B``,
   interleaved (ketch, umoci, ketch, ...) after one warm-up each, N timed runs
   each; every run unpacks into a new directory (removed when the phase is
   over: see the comment in main() about ext4) after a ``sync``.
3. Repack after a one-file change: each tool unpacks a fresh bundle (not
   timed), one file is rewritten (``/etc/motd``), and ``ketch-image repack B
   L:T2`` / ``umoci repack --image L:T2 B`` is timed; interleaved, N runs each.
   With ``--baseline``, a second ketch-image (another worktree's venv) is
   timed in the same rounds: a before/after under the same machine load.
4. Prints median, min and max per tool and the umoci/ketch ratio of the
   medians, with the issue's targets (unpack >= 3x faster, repack no slower).

The ketch-image measured is the venv's console script next to the
interpreter running this file. Exit status 1 when a command fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEED = "/work/shared/tools/seed-images.sh"
SEED_CACHE = "/var/cache/ketch-tests/seed"
SEED_WORK = "/var/tmp/ketch-bench-layers"


def ketch_image() -> str:
    beside = Path(sys.executable).with_name("ketch-image")
    if beside.exists():
        return str(beside)
    return str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "ketch-image")


def seeded_debian() -> str:
    layout = Path(SEED_WORK) / "layouts" / "debian"
    if not (layout / "index.json").exists():
        print(f"building the Debian image with {SEED} (cached in {SEED_CACHE}) ...",
              file=sys.stderr)
        os.makedirs(SEED_CACHE, exist_ok=True)
        env = {**os.environ, "NO_PUSH": "1", "ONLY": "debian", "SEED_CACHE": SEED_CACHE,
               "SEED_WORK": SEED_WORK}
        subprocess.run(["bash", SEED], env=env, check=True, stdout=subprocess.DEVNULL)
    return f"{layout}:bookworm"


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr}")
    return elapsed


def rm(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def settle() -> None:
    """Flush dirty pages, so no run pays for the previous one's writeback."""
    os.sync()


def summary(name: str, k: list[float], u: list[float], target: str, ok: bool) -> None:
    mk, mu = statistics.median(k), statistics.median(u)
    print(f"\n{name} (N={len(k)} each, seconds)")
    print(f"  {'tool':<12}{'median':>9}{'min':>9}{'max':>9}")
    print(f"  {'ketch-image':<12}{mk:9.3f}{min(k):9.3f}{max(k):9.3f}")
    print(f"  {'umoci':<12}{mu:9.3f}{min(u):9.3f}{max(u):9.3f}")
    print(f"  umoci/ketch = {mu / mk:.2f}x   target {target}: {'met' if ok else 'NOT met'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=7, help="timed runs per tool (default 7)")
    ap.add_argument("--layout", help="LAYOUT:TAG to use instead of the seeded Debian image")
    ap.add_argument("--baseline", metavar="KETCH_IMAGE",
                    help="another ketch-image (e.g. main's venv) timed in the same unpack rounds, "
                         "for a before/after that shares the machine's load")
    ap.add_argument("--workdir", default="/var/tmp",
                    help="where bundles and the layout copy go (default /var/tmp; /dev/shm "
                         "takes the disk out of the measurement)")
    args = ap.parse_args()
    ki = ketch_image()
    image = args.layout or seeded_debian()
    path, _, tag = image.rpartition(":")
    blob_bytes = sum(f.stat().st_size for f in Path(path, "blobs").rglob("*") if f.is_file())
    print(f"image {image} (layout blobs {blob_bytes / 1e6:.1f} MB); ketch-image = {ki}; "
          f"workdir {args.workdir}; load average {os.getloadavg()[0]:.2f}")
    work = Path(tempfile.mkdtemp(prefix="ketch-bench-layers-", dir=args.workdir))
    # repack adds layers and tags: work on a copy so the source layout stays as it is
    layout = work / "layout"
    shutil.copytree(path, layout)
    src = f"{layout}:{tag}"
    try:
        # Every run gets a fresh directory and nothing is deleted until a phase is over:
        # ext4 skips inodes freed in the last few seconds when allocating new ones
        # (recently_deleted()), so creating files right after an rm -rf of the previous
        # bundle makes every create scan the inode bitmap, for whichever tool comes next.
        kt, ut, bt = [], [], []
        for i in range(args.n + 1):
            settle()
            dk = timed([ki, "unpack", src, str(work / f"k{i}")])
            settle()
            du = timed(["umoci", "unpack", "--image", src, str(work / f"u{i}")])
            if args.baseline:
                settle()
                db = timed([args.baseline, "unpack", src, str(work / f"b{i}")])
            if i:  # the first round warms the page cache
                kt.append(dk)
                ut.append(du)
                if args.baseline:
                    bt.append(db)
        for i in range(args.n + 1):
            for prefix in "kub":
                rm(work / f"{prefix}{i}")
        summary("unpack", kt, ut, ">= 3x", statistics.median(ut) >= 3 * statistics.median(kt))
        if bt:
            mb, mu = statistics.median(bt), statistics.median(ut)
            print(f"  {'baseline':<12}{mb:9.3f}{min(bt):9.3f}{max(bt):9.3f}   ({args.baseline})")
            print(f"  umoci/baseline = {mu / mb:.2f}x   baseline/ketch = "
                  f"{mb / statistics.median(kt):.2f}x")

        kt, ut = [], []
        for i in range(args.n + 1):
            for tool in ("ketch", "umoci"):
                bundle = work / f"r{tool}{i}"
                if tool == "ketch":
                    timed([ki, "unpack", src, str(bundle)])
                else:
                    timed(["umoci", "unpack", "--image", src, str(bundle)])
                (bundle / "rootfs/etc/motd").write_text(f"changed by the benchmark, run {i}\n")
                settle()
                if tool == "ketch":
                    d = timed([ki, "repack", str(bundle), f"{layout}:bench-ketch-{i}"])
                else:
                    d = timed(["umoci", "repack", "--image", f"{layout}:bench-umoci-{i}",
                               str(bundle)])
                if i:
                    (kt if tool == "ketch" else ut).append(d)
        summary("repack after a one-file change", kt, ut, "ketch no slower",
                statistics.median(kt) <= statistics.median(ut))
    finally:
        rm(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())

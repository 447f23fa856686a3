#!/usr/bin/env python3
"""Pull and push of a ~50 MB Debian image: ``ketch-image`` beside ``skopeo``, in one run.

Usage (as root, with the venv's interpreter)::

    .venv/bin/python benchmarks/registry_transfer.py            # 5 runs of each
    .venv/bin/python benchmarks/registry_transfer.py -n 9 --rootfs-tar /path/rootfs.tar

What it does:

1. a minimal Debian root filesystem (``debootstrap --variant=minbase``, from the
   Debian mirror of ``/etc/apt/sources.list.d``, without the downloaded ``.deb``
   files and apt lists), tarred once into the cache directory (default
   ``/var/cache/ketch-bench``) and reused by later runs;
2. ``ketch-image import`` of that tar: an OCI layout with one gzip layer;
3. push: the layout to a docker-registry (Debian package) on 127.0.0.1 with
   ``ketch-image push`` and with ``skopeo copy oci:... docker://...``,
   interleaved, each run against a freshly started registry with empty storage
   (so no blob is already there and nothing can be mounted);
4. pull: from one registry holding the image, into a fresh layout each time,
   ``ketch-image pull`` and ``skopeo copy docker://... oci:...``, interleaved;
5. prints median / min / max wall-clock seconds per tool and the throughput
   (compressed image bytes / median time).

The times include each tool's process start-up (both are run as commands); the
start-up alone (``ketch-image --version`` against ``skopeo --version``) is
timed too and printed, since at this image size it is a visible share of the
total for an interpreted tool.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
KETCH_IMAGE = os.path.join(os.path.dirname(sys.executable), "ketch-image")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def debian_mirror() -> str:
    for name in ["/etc/apt/sources.list", *[os.path.join("/etc/apt/sources.list.d", f)
                 for f in sorted(os.listdir("/etc/apt/sources.list.d"))]]:
        try:
            with open(name) as f:
                for line in f:
                    line = line.strip()
                    if line.startswith("URIs:") and "security" not in line:
                        return line.split()[1]
                    if line.startswith("deb ") and "security" not in line:
                        return line.split()[1]
        except OSError:
            continue
    return "http://deb.debian.org/debian"


def rootfs_tar(cache: str, suite: str) -> str:
    """The cached minbase rootfs tar, made with debootstrap when missing."""
    tar = os.path.join(cache, f"debian-{suite}-minbase.tar")
    if os.path.exists(tar):
        return tar
    os.makedirs(cache, exist_ok=True)
    work = tempfile.mkdtemp(prefix="rootfs-", dir=cache)
    try:
        mirror = debian_mirror()
        log(f"debootstrap --variant=minbase {suite} from {mirror} (once; cached in {cache})")
        subprocess.run(["debootstrap", "--variant=minbase", suite, work, mirror], check=True,
                       stdout=subprocess.DEVNULL)
        # what debootstrap downloaded is not part of the system (as in docker's debian images)
        for d in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for name in os.listdir(os.path.join(work, d)):
                p = os.path.join(work, d, name)
                if os.path.isfile(p) and name != "lock":
                    os.unlink(p)
        subprocess.run(["tar", "-C", work, "--numeric-owner", "-cf", tar + ".tmp", "."],
                       check=True)
        os.rename(tar + ".tmp", tar)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tar


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """docker-registry serving plain HTTP on 127.0.0.1 with its own storage.

    ``request_log``: log every request as JSON at ``info`` level in
    :attr:`log_path` (for registry_timeline.py), instead of errors only.
    """

    def __init__(self, state: str, request_log: bool = False) -> None:
        self.state = state
        os.makedirs(os.path.join(state, "storage"), exist_ok=True)
        port = free_port()
        self.host = f"127.0.0.1:{port}"
        config = os.path.join(state, "config.yml")
        log = ("  level: info\n  formatter: json\n  accesslog:\n    disabled: true\n"
               if request_log else "  level: error\n")
        with open(config, "w") as f:
            f.write(f"version: 0.1\nlog:\n{log}storage:\n  filesystem:\n"
                    f"    rootdirectory: {state}/storage\nhttp:\n  addr: {self.host}\n")
        self.log_path = os.path.join(state, "registry.log")
        self.log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(["docker-registry", "serve", config], stdout=self.log,
                                     stderr=self.log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("docker-registry did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()
        shutil.rmtree(self.state, ignore_errors=True)


def timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{p.stderr}")
    return elapsed


def summary(name: str, times: list[float], size: int) -> dict:
    med = statistics.median(times)
    return {"tool": name, "median": med, "min": min(times), "max": max(times),
            "mb_per_s": size / med / 1e6, "runs": len(times)}


def print_table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print(f"  {'tool':<12} {'median s':>9} {'min s':>7} {'max s':>7} {'MB/s':>7}")
    for r in rows:
        print(f"  {r['tool']:<12} {r['median']:>9.3f} {r['min']:>7.3f} {r['max']:>7.3f} "
              f"{r['mb_per_s']:>7.1f}")
    k, s = rows
    print(f"  ketch-image / skopeo median time: {k['median'] / s['median']:.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--runs", type=int, default=5)
    ap.add_argument("--rootfs-tar", help="use this rootfs tar instead of the debootstrap cache")
    ap.add_argument("--cache", default="/var/cache/ketch-bench")
    ap.add_argument("--suite", default="bookworm")
    ap.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = ap.parse_args()
    for tool in ("docker-registry", "skopeo"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found (make deps installs it)")
    tar = args.rootfs_tar or rootfs_tar(args.cache, args.suite)
    work = tempfile.mkdtemp(prefix="ketch-bench-")
    try:
        src = os.path.join(work, "src")
        env = {**os.environ, "SOURCE_DATE_EPOCH": "0"}
        subprocess.run([KETCH_IMAGE, "import", tar, f"{src}:debian"], check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(os.path.join(src, "index.json")) as f:
            desc = json.load(f)["manifests"][0]
        with open(os.path.join(src, "blobs", *desc["digest"].split(":"))) as f:
            manifest = json.load(f)
        size = sum(d["size"] for d in [manifest["config"], *manifest["layers"]])
        log(f"image: {len(manifest['layers'])} layer(s), {size / 1e6:.1f} MB compressed "
            f"(rootfs tar {os.path.getsize(tar) / 1e6:.1f} MB)")
        skopeo = ["skopeo", "--insecure-policy", "copy", "-q"]

        push: dict[str, list[float]] = {"ketch-image": [], "skopeo": []}
        for i in range(args.runs):
            order = ["ketch-image", "skopeo"] if i % 2 == 0 else ["skopeo", "ketch-image"]
            for tool in order:
                reg = Registry(os.path.join(work, f"reg-push-{i}-{tool}"))
                try:
                    dst = f"{reg.host}/bench/debian:1"
                    argv = ([KETCH_IMAGE, "push", "-q", f"{src}:debian", dst]
                            if tool == "ketch-image" else
                            [*skopeo, "--dest-tls-verify=false", f"oci:{src}:debian",
                             f"docker://{dst}"])
                    push[tool].append(timed(argv))
                finally:
                    reg.stop()
            log(f"push run {i + 1}: ketch-image {push['ketch-image'][-1]:.2f}s, "
                f"skopeo {push['skopeo'][-1]:.2f}s")

        pull: dict[str, list[float]] = {"ketch-image": [], "skopeo": []}
        reg = Registry(os.path.join(work, "reg-pull"))
        try:
            ref = f"{reg.host}/bench/debian:1"
            subprocess.run([KETCH_IMAGE, "push", "-q", f"{src}:debian", ref], check=True,
                           stdout=subprocess.DEVNULL)
            for i in range(args.runs):
                order = ["ketch-image", "skopeo"] if i % 2 == 0 else ["skopeo", "ketch-image"]
                for tool in order:
                    out = os.path.join(work, f"pulled-{tool}-{i}")
                    argv = ([KETCH_IMAGE, "pull", "-q", ref, out] if tool == "ketch-image" else
                            [*skopeo, "--src-tls-verify=false", f"docker://{ref}", f"oci:{out}:1"])
                    pull[tool].append(timed(argv))
                    shutil.rmtree(out)
                log(f"pull run {i + 1}: ketch-image {pull['ketch-image'][-1]:.2f}s, "
                    f"skopeo {pull['skopeo'][-1]:.2f}s")
        finally:
            reg.stop()
        startup: dict[str, list[float]] = {"ketch-image": [], "skopeo": []}
        for _ in range(args.runs):
            startup["ketch-image"].append(timed([KETCH_IMAGE, "--version"]))
            startup["skopeo"].append(timed(["skopeo", "--version"]))
        skopeo_version = subprocess.run(["skopeo", "--version"], capture_output=True,
                                        text=True).stdout.strip()
        print(f"\n{size / 1e6:.1f} MB image (1 gzip layer + config), {args.runs} runs each, "
              f"interleaved; {skopeo_version}; docker-registry on 127.0.0.1 (plain HTTP)")
        results = {
            "push": [summary(t, push[t], size) for t in ("ketch-image", "skopeo")],
            "pull": [summary(t, pull[t], size) for t in ("ketch-image", "skopeo")],
        }
        print_table("push (layout -> fresh registry)", results["push"])
        print_table("pull (registry -> fresh layout)", results["pull"])
        start = {t: statistics.median(v) for t, v in startup.items()}
        print(f"\nstart-up alone (--version, median): ketch-image {start['ketch-image']:.3f} s, "
              f"skopeo {start['skopeo']:.3f} s")
        if args.json:
            print(json.dumps({"bytes": size, **results, "startup": start}, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

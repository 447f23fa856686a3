#!/usr/bin/env python3
"""Start-up cost of ``ketch run`` beside ``runc run`` (run as root).

    .venv/bin/python benchmarks/run_true.py [-n 20] [--warmup 2] [--ketch PATH] [--runc PATH]

1. Builds a busybox-static bundle whose process is ``/bin/true`` (config from
   ``ketch spec``, ``terminal: false``) in a temporary directory.
2. Times ``RUNTIME --root R run --bundle B ID`` for ketch and runc on that same
   bundle, interleaved (ketch, runc, ketch, runc, ...), N runs each after a few
   warm-up runs, and prints median, p90, min and max, and the ratio of the
   medians. The same is done for ``state`` of a created container, and the
   interpreter's own start-up (``python -c pass``) is timed as the floor.
3. Runs ``ketch state`` and ``ketch run`` once more under ``python -X importtime``
   and prints the imports with the largest cumulative time, and checks that
   click, jsonschema and requests are not imported on those paths.

The ketch measured is the venv's console script (``.venv/bin/ketch`` next to the
interpreter running this file, or ``--ketch``), never a pyenv shim. Exit status
is 1 when a forbidden module was imported or a run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

FORBIDDEN = ("click", "jsonschema", "requests")
BUSYBOX = "/bin/busybox"


def default_ketch() -> str:
    beside = Path(sys.executable).with_name("ketch")
    if beside.exists():
        return str(beside)
    repo_venv = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "ketch"
    return str(repo_venv)


def build_bundle(base: Path, ketch: str) -> Path:
    bundle = base / "bundle"
    rootfs = bundle / "rootfs"
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp"):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout
    for applet in applets.split():
        if applet != "busybox":
            os.symlink("busybox", rootfs / "bin" / applet)
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\n")
    subprocess.run([ketch, "spec", "--bundle", str(bundle)], check=True)
    config_path = bundle / "config.json"
    config = json.loads(config_path.read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = ["/bin/true"]
    config_path.write_text(json.dumps(config, indent=2))
    return bundle


def timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{argv} failed ({p.returncode}): {p.stderr.decode(errors='replace')}")
    return elapsed


def summary(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    p90 = statistics.quantiles(ms, n=10, method="inclusive")[8] if len(ms) > 1 else ms[0]
    return {"median": statistics.median(ms), "p90": p90, "min": ms[0], "max": ms[-1]}


def print_table(title: str, results: dict[str, list[float]]) -> None:
    print(f"\n{title}")
    print(f"  {'runtime':<8} {'n':>3} {'median':>9} {'p90':>9} {'min':>9} {'max':>9}")
    stats = {name: summary(s) for name, s in results.items()}
    for name, st in stats.items():
        print(f"  {name:<8} {len(results[name]):>3} {st['median']:>7.1f}ms {st['p90']:>7.1f}ms"
              f" {st['min']:>7.1f}ms {st['max']:>7.1f}ms")
    ratio = stats["ketch"]["median"] / stats["runc"]["median"]
    print(f"  ratio ketch/runc (medians): {ratio:.2f}x")


def bench_run(ketch: str, runc: str, bundle: Path, roots: dict[str, Path], n: int,
              warmup: int) -> dict[str, list[float]]:
    binaries = {"ketch": ketch, "runc": runc}
    results: dict[str, list[float]] = {"ketch": [], "runc": []}
    for i in range(warmup + n):
        for name, binary in binaries.items():
            cid = f"bench-{name}-{uuid.uuid4().hex[:8]}"
            t = timed([binary, "--root", str(roots[name]), "run", "--bundle", str(bundle), cid])
            if i >= warmup:
                results[name].append(t)
    return results


def bench_state(ketch: str, runc: str, bundle: Path, roots: dict[str, Path], n: int,
                warmup: int) -> dict[str, list[float]]:
    binaries = {"ketch": ketch, "runc": runc}
    ids = {}
    for name, binary in binaries.items():
        ids[name] = f"bench-state-{name}-{uuid.uuid4().hex[:8]}"
        subprocess.run([binary, "--root", str(roots[name]), "create", "--bundle", str(bundle),
                        ids[name]], check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL)
    results: dict[str, list[float]] = {"ketch": [], "runc": []}
    try:
        for i in range(warmup + n):
            for name, binary in binaries.items():
                t = timed([binary, "--root", str(roots[name]), "state", ids[name]])
                if i >= warmup:
                    results[name].append(t)
    finally:
        for name, binary in binaries.items():
            subprocess.run([binary, "--root", str(roots[name]), "delete", "--force", ids[name]],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return results


_IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def importtime(python: str, ketch: str, args: list[str]) -> list[tuple[int, int, int, str]]:
    """(self µs, cumulative µs, depth, module) for every import ``ketch ARGS`` makes."""
    p = subprocess.run([python, "-X", "importtime", ketch, *args], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"ketch {' '.join(args)} failed: {p.stderr[-2000:]}")
    rows = []
    for line in p.stderr.splitlines():
        m = _IMPORT_LINE.match(line)
        if m:
            depth = (len(m.group(3)) - 1) // 2
            rows.append((int(m.group(1)), int(m.group(2)), depth, m.group(4)))
    return rows


def report_imports(label: str, rows: list[tuple[int, int, int, str]], top: int) -> list[str]:
    total_self = sum(r[0] for r in rows)
    print(f"\npython -X importtime: ketch {label}: {len(rows)} modules, "
          f"{total_self / 1000:.1f} ms of import time in total")
    print(f"  top {top} by cumulative time:")
    print(f"  {'cumul':>8} {'self':>8}  module")
    for self_us, cumul_us, depth, module in sorted(rows, key=lambda r: -r[1])[:top]:
        print(f"  {cumul_us / 1000:>6.1f}ms {self_us / 1000:>6.1f}ms  {'  ' * depth}{module}")
    bad = sorted({r[3] for r in rows if r[3].split(".")[0] in FORBIDDEN})
    if bad:
        print(f"  FORBIDDEN modules imported: {', '.join(bad)}")
    else:
        print(f"  ok: none of {', '.join(FORBIDDEN)} imported")
    return bad


def python_of(script: str) -> str:
    """The interpreter named on the console script's #! line (the venv's python)."""
    with open(script, "rb") as f:
        first = f.readline().decode(errors="replace").strip()
    if first.startswith("#!"):
        interp = first[2:].split()[0]
        if os.path.basename(interp).startswith("python") and os.access(interp, os.X_OK):
            return interp
    return sys.executable


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--runs", type=int, default=20, help="timed runs per runtime (default 20)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    ap.add_argument("--ketch", default=default_ketch(), help="ketch console script")
    ap.add_argument("--runc", default=shutil.which("runc") or "/usr/sbin/runc")
    ap.add_argument("--top", type=int, default=15, help="import-time rows to print")
    ap.add_argument("--no-state", action="store_true", help="skip the state timing")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("run_true.py: must run as root", file=sys.stderr)
        return 2
    ketch = os.path.abspath(a.ketch)
    if not os.access(ketch, os.X_OK):
        print(f"run_true.py: {ketch} is not executable", file=sys.stderr)
        return 2

    def version(binary: str) -> str:
        return subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.split("\n")[0]

    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(f"host: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"kernel {platform.release()}, load {os.getloadavg()[0]:.2f}")
    print(f"ketch: {ketch} ({version(ketch)}; python {python_of(ketch)})")
    print(f"runc:  {a.runc} ({version(a.runc)})")

    failed = False
    with tempfile.TemporaryDirectory(prefix="ketch-bench-") as tmp:
        base = Path(tmp)
        bundle = build_bundle(base, ketch)
        roots = {"ketch": base / "ketch-root", "runc": base / "runc-root"}
        print(f"bundle: busybox rootfs, process /bin/true; {a.runs} runs each, interleaved, "
              f"after {a.warmup} warm-up runs each")
        print_table("run --bundle B ID  (create + start + wait + delete)",
                    bench_run(ketch, a.runc, bundle, roots, a.runs, a.warmup))
        if not a.no_state:
            print_table("state ID  (a created container)",
                        bench_state(ketch, a.runc, bundle, roots, a.runs, a.warmup))

        python = python_of(ketch)
        floor = summary([timed([python, "-c", "pass"]) for _ in range(a.runs)])
        nosite = summary([timed([python, "-S", "-c", "pass"]) for _ in range(a.runs)])
        print(f"\ninterpreter start-up floor ({python}): 'python -c pass' median "
              f"{floor['median']:.1f}ms, 'python -S -c pass' median {nosite['median']:.1f}ms")
        root = str(roots["ketch"])
        cid = f"bench-imp-{uuid.uuid4().hex[:8]}"
        subprocess.run([ketch, "--root", root, "create", "--bundle", str(bundle), cid], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        try:
            rows = importtime(python, ketch, ["--root", root, "state", cid])
        finally:
            subprocess.run([ketch, "--root", root, "delete", "--force", cid],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        failed |= bool(report_imports("state", rows, a.top))
        rows = importtime(python, ketch, ["--root", root, "run", "--bundle", str(bundle),
                                          f"bench-imp-{uuid.uuid4().hex[:8]}"])
        failed |= bool(report_imports("run", rows, a.top))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Where a push's time goes: each request of ``ketch-image push`` and of skopeo, as the
registry saw it, in milliseconds from the tool's start.

Usage (as root, with the venv's interpreter; LAYOUT:TAG is an image to push, e.g. the
layout ``registry_transfer.py`` imports, or one of ``ketch-image import``)::

    .venv/bin/python benchmarks/registry_timeline.py LAYOUT:TAG [-n 2]

For each run and tool it starts a docker-registry (Debian package) on 127.0.0.1
with empty storage and JSON logs at ``info`` level, runs the push, and prints
every request the registry logged: when it ended (ms after the tool's
``exec``), its method, status, duration and URI, then the tool's total time.
The registry's clock and ours are the same host clock. The layer upload is the
request with the long duration; what comes before its start is the tool's
start-up and its preparatory requests.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import subprocess
import sys
import tempfile
import time

from registry_transfer import KETCH_IMAGE, Registry  # the benchmark beside this script


def push_timeline(tool: str, layout_tag: str, work: str) -> tuple[float, list[tuple]]:
    """Push ``layout_tag`` with ``tool`` to a fresh registry; return the total seconds and
    ``(end_s, method, status, duration, uri)`` per logged request, times from the start."""
    reg = Registry(tempfile.mkdtemp(prefix=f"reg-{tool}-", dir=work), request_log=True)
    try:
        dst = f"{reg.host}/bench/timeline:1"
        argv = ([KETCH_IMAGE, "push", "-q", layout_tag, dst] if tool == "ketch-image" else
                ["skopeo", "--insecure-policy", "copy", "-q", "--dest-tls-verify=false",
                 f"oci:{layout_tag}", f"docker://{dst}"])
        start = time.time()
        subprocess.run(argv, check=True, capture_output=True)
        total = time.time() - start
        reg.proc.terminate()  # its log complete before it is read
        reg.proc.wait(10)
        requests = []
        with open(reg.log_path) as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if "http.request.method" not in entry:
                    continue
                end = datetime.datetime.fromisoformat(entry["time"].replace("Z", "+00:00"))
                if end.timestamp() < start:
                    continue  # the readiness probe
                requests.append((end.timestamp() - start, entry["http.request.method"],
                                 entry.get("http.response.status", ""),
                                 entry.get("http.response.duration", ""),
                                 entry["http.request.uri"]))
    finally:
        reg.stop()
    return total, requests


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("layout_tag", metavar="LAYOUT:TAG")
    ap.add_argument("-n", "--runs", type=int, default=2)
    args = ap.parse_args()
    for tool in ("docker-registry", "skopeo"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found (make deps installs it)")
    work = tempfile.mkdtemp(prefix="ketch-timeline-")
    try:
        for i in range(args.runs):
            for tool in ("ketch-image", "skopeo") if i % 2 == 0 else ("skopeo", "ketch-image"):
                total, requests = push_timeline(tool, args.layout_tag, work)
                print(f"{tool}, run {i + 1}: {total * 1000:.0f} ms in all")
                for end, method, status, duration, uri in requests:
                    print(f"  ends {end * 1000:7.1f} ms  {method:5} {status} {duration:>14}  "
                          f"{uri[:70]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""conformance/compare.py KETCH_RESULTS RUNC_RESULTS

Join two ``results.txt`` files written by ``runtime-validation.sh`` (one for
ketch, one for runc, same suite) into one table: per test program the status
and the pass/fail/skip counts of each runtime, a mark where they differ, and
the totals. Exit status 0 unless a test that runc passes fails under ketch.
"""

from __future__ import annotations

import re
import sys

_LINE = re.compile(r"^(ok|fail|skip|not-ok)\s+(\S+)\s+pass=(\d+)\s+fail=(\d+)\s+skip=(\d+)",
                   re.IGNORECASE)
_STATUS = {"ok": "ok", "fail": "FAIL", "not-ok": "FAIL", "skip": "SKIP"}


def read(path: str) -> dict[str, tuple[str, int, int, int]]:
    """test name -> (status, passed, failed, skipped)."""
    rows = {}
    with open(path) as f:
        for line in f:
            m = _LINE.match(line)
            if m:
                status = _STATUS[m.group(1).lower()]
                rows[m.group(2)] = (status, int(m.group(3)), int(m.group(4)), int(m.group(5)))
    return rows


def cell(row: tuple[str, int, int, int] | None) -> str:
    return f"{row[0]:<4} {row[1]}/{row[2]}/{row[3]}" if row else "-"


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        sys.exit(__doc__)
    ketch, runc = read(argv[1]), read(argv[2])
    names = sorted(set(ketch) | set(runc))
    print(f"{'test':<36} {'ketch':<22} {'runc':<22}")
    regressions = []
    for name in names:
        k, r = ketch.get(name), runc.get(name)
        mark = ""
        if k and r and k[0] != r[0]:
            mark = "  <- ketch fails" if k[0] == "FAIL" else "  <- runc fails" if r[0] == "FAIL" else ""
            if r[0] != "FAIL" and k[0] == "FAIL":
                regressions.append(name)
        print(f"{name:<36} {cell(k):<22} {cell(r):<22}{mark}")
    for label, rows in (("ketch", ketch), ("runc", runc)):
        ok = sum(1 for v in rows.values() if v[0] != "FAIL")  # a skipped file did not fail
        p, f, s = (sum(v[i] for v in rows.values()) for i in (1, 2, 3))
        print(f"{label}: {ok} of {len(rows)} files ok; {p} passed, {f} failed, {s} skipped")
    if regressions:
        print("runc passes but ketch fails: " + " ".join(regressions))
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""ketch and runc 1.1.5 side by side on command lines that need no container:
exit status, the first line of stdout and the log line on stderr must agree
(timestamps masked, "runc"/"ketch" and their default roots made equal).
ketch runs in a fresh interpreter with the fake library, which knows no
containers, like runc with an empty --root."""

from __future__ import annotations

import re
import subprocess

import pytest

from .conftest import RUNC, run_subprocess

pytestmark = [pytest.mark.runc, pytest.mark.skipif(RUNC is None, reason="runc is not installed")]

ROOT = "@ROOT@"
CASES = [
    # argument counts (runc's checkArgs)
    "state", f"--root {ROOT} state a b", "start", "kill", "kill a b c", "delete", "list x",
    "spec x", "create", "run", f"--root {ROOT} state x -bogus", f"--root {ROOT} state -- -- x",
    f"--root {ROOT} kill x -- -- 9", f"--root {ROOT} delete x -- -f", f"--root {ROOT} delete y -f KILL",
    f"--root {ROOT} list -- -q", f"--root {ROOT} state - x", f"--root {ROOT} create --no-pivot x -b /b",
    # flag errors in commands (Go's flag package)
    "state --bogus x", "state -x x", f"--root {ROOT} kill nope -a -9", f"--root {ROOT} list -f",
    f"--root {ROOT} list -qf json", f"--root {ROOT} delete --force=yes x", f"--root {ROOT} state ---x",
    f"--root {ROOT} state -=x", f"--root {ROOT} create -b", f"--root {ROOT} create --pid-file",
    f"--root {ROOT} create -preserve-fds abc x",
    f"--root {ROOT} create --preserve-fds 99999999999999999999 x",
    f"--root {ROOT} create -b /b --bundle /c x", f"--root {ROOT} delete -f --force=false nope",
    # help
    "state -h", "state --help", "state -help", "state x --help", "h state", "help", "--help -v",
    "-h --help",
    # global flags
    "--bogus state x", "-x", "--root", "--criu", "--debug=maybe state x",
    "--log-format xml state x", "--log-format xml nope", "--log /nonexistent/d/l state x",
    "--log-format json --bogus",
    # unknown commands
    "nope", "nope x", "help nope",
    # reaching the (empty) state root
    f"--root {ROOT} state x", f"--root {ROOT} kill -all x", f"--root {ROOT} kill --all=true x",
    f"--root {ROOT} --log-format json state nope", f"--root {ROOT} kill x -a",
    f"--root {ROOT} kill -a x KILL", f"--root {ROOT} state -- x", f"--root {ROOT} state -- -x",
    f"--root {ROOT} state -", f"--root {ROOT} delete -force x", f"--root {ROOT} delete -f=false x",
    f"--root {ROOT} list -f yaml", f"--root {ROOT} list -q -f yaml", f"--root {ROOT} list -q --",
    f"--root {ROOT} list -f json", f"--root {ROOT} list", f"--root {ROOT} list -f json -f table",
    f"--root {ROOT} --systemd-cgroup --rootless=true state x",
]


def normalise(text: str, root: str) -> str:
    text = re.sub(r'time="[^"]*"', "time=T", text)
    text = re.sub(r'"time":"[^"]*"', '"time":T', text)
    text = text.replace(root, "ROOT").replace("/run/runc", "/run/X").replace("/run/ketch", "/run/X")
    return re.sub(r"\b(runc|ketch)\b", "X", text)


def outcome(p: subprocess.CompletedProcess, root: str) -> tuple[int, str, str]:
    first = p.stdout.split("\n", 1)[0]
    return p.returncode, normalise(first, root), normalise(p.stderr, root)


@pytest.mark.parametrize("case", CASES)
def test_same_as_runc(case: str, tmp_path) -> None:
    root = str(tmp_path / "root")
    args = case.replace(ROOT, root).split()
    theirs = subprocess.run(["runc", *args], executable=RUNC, capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    ours = run_subprocess(args, cwd=str(tmp_path))
    assert outcome(ours, root) == outcome(theirs, root)


def test_usage_screens_have_the_same_shape(tmp_path) -> None:
    """After "Incorrect Usage" both print the command's help: same section headings."""
    for verb in ("create", "run", "state", "kill", "delete", "list", "start", "spec"):
        theirs = subprocess.run(["runc", verb, "--help"], executable=RUNC, capture_output=True,
                                text=True, timeout=60).stdout
        ours = run_subprocess([verb, "--help"]).stdout
        heads = [ln for ln in theirs.splitlines() if ln in ("NAME:", "USAGE:", "DESCRIPTION:", "OPTIONS:")]
        assert [ln for ln in ours.splitlines() if ln in ("NAME:", "USAGE:", "DESCRIPTION:", "OPTIONS:")] \
            == heads, verb
        opts = lambda text: [ln.split("  ")[0].strip() for ln in text.split("OPTIONS:\n")[-1].splitlines()  # noqa: E731
                             if ln.startswith("   --")]
        assert opts(ours) == opts(theirs), verb
        assert normalise(ours.splitlines()[4], "\0") == normalise(theirs.splitlines()[4], "\0"), verb

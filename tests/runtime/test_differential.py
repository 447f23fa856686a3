"""Differential tests: one bundle, ``runc run`` and ``ketch run``, the same stdout,
stderr and exit code.

Each case is a container command plus an optional config edit and an optional
normaliser for output that legitimately differs run to run (mount ids, device
numbers, the bundle path).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import Runtime

SHARED_MKBUNDLE = "/work/shared/tools/mkbundle.sh"


def _no_pid_ns(config: dict) -> None:
    config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"] if n["type"] != "pid"]


def _user_1000(config: dict) -> None:
    config["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [10, 29]}


def _cwd(path: str) -> Callable[[dict], None]:
    def edit(config: dict) -> None:
        config["process"]["cwd"] = path
    return edit


def _env(config: dict) -> None:
    config["process"]["env"] = [*config["process"]["env"], "FOO=bar baz", "EMPTY=", "HOME=/root"]


def _readonly(flag: bool) -> Callable[[dict], None]:
    def edit(config: dict) -> None:
        config["root"]["readonly"] = flag
    return edit


def _hostname(config: dict) -> None:
    config["hostname"] = "diff-host"


def _seccomp_no_mkdir(config: dict) -> None:
    config["root"]["readonly"] = False
    config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
    }


def _custom_caps(config: dict) -> None:
    """A capability list unlike the default: sets differ from one another (runtime-spec
    config.md "capabilities"), no_new_privs on."""
    config["process"]["noNewPrivileges"] = True
    config["process"]["capabilities"] = {
        "bounding": ["CAP_CHOWN", "CAP_NET_RAW", "CAP_SYS_ADMIN", "CAP_KILL", "CAP_SETPCAP"],
        "effective": ["CAP_CHOWN", "CAP_SYS_ADMIN"],
        "permitted": ["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_KILL"],
        "inheritable": ["CAP_KILL"],
        "ambient": ["CAP_KILL"],
    }


def _custom_caps_user(config: dict) -> None:
    """The same for uid 1000: keep-caps across the uid switch, ambient raised after it."""
    _custom_caps(config)
    config["process"]["user"] = {"uid": 1000, "gid": 1000}


_OPT_NUM = re.compile(r"\b(shared|master|propagate_from):\d+")


def normalise_mountinfo(out: str, bundle: Path) -> str:
    """Drop mount ids, parent ids and major:minor; the rootfs' host path becomes
    ``<rootfs>``; peer-group numbers become N (the tags themselves are kept)."""
    lines = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 6:
            lines.append(line)
            continue
        rest = " ".join(fields[3:])
        rest = rest.replace(str(bundle / "rootfs"), "<rootfs>").replace(str(bundle), "<bundle>")
        lines.append(_OPT_NUM.sub(r"\1:N", rest))
    return "\n".join(lines)


def sort_lines(out: str, _bundle: Path) -> str:
    return "\n".join(sorted(out.splitlines()))


@dataclass
class Case:
    id: str
    args: list[str]
    edit: Callable[[dict], None] | None = None
    normalise: Callable[[str, Path], str] | None = None
    expect_rc: int | None = None  # runc's exit code, asserted so the case means what it says
    bug: str | None = None  # a known ketch difference (strict xfail until fixed)


CASES = [
    Case("echo", ["echo", "hi"], expect_rc=0),
    Case("exit3", ["sh", "-c", "exit 3"], expect_rc=3),
    Case("stderr", ["sh", "-c", "echo out; echo err >&2; exit 5"], expect_rc=5),
    Case("id", ["id"], expect_rc=0),
    Case("hostname", ["hostname"], expect_rc=0),
    Case("hostname-set", ["hostname"], _hostname, expect_rc=0),
    Case("nonewprivs", ["sh", "-c", "cat /proc/self/status | grep NoNewPrivs"], expect_rc=0),
    Case("ls-dev", ["ls", "/dev"], expect_rc=0),
    Case("ls-l-dev", ["sh", "-c", "ls -ln /dev | sed 1d | awk '{print $1, $3, $4, $5, $6, $NF}'"],
         expect_rc=0),
    Case("caps", ["grep", "Cap", "/proc/self/status"], expect_rc=0),
    Case("caps-nnp-default", ["grep", "-E", "^(Cap|NoNewPrivs)", "/proc/self/status"],
         expect_rc=0),
    Case("caps-custom", ["grep", "-E", "^(Cap|NoNewPrivs)", "/proc/self/status"], _custom_caps,
         expect_rc=0),
    Case("caps-custom-user", ["grep", "-E", "^(Cap|NoNewPrivs)", "/proc/self/status"],
         _custom_caps_user, expect_rc=0),
    # PID 1 of a pid namespace cannot be SIGKILLed from inside: sh survives its own kill -9
    Case("kill9-self-pid1", ["sh", "-c", "kill -9 $$; echo survived"], expect_rc=0),
    # without a pid namespace sh is not an init and dies of the signal: 128+9
    Case("kill9-self-no-pidns", ["sh", "-c", "kill -9 $$"], _no_pid_ns, expect_rc=137),
    Case("mountinfo", ["cat", "/proc/self/mountinfo"], normalise=normalise_mountinfo, expect_rc=0),
    Case("env", ["env"], _env, normalise=sort_lines, expect_rc=0),
    Case("cwd", ["pwd"], _cwd("/etc"), expect_rc=0),
    Case("cwd-missing", ["pwd"], _cwd("/made/by/runtime"), expect_rc=0),
    Case("user-1000", ["id"], _user_1000, expect_rc=0),
    Case("user-1000-status", ["grep", "-E", "^(Uid|Gid|Groups|Cap)", "/proc/self/status"],
         _user_1000, expect_rc=0),
    Case("readonly-root", ["touch", "/x"], _readonly(True), expect_rc=1),
    Case("readonly-false", ["sh", "-c", "touch /x && echo wrote"], _readonly(False), expect_rc=0),
    Case("ps", ["ps", "-o", "pid,args"], expect_rc=0),
    # a seccomp filter refusing mkdir(2) with EPERM (runc's default errno)
    Case("seccomp-errno", ["sh", "-c", "mkdir /tmp/d && echo made; exit 0"], _seccomp_no_mkdir,
         expect_rc=0),
    Case("rlimits", ["sh", "-c", "ulimit -n; ulimit -Hn"], expect_rc=0),
    Case("umask-mounts", ["sh", "-c", "umask; stat -c '%a %U %G' /dev/null /dev/pts /dev/shm /proc /sys"],
         expect_rc=0),
]


def run_both(runc: Runtime, ketch: Runtime, bundle: Path, timeout: float = 30):
    """``run`` the bundle under both; each result's output has its container id
    replaced by ``<id>`` (the ids differ, cgroup paths name them)."""
    results = []
    for rt in (runc, ketch):
        cid = rt.new_id("diff")
        res = rt("run", "--bundle", str(bundle), cid, timeout=timeout)
        res.out = res.out.replace(cid, "<id>")
        res.err = res.err.replace(cid, "<id>")
        results.append(res)
    return results


@pytest.mark.runc
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_same_as_runc(case: Case, runc: Runtime, ketch: Runtime, make_bundle, known_bug) -> None:
    if case.bug:
        known_bug(case.bug)
    bundle = make_bundle(case.args, edit=case.edit)
    r, k = run_both(runc, ketch, bundle)
    if case.expect_rc is not None:
        assert r.rc == case.expect_rc, f"runc itself did not behave as expected:\n{r}"
    norm = case.normalise or (lambda out, _b: out)
    assert (k.rc, norm(k.out, bundle), k.err) == (r.rc, norm(r.out, bundle), r.err), \
        f"ketch differs from runc\nrunc:  {r}\nketch: {k}"


@pytest.mark.runc
def test_ps_pid1_is_the_command(ketch: Runtime, make_bundle) -> None:
    bundle = make_bundle(["ps", "-o", "pid,args"])
    k = ketch("run", "--bundle", str(bundle), ketch.new_id())
    assert k.rc == 0, str(k)
    rows = [line.split(None, 1) for line in k.out.splitlines()[1:]]
    assert rows == [["1", "ps -o pid,args"]], str(k)


@pytest.mark.runc
def test_stdin_is_passed(runc: Runtime, ketch: Runtime, make_bundle) -> None:
    bundle = make_bundle(["sh", "-c", "read a; echo got:$a"])
    r = runc("run", "--bundle", str(bundle), runc.new_id(), input="hello\n")
    k = ketch("run", "--bundle", str(bundle), ketch.new_id(), input="hello\n")
    assert r.out == "got:hello\n"
    assert (k.rc, k.out, k.err) == (r.rc, r.out, r.err)


@pytest.mark.runc
@pytest.mark.skipif(not os.path.exists(SHARED_MKBUNDLE), reason="/work/shared absent")
def test_shared_mkbundle(runc: Runtime, ketch: Runtime, tmp_path: Path) -> None:
    """The bundle from the shared tools' mkbundle.sh (runc spec's config) runs the same."""
    bundle = tmp_path / "shared-bundle"
    subprocess.run([SHARED_MKBUNDLE, str(bundle), "/bin/echo", "hi"], check=True,
                   capture_output=True, timeout=60, env={**os.environ, "SPEC_RUNTIME": shutil.which("runc") or "runc"})
    r, k = run_both(runc, ketch, bundle)
    assert (r.rc, r.out) == (0, "hi\n"), str(r)
    assert (k.rc, k.out, k.err) == (r.rc, r.out, r.err), f"runc:  {r}\nketch: {k}"

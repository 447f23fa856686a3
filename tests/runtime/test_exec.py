"""``exec`` into a running container, side by side with runc (issue 3 acceptance 2)."""

from __future__ import annotations

import os
import time

import pytest

from .conftest import Runtime

SLEEP = ["sleep", "1000"]

# name -> (exec flags, command, something the output must contain)
CASES = {
    "id": ([], ["id"], "uid=0(root)"),
    "cgroup": ([], ["cat", "/proc/self/cgroup"], "pids:/ID"),
    "cwd": (["--cwd", "/tmp"], ["pwd"], "/tmp"),
    "env": (["-e", "FOO=bar", "-e", "X=1"], ["sh", "-c", "echo $FOO $X; env | sort"], "bar 1"),
    "user": (["-u", "1000:1000", "-g", "5"], ["sh", "-c", "id; grep Cap /proc/self/status"],
             "gid=1000(user) groups=5"),
    "fds": ([], ["ls", "/proc/self/fd"], "0\n1\n2\n"),
    "caps": (["--cap", "CAP_SYS_ADMIN"], ["grep", "CapEff", "/proc/self/status"], "CapEff"),
    "status": ([], ["sh", "-c", "echo out; exit 7"], "out"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_exec_same_as_runc(name: str, runc: Runtime, ketch: Runtime, make_bundle) -> None:
    flags, cmd, must_contain = CASES[name]
    bundle = make_bundle(SLEEP)
    seen = {}
    for rt in (runc, ketch):
        cid = rt.new_id("exec")
        assert rt("run", "-d", "-b", str(bundle), cid).rc == 0
        r = rt("exec", *flags, cid, *cmd)
        # both runtimes name the container's cgroup after its id
        seen[rt.name] = (r.rc, r.out.replace(cid, "ID"))
        rt("delete", "-f", cid)
    assert must_contain in seen["runc"][1], seen  # the case really exercises something
    assert seen["ketch"] == seen["runc"], seen


def test_exec_joins_every_namespace_of_the_container(ketch: Runtime, make_bundle) -> None:
    bundle = make_bundle(SLEEP)
    cid = ketch.new_id("ns")
    assert ketch("run", "-d", "-b", str(bundle), cid).rc == 0
    pid = ketch.state(cid)["pid"]
    names = ["ipc", "mnt", "net", "pid", "uts"]
    inside = ketch("exec", cid, "sh", "-c", " ".join(f"readlink /proc/self/ns/{n};" for n in names))
    expected = "".join(os.readlink(f"/proc/{pid}/ns/{n}") + "\n" for n in names)
    ketch("delete", "-f", cid)
    assert inside.rc == 0 and inside.out == expected
    assert expected != "".join(os.readlink(f"/proc/self/ns/{n}") + "\n" for n in names)


def test_exec_failures_exit_255_like_runc(runc: Runtime, ketch: Runtime, make_bundle) -> None:
    bundle = make_bundle(SLEEP)
    seen = {}
    for rt in (runc, ketch):
        cid = rt.new_id("execfail")
        assert rt("run", "-d", "-b", str(bundle), cid).rc == 0
        missing = rt("exec", cid, "/nope")
        empty = rt("exec", cid)
        rt("kill", cid, "KILL")
        time.sleep(0.3)
        stopped = rt("exec", cid, "true")
        seen[rt.name] = [(r.rc, rt.norm(r.msg)) for r in (missing, empty, stopped)]
        rt("delete", "-f", cid)
    assert [rc for rc, _ in seen["runc"]] == [255, 255, 255]
    assert seen["ketch"] == seen["runc"], seen


def test_exec_pid_file_failure_leaves_no_process(runc: Runtime, ketch: Runtime, make_bundle,
                                                 tmp_path) -> None:
    """A ``--pid-file`` that cannot be written fails the exec (255, Go's open/rename
    wording) and the started process is killed, detached or not (ketch left it running)."""
    bundle = make_bundle(SLEEP)
    (tmp_path / "adir").mkdir()
    seen = {}
    for rt in (runc, ketch):
        cid = rt.new_id("pidf")
        assert rt("run", "-d", "-b", str(bundle), cid).rc == 0
        runs = [rt("exec", "-d", "--pid-file", str(tmp_path / "missing" / "p"), cid,
                   "sleep", "4321"),
                rt("exec", "--pid-file", str(tmp_path / "adir"), cid, "sleep", "4322")]
        time.sleep(0.2)
        left = [line for line in rt("ps", cid).out.splitlines() if "sleep 432" in line]
        seen[rt.name] = ([(r.rc, r.msg) for r in runs], left)
        rt("delete", "-f", cid)
    assert seen["ketch"] == seen["runc"], seen
    (rc1, msg1), (rc2, msg2) = seen["ketch"][0]
    assert rc1 == rc2 == 255 and seen["ketch"][1] == []
    assert msg1 == f"exec failed: open {tmp_path}/missing/.p: no such file or directory"
    assert msg2 == f"exec failed: rename {tmp_path}/.adir {tmp_path}/adir: file exists"


def test_exec_cwd_failures_in_runcs_words(runc: Runtime, ketch: Runtime, make_bundle) -> None:
    """``exec --cwd`` to a missing directory or a file: exit 255 and runc's message
    (Go's quoting, lower-case errno text; ketch printed Python's repr and 'No such')."""
    bundle = make_bundle(SLEEP)
    seen = {}
    for rt in (runc, ketch):
        cid = rt.new_id("cwdfail")
        assert rt("run", "-d", "-b", str(bundle), cid).rc == 0
        seen[rt.name] = [(r.rc, r.msg) for r in (rt("exec", "--cwd", "/nonexist", cid, "true"),
                                                 rt("exec", "--cwd", "/etc/passwd", cid, "true"))]
        rt("delete", "-f", cid)
    assert seen["ketch"] == seen["runc"], seen
    assert seen["ketch"][0] == (255, 'exec failed: unable to start container process: chdir to '
                                     'cwd ("/nonexist") set in config.json failed: no such file '
                                     'or directory')

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

def test_exec_lsm_flags_like_runc(runc: Runtime, ketch: Runtime, make_bundle) -> None:
    """``--apparmor`` and ``--process-label`` on a host without AppArmor/SELinux: refused,
    exit 255, nothing run. A label is refused in runc's words; a profile gets create's
    message (runc only fails when its write to /proc/self/attr/exec is refused)."""
    if os.path.exists("/sys/fs/selinux/enforce") or os.path.exists(
            "/sys/module/apparmor/parameters/enabled"):
        pytest.skip("host has an LSM: the results depend on its policy")
    bundle = make_bundle(SLEEP)
    seen = {}
    for rt in (runc, ketch):
        cid = rt.new_id("lsm")
        assert rt("run", "-d", "-b", str(bundle), cid).rc == 0
        label = rt("exec", "--process-label", "system_u:system_r:container_t:s0", cid, "echo", "ran")
        profile = rt("exec", "--apparmor", "unconfined-x", cid, "echo", "ran")
        seen[rt.name] = [(r.rc, r.out) for r in (label, profile)] + [rt.norm(label.msg)]
        rt("delete", "-f", cid)
    assert seen["runc"][:2] == [(255, ""), (255, "")], seen
    assert seen["ketch"] == seen["runc"], seen


def test_exec_paused_needs_ignore_paused_like_runc(runc: Runtime, ketch: Runtime,
                                                   make_bundle) -> None:
    """Without the flag: runc's refusal; with it the process starts once resumed."""
    import subprocess

    bundle = make_bundle(SLEEP)
    seen = {}
    for rt in (runc, ketch):
        cid = rt.new_id("paused")
        assert rt("run", "-d", "-b", str(bundle), cid).rc == 0
        assert rt("pause", cid).rc == 0
        refused = rt("exec", cid, "true")
        # the exec'd process joins the frozen cgroup: it waits there until resume
        waiting = subprocess.Popen(rt.argv("exec", "--ignore-paused", cid, "echo", "thawed"),
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        time.sleep(1)
        still_waiting = waiting.poll() is None
        assert rt("resume", cid).rc == 0
        out, _ = waiting.communicate(timeout=20)
        seen[rt.name] = (refused.rc, rt.norm(refused.msg), still_waiting, waiting.returncode, out)
        rt("delete", "-f", cid)
    assert seen["runc"][1].endswith("(use --ignore-paused to override)"), seen
    assert seen["runc"][2:] == (True, 0, "thawed\n"), seen
    assert seen["ketch"] == seen["runc"], seen


def _sub_cgroup_cases(rt: Runtime, cid: str) -> list[tuple[int, str]]:
    """exec --cgroup: missing sub-cgroups, bad arguments, then joined ones."""
    import re

    from ketch.runtime.cgroups.fs import hierarchies

    def one(*flags: str) -> tuple[int, str]:
        r = rt("exec", *flags, cid, "cat", "/proc/self/cgroup")
        # the joining pid is in runc's message
        text = re.sub(r"\b[0-9]+\b(?= to cgroups|: openat2)", "PID", rt.norm(r.msg))
        return r.rc, (r.out if r.rc == 0 else text).replace(cid, "ID")

    out = [one("--cgroup", "pids:sub"), one("--cgroup", "nosuch:sub"),
           one("--cgroup", "a:b:c"), one("--cgroup", "pids:x", "--cgroup", "y"),
           one("--cgroup", "pids:a/../.."), one("--cgroup", "pids:")]
    pid = str(rt.state(cid)["pid"])
    mine = [h.host_path(h.own_cgroup(pid)) for h in hierarchies()]
    for d in mine:
        os.mkdir(os.path.join(d, "sub"))
        for name in ("cpuset.cpus", "cpuset.mems"):  # a new v1 cpuset starts empty
            if os.path.exists(os.path.join(d, name)):
                with open(os.path.join(d, name)) as src, open(os.path.join(d, "sub", name), "w") as dst:
                    dst.write(src.read())
    try:
        out += [one("--cgroup", "pids,memory:sub"), one("--cgroup", "/sub")]
    finally:
        for d in mine:
            os.rmdir(os.path.join(d, "sub"))
    return out


def test_exec_into_sub_cgroups_like_runc(runc: Runtime, ketch: Runtime, make_bundle) -> None:
    bundle = make_bundle(SLEEP)
    seen = {}
    for rt in (runc, ketch):
        cid = rt.new_id("subcg")
        assert rt("run", "-d", "-b", str(bundle), cid).rc == 0
        seen[rt.name] = _sub_cgroup_cases(rt, cid)
        rt("delete", "-f", cid)
    joined = seen["runc"][-2:]
    assert all(rc == 0 for rc, _ in joined), seen
    assert ":/ID/sub\n" in joined[1][1] and "pids:/ID/sub" in joined[0][1], seen
    assert seen["ketch"] == seen["runc"], seen


def test_delete_removes_sub_cgroups_like_runc(runc: Runtime, ketch: Runtime,
                                              make_bundle) -> None:
    """A sub-cgroup made below the container's (for ``exec --cgroup`` or by a
    process inside) goes with the container on delete, as with runc (ketch's rmdir
    of the container's cgroup failed and left it behind)."""
    from ketch.runtime.cgroups.fs import hierarchies

    from .conftest import cgroup_leftovers

    bundle = make_bundle(SLEEP)
    seen = {}
    for rt in (runc, ketch):
        cid = rt.new_id("subdel")
        assert rt("run", "-d", "-b", str(bundle), cid).rc == 0
        pid = str(rt.state(cid)["pid"])
        for h in hierarchies():
            os.makedirs(os.path.join(h.host_path(h.own_cgroup(pid)), "sub", "deeper"))
        assert rt("delete", "-f", cid).rc == 0
        seen[rt.name] = cgroup_leftovers(cid)
    assert seen == {"runc": [], "ketch": []}, seen


@pytest.mark.parametrize("path", ["bin", "bin:/bin", "."])
def test_relative_path_entries_refused_like_runc(path: str, runc: Runtime, ketch: Runtime,
                                                 make_bundle) -> None:
    """Go's exec.ErrDot: a program found through a PATH entry relative to the cwd
    is not run; in ``exec`` and in ``run`` alike."""
    exec_bundle = make_bundle(SLEEP)
    run_bundle = make_bundle(["echo", "ran"],
                             edit=lambda c: c["process"].update(env=[f"PATH={path}"], cwd="/"))
    seen = {}
    for rt in (runc, ketch):
        cid = rt.new_id("errdot")
        assert rt("run", "-d", "-b", str(exec_bundle), cid).rc == 0
        ex = rt("exec", "-e", f"PATH={path}", "--cwd", "/", cid, "echo", "ran")
        ex_cwd = rt("exec", "-e", "PATH=.", "--cwd", "/bin", cid, "echo", "ran")
        rt("delete", "-f", cid)
        run = rt("run", "-b", str(run_bundle), rt.new_id("errdotrun"))
        seen[rt.name] = [(r.rc, r.out, rt.norm(r.msg)) for r in (ex, ex_cwd, run)]
    assert seen["runc"][1][2].endswith(
        'exec: "echo": cannot run executable found relative to current directory'), seen
    assert seen["ketch"] == seen["runc"], seen


def test_exec_into_a_container_created_with_a_label_still_works(ketch: Runtime, make_bundle) -> None:
    """Without SELinux, create only warns about ``process.selinuxLabel``; exec, which
    starts from that process, must not then refuse the same label."""
    if os.path.exists("/sys/fs/selinux/enforce"):
        pytest.skip("host has SELinux: create refuses labels")
    bundle = make_bundle(SLEEP, edit=lambda c: c["process"].update(selinuxLabel="x_u:x_r:x_t:s0"))
    cid = ketch.new_id("ownlabel")
    assert ketch("run", "-d", "-b", str(bundle), cid).rc == 0
    own = ketch("exec", cid, "echo", "ok")
    other = ketch("exec", "--process-label", "y_u:y_r:y_t:s0", cid, "echo", "ok")
    ketch("delete", "-f", cid)
    assert (own.rc, own.out) == (0, "ok\n"), own
    assert other.rc == 255 and "selinux is disabled" in other.msg, other

"""The known classes of runc/crun container escapes, each a regression test (issue 6).

Every test builds the hostile input the attack needs (a planted symlink, a fake
``/proc``, a racing volume, a probing container process), says in its
docstring what a naive runtime would do with it, and checks that ketch
refuses or stays inside the container. Where runc 1.1.5 is the reference for
the observable result (``exec --user``, env errors) the test runs both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from .conftest import Runtime, wait_until
from .test_process import ConsoleReceiver

SLEEP = ["sleep", "1000"]


def _no_mount(dest: str):
    def edit(c: dict) -> None:
        c["mounts"] = [m for m in c["mounts"] if m["destination"] != dest]
    return edit


def _host_dir(tag: str) -> Path:
    """An empty host directory that a naive runtime would write into."""
    path = Path("/tmp") / f"ketch-escape-{tag}-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    return path


# -- 1. /proc/self/exe overwrite (CVE-2019-5736 class) ----------------------------------------

# Runs inside the container: scan every process for a handle on the runtime's
# executable (the host's Python). A readable /proc/PID/exe or /proc/PID/fd of a
# ketch process is what the CVE-2019-5736 exploit opens (O_PATH, then reopened
# for writing once the runtime exits); we try read and read-write opens only and
# never write, so a failure here cannot damage the host interpreter.
PROBE = r"""
end=$(( $(date +%s) + {seconds} ))
while [ $(date +%s) -lt $end ]; do
  for p in /proc/[0-9]*; do
    [ "$p" = /proc/$$ ] && continue
    exe=$(readlink $p/exe 2>/dev/null) || continue
    case "$exe" in
      *python*|*ketch*)
        echo "LEAK exe $p $exe"
        (exec 3<"$p/exe") 2>/dev/null && echo "LEAK open-read $p"
        (exec 3<>"$p/exe") 2>/dev/null && echo "LEAK open-rdwr $p"
        for f in $p/fd/*; do
          readlink "$f" >/dev/null 2>&1 && echo "LEAK fd $f"
        done ;;
    esac
  done
done
echo probe-done
"""


def _probe_bundle(make_bundle, seconds: int) -> Path:
    return make_bundle(["sh", "-c", PROBE.format(seconds=seconds)])


def test_exec_never_exposes_the_runtime_executable(ketch: Runtime, make_bundle,
                                                   tmp_path: Path) -> None:
    """Escape 1 during ``exec``: a container process watches /proc while ``ketch exec``
    enters the container. The entering process runs the host's Python until its
    execve; a naive runtime leaves it dumpable, so root in the container can
    readlink/open its /proc/PID/exe and /proc/PID/fd (same uid, no ptrace
    capability needed). ketch turns non-dumpable before joining any namespace."""
    bundle = _probe_bundle(make_bundle, seconds=6)
    cid = ketch.new_id("exe")
    log = tmp_path / "probe.log"
    with open(log, "w") as out:
        p = subprocess.Popen(ketch.argv("run", "-b", str(bundle), cid), stdout=out,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            assert wait_until(lambda: ketch.status(cid) == "running", timeout=10)
            for _ in range(12):
                r = ketch("exec", cid, "sh", "-c", "echo in; sleep 0.05")
                assert r.rc == 0, r
        finally:
            assert p.wait(timeout=30) == 0
    text = log.read_text()
    assert "probe-done" in text, text
    assert "LEAK" not in text, text


def test_created_init_never_exposes_the_runtime_executable(ketch: Runtime,
                                                           make_bundle) -> None:
    """Escape 1 during ``create``: between create and start the container's init is
    ketch's Python, PID 1 of the container. A naive runtime leaves it dumpable and
    a process exec'd into the created container could open /proc/1/exe (the host
    interpreter) or follow /proc/1/fd/N (the runtime's state directory fd)."""
    bundle = make_bundle(["true"])
    cid = ketch.new_id("exe-created")
    assert ketch("create", "-b", str(bundle), cid).rc == 0
    init = ketch.state(cid)["pid"]
    assert "python" in os.readlink(f"/proc/{init}/exe")  # the case means something
    r = ketch("exec", cid, "sh", "-c",
              "readlink /proc/1/exe && echo LEAK-exe; (exec 3</proc/1/exe) && echo LEAK-open;"
              # the fd numbers can be listed (the directory is root's), never followed
              "for f in /proc/1/fd/*; do readlink $f && echo LEAK-fd; (exec 3<$f) && "
              "echo LEAK-fd-open; done; echo checked")
    ketch("delete", "-f", cid)
    assert r.rc == 0 and "checked" in r.out, r
    assert "LEAK" not in r.out, r
    assert "ermission denied" in r.err, r


# -- 2. leaked fd as cwd (CVE-2024-21626 class) -----------------------------------------------


def test_exec_cwd_through_a_runtime_fd_is_refused(ketch: Runtime, make_bundle) -> None:
    """Escape 2 for ``exec --cwd /proc/self/fd/N``: a runtime that lets one of its own
    directory fds (state dir, cgroup dir, namespace dir) reach the process would
    chdir onto the host. ketch closes every fd but stdio before entering, and
    checks getcwd(3) after chdir: it must fail or stay in the container."""
    bundle = make_bundle(SLEEP)
    cid = ketch.new_id("execcwd")
    assert ketch("run", "-d", "-b", str(bundle), cid).rc == 0
    try:
        for fd in range(3, 10):
            r = ketch("exec", "--cwd", f"/proc/self/fd/{fd}", cid, "sh", "-c", "pwd; ls -a")
            # nothing of ours is open there: the chdir fails (ENOENT, or ENOTDIR on a socket)
            assert r.rc == 255 and "chdir to cwd" in r.msg, f"fd {fd}: {r}"
            assert "state.json" not in r.out and "exec.fifo" not in r.out, f"fd {fd}: {r}"
        # the same process sees only stdio (and ls' own directory fd)
        r = ketch("exec", cid, "ls", "/proc/self/fd")
        assert r.rc == 0 and sorted(map(int, r.out.split())) == [0, 1, 2, 3], r
    finally:
        ketch("delete", "-f", cid)


def test_a_host_directory_fd_handed_over_is_not_a_way_out(ketch: Runtime, make_bundle) -> None:
    """Escape 2 with the fd passed on purpose: ``--preserve-fds 1`` hands the container
    a directory fd of the host as fd 3 and ``cwd`` (or ``exec --cwd``) is
    /proc/self/fd/3. The chdir itself succeeds, onto the host; a runtime without the
    getcwd(2) check then execs the process there. ketch refuses, for run and exec."""
    host = _host_dir("pfd")
    (host / "host-marker").write_text("x")
    try:
        bundle = make_bundle(["sh", "-c", "pwd; ls"],
                             edit=lambda c: c["process"].update(cwd="/proc/self/fd/3"))
        wrap = ["bash", "-c", f'exec 3<"{host}"; exec "$@"', "wrap"]
        p = subprocess.run([*wrap, *ketch.argv("run", "--preserve-fds", "1", "-b", str(bundle),
                                               ketch.new_id("pfdcwd"))],
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert p.returncode != 0 and "host-marker" not in p.stdout, p
        assert "possible container breakout detected" in p.stderr, p
        bundle = make_bundle(SLEEP)
        cid = ketch.new_id("pfdexec")
        assert ketch("run", "-d", "-b", str(bundle), cid).rc == 0
        try:
            p = subprocess.run([*wrap, *ketch.argv("exec", "--preserve-fds", "1", "--cwd",
                                                   "/proc/self/fd/3", cid, "ls")],
                               capture_output=True, text=True, timeout=30,
                               stdin=subprocess.DEVNULL)
        finally:
            ketch("delete", "-f", cid)
        assert p.returncode == 255 and "host-marker" not in p.stdout, p
        assert "possible container breakout detected" in p.stderr, p
    finally:
        shutil.rmtree(host)


# -- 3. mount destination swapped for a symlink (CVE-2021-30465 class) ------------------------


def test_mount_destination_symlink_to_host_stays_in_rootfs(ketch: Runtime,
                                                          make_bundle) -> None:
    """Escape 3, static: the image makes the mount target's parent a symlink to a host
    path. A runtime that joins rootfs + destination and lets the host kernel follow
    the link creates and mounts on the host; ketch resolves in-root (the link is
    re-rooted) and mounts through /proc/self/fd/N."""
    host = _host_dir("mntdst")
    try:
        name = f"made-{uuid.uuid4().hex[:6]}"

        def edit(c: dict) -> None:
            c["mounts"].append({"destination": f"/data/{name}", "type": "tmpfs",
                                "source": "tmpfs", "options": ["size=1m"]})

        bundle = make_bundle(["sh", "-c", f"grep ' /data/{name} \\| {host}/{name} ' "
                              "/proc/self/mountinfo | wc -l"], edit=edit)
        (bundle / "rootfs" / "data").symlink_to(str(host))
        r = ketch("run", "-b", str(bundle), ketch.new_id("mntdst"))
        assert r.rc == 0 and r.out.strip() == "1", r
        assert list(host.iterdir()) == [], "created on the host"
        assert (bundle / "rootfs" / str(host).lstrip("/") / name).is_dir()
    finally:
        shutil.rmtree(host)


def test_mount_destination_raced_in_a_shared_volume(ketch: Runtime, make_bundle,
                                                   tmp_path: Path) -> None:
    """Escape 3, raced: a volume shared with another container (here: a host thread)
    holds the destination's parent, which flips between a directory and a symlink
    to a host path while containers are created. A runtime that checks the path and
    mounts it later by name can be redirected between the two (runc < 1.0.0-rc95);
    ketch opens the destination once, in-root, and mounts that fd."""
    host = _host_dir("race")
    volume = tmp_path / "volume"
    volume.mkdir()
    stop = threading.Event()

    def flip() -> None:
        link = volume / "link"
        while not stop.is_set():
            try:
                link.mkdir()
                link.rmdir()
                link.symlink_to(str(host))
                link.unlink()
            except OSError:
                pass

    def edit(c: dict) -> None:
        c["mounts"] += [
            {"destination": "/vol", "type": "bind", "source": str(volume),
             "options": ["rbind", "rw"]},
            {"destination": "/vol/link/target", "type": "tmpfs", "source": "tmpfs",
             "options": ["size=1m"]},
        ]

    bundle = make_bundle(["true"], edit=edit)
    flipper = threading.Thread(target=flip, daemon=True)
    flipper.start()
    try:
        for _ in range(8):
            r = ketch("run", "-b", str(bundle), ketch.new_id("race"))
            # either outcome is fine (the link was a dir, or a re-rooted symlink whose
            # target is created in the rootfs, or the flip removed it mid-walk) ...
            assert r.rc in (0, 1), r
            assert "Traceback" not in r.err, r
    finally:
        stop.set()
        flipper.join(5)
    # ... but nothing ever lands on the host
    assert list(host.iterdir()) == [], "created on the host"
    shutil.rmtree(host)


def test_bind_source_swapped_in_a_shared_volume(ketch: Runtime, make_bundle,
                                                tmp_path: Path) -> None:
    """Escape 3, the source side: a shared volume's entry that a bind mount uses
    as its source flips between a directory and a regular file while containers
    are created. A runtime that checks the source by path (is it a directory?
    create the mount point to match) and then mounts it by path again can see
    two different objects: the mount then fails with "Not a directory" or lands
    a directory over a file. ketch opens the source once and both checks and
    mounts that fd, so each container gets a consistent mount or a clean
    "no such file" while the entry is missing. The window is too small for this
    stress run to catch a naive runtime reliably; the unit test
    ``test_bind_source_swapped_between_check_and_mount`` forces the swap into it."""
    volume = tmp_path / "volume"
    volume.mkdir()
    entry = volume / "entry"
    stop = threading.Event()

    def flip() -> None:
        while not stop.is_set():
            try:
                entry.mkdir()
                (entry / "in-dir").write_text("d")
                shutil.rmtree(entry)
                entry.write_text("f")
                entry.unlink()
            except OSError:
                pass

    def edit(c: dict) -> None:
        c["mounts"].append({"destination": "/src", "type": "bind", "source": str(entry),
                            "options": ["bind"]})

    # a new bundle each time: a mount point left by an earlier run keeps its type
    bundles = [make_bundle(["sh", "-c", "if [ -d /src ]; then ls /src; else cat /src; fi"],
                           edit=edit) for _ in range(12)]
    flipper = threading.Thread(target=flip, daemon=True)
    flipper.start()
    outcomes = set()
    try:
        for bundle in bundles:
            r = ketch("run", "-b", str(bundle), ketch.new_id("srcrace"))
            assert "Traceback" not in r.err and "Not a directory" not in r.err, r
            assert r.rc in (0, 1), r
            if r.rc == 1:
                assert "no such file or directory" in r.msg.lower(), r
            else:
                # what is mounted is what was checked: a directory shows its file
                assert r.out in ("in-dir\n", "", "f", "d"), r
            outcomes.add(r.rc)
    finally:
        stop.set()
        flipper.join(5)


# -- 4. /dev tricks ---------------------------------------------------------------------------


def test_dev_null_symlink_to_procfs_is_refused(ketch: Runtime, make_bundle) -> None:
    """Escape 4a: the image's ``dev/null`` is a symlink to a procfs file and the config
    has maskedPaths. A runtime that keeps the existing node and masks with
    ``/dev/null`` binds the procfs file over every masked path (unmasking them,
    CVE-2025-31133); ketch refuses the symlink before anything runs."""
    bundle = make_bundle(["cat", "/proc/kcore"], edit=_no_mount("/dev"))
    (bundle / "rootfs" / "dev" / "null").symlink_to("/proc/sys/kernel/core_pattern")
    cid = ketch.new_id("devnull")
    r = ketch("run", "-b", str(bundle), cid)
    assert r.rc == 1 and "/dev/null" in r.msg and "symlink" in r.msg, r
    assert ketch.state(cid) is None


def test_dev_console_symlink_is_not_mounted_through(ketch: Runtime, make_bundle,
                                                    tmp_path: Path) -> None:
    """Escape 4b: ``dev/console`` pre-created as a symlink, ``terminal: true``. A runtime
    that creates and binds ``/dev/console`` by name follows the link and puts the
    pty over its target (runc 1.1 does: a procfs file such as core_pattern could be
    covered or exposed); ketch opens it with O_NOFOLLOW and refuses a symlink."""
    bundle = make_bundle(["true"], terminal=True, edit=_no_mount("/dev"))
    target = bundle / "rootfs" / "etc" / "console-target"
    target.write_text("untouched\n")
    (bundle / "rootfs" / "dev" / "console").symlink_to("/etc/console-target")
    receiver = ConsoleReceiver(tmp_path / "console.sock")
    cid = ketch.new_id("devcons")
    r = ketch("create", "--console-socket", str(receiver.path), "-b", str(bundle), cid)
    receiver.thread.join(5)
    receiver.sock.close()
    if receiver.fd is not None:
        os.close(receiver.fd)
    assert r.rc == 1 and "/dev/console" in r.msg and "symlink" in r.msg, r
    assert ketch.state(cid) is None
    assert target.read_text() == "untouched\n"


def test_dev_symlink_leading_outside_stays_in_rootfs(ketch: Runtime, make_bundle) -> None:
    """Escape 4c: the image's ``dev`` is a symlink to a host directory. A runtime that
    follows it on the host mounts its /dev tmpfs and creates device nodes there
    (mknod on the host); ketch re-roots the link and builds /dev inside the rootfs."""
    host = _host_dir("dev")
    try:
        bundle = make_bundle(["sh", "-c", "ls /dev/null /dev/zero && echo ok > /dev/null "
                              "&& echo fine"])
        (bundle / "rootfs" / "dev").rmdir()
        (bundle / "rootfs" / "dev").symlink_to(str(host))
        r = ketch("run", "-b", str(bundle), ketch.new_id("devsym"))
        assert r.rc == 0 and r.out.endswith("fine\n"), r
        assert list(host.iterdir()) == [], "devices made on the host"
    finally:
        shutil.rmtree(host)


# -- 5. fake /proc ----------------------------------------------------------------------------


def _fake_proc(bundle: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = bundle / "rootfs" / "proc" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_sysctl_is_not_written_into_a_fake_proc(ketch: Runtime, make_bundle) -> None:
    """Escape 5, sysctl: no proc mount, and the rootfs provides a plain file at
    ``proc/sys/kernel/domainname``. A naive runtime writes the value into that file
    and starts the container believing the sysctl is set; ketch verifies the fd is
    on procfs (fstatfs) and refuses."""
    def edit(c: dict) -> None:
        _no_mount("/proc")(c)
        # so that only the procfs check can stop the write
        c["root"]["readonly"] = False
        c["linux"]["readonlyPaths"] = []
        c["linux"]["sysctl"] = {"kernel.domainname": "evil"}

    bundle = make_bundle(["true"], edit=edit)
    _fake_proc(bundle, {"sys/kernel/domainname": "fake\n"})
    cid = ketch.new_id("fakesysctl")
    r = ketch("run", "-b", str(bundle), cid)
    assert r.rc == 1 and "linux.sysctl" in r.msg and "not on procfs" in r.msg, r
    assert (bundle / "rootfs" / "proc" / "sys" / "kernel" / "domainname").read_text() == "fake\n"
    assert ketch.state(cid) is None


def test_proc_symlink_to_a_fake_tree_is_refused_for_sysctls(ketch: Runtime,
                                                           make_bundle) -> None:
    """Escape 5, ``/proc`` a symlink (no proc mount): writes must not follow it into a
    directory the image controls."""
    def edit(c: dict) -> None:
        _no_mount("/proc")(c)
        # so that only the procfs check can stop the write
        c["root"]["readonly"] = False
        c["linux"]["readonlyPaths"] = []
        c["linux"]["sysctl"] = {"kernel.domainname": "evil"}

    bundle = make_bundle(["true"], edit=edit)
    fake = bundle / "rootfs" / "fakeproc" / "sys" / "kernel"
    fake.mkdir(parents=True)
    (fake / "domainname").write_text("fake\n")
    (bundle / "rootfs" / "proc").rmdir()
    (bundle / "rootfs" / "proc").symlink_to("/fakeproc")
    r = ketch("run", "-b", str(bundle), ketch.new_id("procsym"))
    assert r.rc == 1 and "not on procfs" in r.msg, r
    assert (fake / "domainname").read_text() == "fake\n"


def test_oom_score_adj_is_applied_despite_a_fake_proc(ketch: Runtime, make_bundle) -> None:
    """Escape 5, oomScoreAdj: no proc mount, a plain ``proc/self/oom_score_adj`` in the
    rootfs. A naive runtime writes into it after pivot_root and the container runs
    with the host's score; ketch writes it before entering the container's
    namespaces, through the host's verified procfs (as runc's nsexec does)."""
    def edit(c: dict) -> None:
        _no_mount("/proc")(c)
        c["process"]["oomScoreAdj"] = 517

    bundle = make_bundle(SLEEP, edit=edit)
    _fake_proc(bundle, {"self/oom_score_adj": "0\n"})
    cid = ketch.new_id("fakeoom")
    assert ketch("run", "-d", "-b", str(bundle), cid).rc == 0
    try:
        pid = ketch.state(cid)["pid"]
        assert Path(f"/proc/{pid}/oom_score_adj").read_text() == "517\n"
        assert (bundle / "rootfs" / "proc" / "self" / "oom_score_adj").read_text() == "0\n"
    finally:
        ketch("delete", "-f", cid)


# -- 6. exec --user -------------------------------------------------------------------------

USERS = ["1", "1:2", "0:5", "abc", "1:x", "-1", "1:-1", "1:", ":1", " 1",
         "4294967295", "2147483648", "2147483647"]


def test_exec_user_like_runc(runc: Runtime, ketch: Runtime, make_bundle) -> None:
    """Escape 6: ``exec --user 1`` is uid 1 with the process's gid 0, and odd values
    fail as in runc. A naive parser that turns 4294967295 (or -1) into (uid_t)-1
    calls setresuid(-1), which means "unchanged": the process stays root."""
    bundle = make_bundle(SLEEP)
    seen = {}
    for rt in (runc, ketch):
        cid = rt.new_id("user")
        assert rt("run", "-d", "-b", str(bundle), cid).rc == 0
        seen[rt.name] = [(u, r.rc, r.out, rt.norm(r.msg) if r.rc else "")
                         for u in USERS for r in [rt("exec", "-u", u, cid, "id")]]
        rt("delete", "-f", cid)
    assert seen["runc"][0][1:3] == (0, "uid=1 gid=0(root)\n")
    assert seen["ketch"] == seen["runc"]
    assert not any("uid=0" in out for u, _, out, _ in seen["ketch"] if u != "0:5")


# -- 7. environment edge cases --------------------------------------------------------------


@pytest.mark.parametrize("env", [["FOO"], ["=x"], [""], ["A\0=1"], ["A=x\0y"]],
                         ids=["no-equals", "empty-name", "empty", "nul-name", "nul-value"])
def test_bad_env_in_config_is_one_clear_error(ketch: Runtime, make_bundle,
                                              env: list[str]) -> None:
    """Escape 7: malformed ``process.env`` entries. A naive runtime passes "FOO" or
    "=x" through (the process then sees an env runc refuses) and dies with a
    Python traceback on a NUL byte at execve, after ``create`` said yes. ketch
    refuses at create with one line naming the entry, and leaves nothing."""
    bundle = make_bundle(["true"], edit=lambda c: c["process"]["env"].extend(env))
    cid = ketch.new_id("env")
    r = ketch("run", "-b", str(bundle), cid)
    assert r.rc == 1 and "process.env[" in r.msg, r
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err, r
    assert ketch.state(cid) is None


def test_exec_env_edge_cases_like_runc(runc: Runtime, ketch: Runtime, make_bundle) -> None:
    """Escape 7 through ``exec -e``: duplicates (last wins, first position kept),
    missing ``=``, empty name, and runc's quirk for an empty value (refused alone,
    dropped beside another ``-e``)."""
    bundle = make_bundle(SLEEP, edit=lambda c: c["process"].update(env=["PATH=/bin", "A=0"]))
    seen, said = {}, {}
    for rt in (runc, ketch):
        cid = rt.new_id("execenv")
        assert rt("run", "-d", "-b", str(bundle), cid).rc == 0
        runs = [rt("exec", "-e", "A=1", "-e", "B=2", "-e", "A=3", cid, "env"),
                rt("exec", "-e", "", cid, "env"),
                rt("exec", "-e", "", "-e", "B=2", cid, "env"),
                rt("exec", "-e", "FOO", cid, "env"),
                rt("exec", "-e", "=x", cid, "env")]
        seen[rt.name] = [(r.rc, r.out) for r in runs]
        # the refusals name the flag's value, not an index into the merged env
        said[rt.name] = [r.msg for r in runs if r.rc]
        assert all("Traceback" not in r.err and len(r.err.strip().splitlines()) <= 1
                   for r in runs), runs
        rt("delete", "-f", cid)
    assert seen["runc"][0] == (0, "PATH=/bin\nA=3\nB=2\nHOME=/root\n")
    assert seen["ketch"] == seen["runc"], seen
    assert said["ketch"] == said["runc"], said
    assert 'invalid environment variable: "FOO"' in said["ketch"][1], said
    assert [rc for rc, _ in seen["ketch"]] == [0, 255, 0, 255, 255]


def test_nul_in_args_is_one_clear_error(ketch: Runtime, make_bundle) -> None:
    """A NUL byte in ``process.args`` cannot reach execve(2): refused at create."""
    bundle = make_bundle(["sh", "-c", "echo a\0b"])
    cid = ketch.new_id("argnul")
    r = ketch("run", "-b", str(bundle), cid)
    assert r.rc == 1 and "Traceback" not in r.err, r
    assert len(r.err.strip().splitlines()) == 1, r
    assert ketch.state(cid) is None
    assert "process.args[2]" in r.msg and "NUL" in r.msg, r


def test_relative_mount_destination_mounted_below_root_like_runc(runc: Runtime, ketch: Runtime,
                                                                  make_bundle) -> None:
    """A relative ``destination`` (deprecated by config.md) is mounted below the
    container's ``/`` with runc 1.1.5's warning; one climbing with ``..`` stays in
    the rootfs."""
    import json

    def edit(c: dict) -> None:
        c["mounts"] += [{"destination": "relative", "type": "tmpfs", "source": "tmpfs",
                         "options": ["size=1m"]},
                        {"destination": "../../escaped-kt", "type": "tmpfs", "source": "tmpfs"}]

    bundle = make_bundle(["sh", "-c", "grep -E ' /(relative|escaped-kt) ' /proc/self/mountinfo "
                          "| cut -d' ' -f5,9; ls -d /relative /escaped-kt"], edit=edit)
    seen = {}
    for rt in (runc, ketch):
        r = rt("--log-format", "json", "run", "-b", str(bundle), rt.new_id("reldest"))
        warnings = [json.loads(line)["msg"] for line in r.err.splitlines()
                    if line.startswith("{") and json.loads(line)["level"] == "warning"]
        seen[rt.name] = (r.rc, r.out, [w for w in warnings if "is not absolute" in w])
    assert seen["runc"][1] == "/relative tmpfs\n/escaped-kt tmpfs\n/escaped-kt\n/relative\n", seen
    assert seen["runc"][2][0] == ("mount destination relative is not absolute. Support for "
                                  "non-absolute mount destinations will be removed in a future release.")
    assert seen["ketch"] == seen["runc"], seen
    assert (bundle / "rootfs" / "escaped-kt").is_dir()  # where both put it
    assert not any(os.path.exists(p / "escaped-kt") for p in (bundle, bundle.parent, Path("/")))

"""What the container's process inherits and how the foreground ``run`` relays to
it: file descriptors, signals, terminals (a proxied pty for ``run``, the pty
master over SCM_RIGHTS for ``--console-socket``). Each test runs under runc
(the reference) and ketch.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import signal
import socket
import struct
import subprocess
import tempfile
import termios
import threading
import time
from pathlib import Path

import pytest

from .conftest import Runtime, wait_until


def read_until_closed(fd: int, timeout: float = 10.0, until: bytes | None = None) -> bytes:
    """Read ``fd`` (a pty master or a pipe) until EOF/EIO, ``until`` is seen, or timeout."""
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: every slave fd is closed
            break
        if not data:
            break
        buf += data
        if until is not None and until in buf:
            break
    return buf


# -- file descriptors -----------------------------------------------------------------------


def fd_numbers(out: str) -> set[int]:
    return {int(x) for x in out.split()}


def test_no_fd_leak(any_runtime: Runtime, make_bundle, tmp_path: Path) -> None:
    """Extra fds open in the runtime's caller do not reach the container: ``ls`` sees
    0, 1, 2 and its own directory fd only."""
    rt = any_runtime
    bundle = make_bundle(["ls", "/proc/self/fd"])
    r_pipe, w_pipe = os.pipe()
    f = open(tmp_path / "extra", "w")  # noqa: SIM115 - closed below
    high = os.dup2(f.fileno(), 57, inheritable=True)
    extra = (r_pipe, w_pipe, f.fileno(), high)
    try:
        for fd in extra:
            os.set_inheritable(fd, True)
        r = rt("run", "--bundle", str(bundle), rt.new_id("fd"), pass_fds=extra)
    finally:
        for fd in (r_pipe, w_pipe, high):
            os.close(fd)
        f.close()
    assert r.rc == 0, str(r)
    fds = fd_numbers(r.out)
    assert {0, 1, 2} <= fds and len(fds - {0, 1, 2}) == 1, f"{rt.name}: fds {sorted(fds)}\n{r}"
    assert not fds & set(extra) - {3}, f"{rt.name}: leaked {sorted(fds)}"


def test_no_fd_leak_into_created_init(any_runtime: Runtime, make_bundle, tmp_path: Path) -> None:
    """The same for create/start: the init kept around between create and start holds
    no extra descriptor of the caller's either."""
    rt = any_runtime
    mark = {"destination": "/mark", "type": "bind", "source": str(tmp_path), "options": ["rbind", "rw"]}
    bundle = make_bundle(["sh", "-c", "ls /proc/self/fd > /mark/fds"],
                         edit=lambda c: c["mounts"].append(mark))
    r_pipe, w_pipe = os.pipe()
    try:
        cid = rt.new_id("fd")
        r = rt("create", "--bundle", str(bundle), cid, pass_fds=(r_pipe, w_pipe))
        assert r.rc == 0, str(r)
        pid = rt.state(cid)["pid"]
        held = {int(x) for x in os.listdir(f"/proc/{pid}/fd")}
        targets = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in held}
        own = os.readlink(f"/proc/self/fd/{r_pipe}"), os.readlink(f"/proc/self/fd/{w_pipe}")
        assert not set(own) & targets, f"{rt.name}: init holds the caller's pipe: {targets}"
        assert rt("start", cid).rc == 0
        assert wait_until(lambda: rt.status(cid) == "stopped")
    finally:
        os.close(r_pipe)
        os.close(w_pipe)
    fds = fd_numbers((tmp_path / "fds").read_text())
    assert {0, 1, 2} <= fds and len(fds) == 4, f"{rt.name}: {sorted(fds)}"


def test_preserve_fds(any_runtime: Runtime, make_bundle, tmp_path: Path) -> None:
    """``--preserve-fds 1`` hands fd 3 to the container, and nothing beyond it."""
    rt = any_runtime
    bundle = make_bundle(["sh", "-c", "cat <&3; ls /proc/self/fd"])
    src = tmp_path / "payload"
    src.write_text("payload\n")
    extra = os.open(src, os.O_RDONLY)  # an inheritable fd above 3 that must not get through
    argv = rt.argv("run", "--preserve-fds", "1", "--bundle", str(bundle), rt.new_id("fd"))
    try:
        with tempfile.TemporaryFile() as out:
            # fd 3 is set up in a child shell: in this process it may be pytest's own
            p = subprocess.run(["sh", "-c", 'exec 3<"$0"; exec "$@"', str(src), *argv],
                               stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                               pass_fds=(extra,), timeout=30)
            out.seek(0)
            text = out.read().decode()
    finally:
        os.close(extra)
    assert p.returncode == 0, f"{rt.name}: {text}"
    first, *rest = text.splitlines()
    assert first == "payload", f"{rt.name}: {text}"
    fds = {int(x) for x in rest}
    assert {0, 1, 2, 3} <= fds and len(fds) == 5, f"{rt.name}: {sorted(fds)} (extra fd was {extra})"


# -- signals ---------------------------------------------------------------------------------


SIGNAL_ATTEMPTS = 5


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 42), (signal.SIGINT, 43),
                                           (signal.SIGHUP, 44), (signal.SIGUSR1, 45)])
def test_foreground_run_forwards_signals(any_runtime: Runtime, make_bundle, known_bug, sig,
                                         code) -> None:
    """A signal sent to the foreground ``run`` process reaches the container's init,
    also when it is sent the moment the container's process has started (tried
    SIGNAL_ATTEMPTS times: the window to hit is short)."""
    rt = any_runtime
    name = signal.Signals(sig).name[3:]
    bundle = make_bundle(["sh", "-c", f'trap "exit {code}" {name}; echo ready; '
                          "while :; do sleep 0.05; done"])
    outcomes = []
    for _ in range(SIGNAL_ATTEMPTS):
        cid = rt.new_id("sig")
        # stderr goes to a file: a container outliving ``run`` would hold a pipe open
        with tempfile.TemporaryFile() as errf:
            p = subprocess.Popen(rt.argv("run", "--bundle", str(bundle), cid),
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errf)
            try:
                assert read_until_closed(p.stdout.fileno(), until=b"ready\n") == b"ready\n"
                p.send_signal(sig)
                rc = p.wait(timeout=10)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                p.stdout.close()
            errf.seek(0)
            err = errf.read().decode(errors="replace")
        state = rt.state(cid)
        if state:
            rt("delete", "--force", cid)
        outcomes.append((rc, err, state and state["status"]))
    assert outcomes == [(code, "", None)] * SIGNAL_ATTEMPTS, \
        f"{rt.name}: (exit, stderr, status left behind) per attempt: {outcomes}"


def test_foreground_run_killed_by_signal(any_runtime: Runtime, make_bundle) -> None:
    """An init without a handler, killed from outside: ``run`` exits 128+N."""
    rt = any_runtime
    cid = rt.new_id("sig")
    bundle = make_bundle(["sh", "-c", "echo ready; while :; do sleep 0.05; done"])
    p = subprocess.Popen(rt.argv("run", "--bundle", str(bundle), cid),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert read_until_closed(p.stdout.fileno(), until=b"ready\n") == b"ready\n"
        os.kill(rt.state(cid)["pid"], signal.SIGKILL)
        rc = p.wait(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
    assert rc == 137, f"{rt.name}: exit {rc}"
    assert rt.state(cid) is None, "run did not delete the container after it exited"


# -- terminals -------------------------------------------------------------------------------

def run_on_pty(rt: Runtime, bundle: Path, rows: int = 33, cols: int = 101) -> tuple[int, bytes]:
    """``run`` with stdio on a pty (window size rows x cols) whose master we read."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    try:
        p = subprocess.Popen(rt.argv("run", "--bundle", str(bundle), rt.new_id("tty")),
                             stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        out = read_until_closed(master)
        rc = p.wait(timeout=10)
    finally:
        os.close(master)
    return rc, out


def test_run_terminal_proxied(any_runtime: Runtime, make_bundle) -> None:
    """``run`` of a ``terminal: true`` bundle without a console socket allocates a
    pty for the container and copies it to the caller's terminal (a pty we hold)."""
    rt = any_runtime
    bundle = make_bundle(["sh", "-c", "echo hi; tty; test -t 0 && test -t 1 && test -t 2 "
                          "&& echo all-ttys; exit 7"], terminal=True)
    rc, out = run_on_pty(rt, bundle)
    assert (rc, out) == (7, b"hi\r\n/dev/pts/0\r\nall-ttys\r\n"), f"{rt.name}: rc={rc} out={out!r}"


def test_run_terminal_window_size(any_runtime: Runtime, make_bundle, known_bug) -> None:
    """The container's pty gets the caller's window size (runc copies it)."""
    rt = any_runtime
    # runc sizes the pty just after the process starts: ask a moment later
    bundle = make_bundle(["sh", "-c", "sleep 0.5; stty size"], terminal=True)
    rc, out = run_on_pty(rt, bundle, rows=33, cols=101)
    assert (rc, out) == (0, b"33 101\r\n"), f"{rt.name}: rc={rc} out={out!r}"


def test_run_terminal_under_script(any_runtime: Runtime, make_bundle, tmp_path: Path) -> None:
    """The same through util-linux ``script`` (how a user at a terminal runs it)."""
    rt = any_runtime
    bundle = make_bundle(["sh", "-c", "echo hi-from-tty; exit 3"], terminal=True)
    cmd = " ".join(rt.argv("run", "--bundle", str(bundle), rt.new_id("tty")))
    with tempfile.TemporaryFile() as out:
        p = subprocess.run(["script", "-qec", cmd, "/dev/null"], stdin=subprocess.DEVNULL,
                           stdout=out, stderr=subprocess.STDOUT, timeout=20)
        out.seek(0)
        text = out.read()
    assert p.returncode == 3, f"{rt.name}: rc={p.returncode} out={text!r}"
    assert b"hi-from-tty\r\n" in text, f"{rt.name}: {text!r}"


def test_run_terminal_without_any_terminal(runc: Runtime, ketch: Runtime, make_bundle) -> None:
    """``run`` with ``terminal: true``, no console socket and no terminal anywhere (stdio
    redirected, no controlling tty): refused before anything is created, as runc does
    (its proxy needs the caller's terminal to put in raw mode)."""
    bundle = make_bundle(["echo", "hi"], terminal=True)
    seen = {}
    for rt in (runc, ketch):
        cid = rt.new_id("notty")
        p = subprocess.run(rt.argv("run", "--bundle", str(bundle), cid), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=20, start_new_session=True)
        lines = p.stderr.strip().splitlines()
        # the logrus line's msg only (its time= may fall in another second for each)
        msg = re.search(r'msg="([^"]*)"', lines[-1]) if lines else None
        seen[rt.name] = (p.returncode, p.stdout, rt.norm(msg.group(1) if msg else ""),
                         len(lines), rt.state(cid))
    assert seen["ketch"] == seen["runc"], seen
    rc, out, msg, count, state = seen["ketch"]
    assert (rc, out, count, state) == (1, "", 1, None), seen
    assert msg == "RUNTIME run failed: open /dev/tty: no such device or address", seen


def test_run_terminal_output_to_a_file(any_runtime: Runtime, make_bundle, tmp_path: Path) -> None:
    """With a controlling terminal but stdout redirected to a file, the file gets the
    container's bytes without the pty's CR (runc clears ONLCR on the pty it proxies)."""
    rt = any_runtime
    bundle = make_bundle(["sh", "-c", "echo one; echo two"], terminal=True)
    out = tmp_path / "out"
    cmd = " ".join(rt.argv("run", "--bundle", str(bundle), rt.new_id("ttyfile")))
    p = subprocess.run(["script", "-qec", f"{cmd} </dev/null >{out}", "/dev/null"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
    assert p.returncode == 0, f"{rt.name}: {p.stdout!r}"
    assert out.read_bytes() == b"one\ntwo\n", f"{rt.name}: {out.read_bytes()!r}"


def _script_run(rt: Runtime, bundle: Path, redirect: str) -> bytes:
    cmd = " ".join(rt.argv("run", "--bundle", str(bundle), rt.new_id("ttyclosed")))
    p = subprocess.run(["script", "-qec", f"{cmd} {redirect}; echo rc=$?", "/dev/null"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
    return p.stdout


def test_run_terminal_with_closed_stdin(any_runtime: Runtime, make_bundle) -> None:
    """A terminal proxied while the caller closed its stdin still runs (ketch failed
    with "bad file descriptor" from select)."""
    out = _script_run(any_runtime, make_bundle(["sh", "-c", "echo hi; exit 5"], terminal=True),
                      "<&-")
    assert b"hi\r\n" in out and b"rc=5" in out, f"{any_runtime.name}: {out!r}"


def test_run_terminal_with_closed_stdout(ketch: Runtime, make_bundle) -> None:
    """The same with stdout closed: the output is dropped, the status kept (runc
    1.1.5 races here: exit 5 or "container process is already dead")."""
    out = _script_run(ketch, make_bundle(["sh", "-c", "echo hi; exit 5"], terminal=True), ">&-")
    assert b"rc=5" in out and b"hi" not in out, out


def test_exec_tty_output_has_one_cr(ketch: Runtime, make_bundle) -> None:
    """``exec -t`` in the foreground: each NL reaches the caller's terminal as one
    CR NL, every time (ketch cleared the pty's ONLCR only after the process could
    already write, and now and then sent CR CR NL). runc 1.1.5 gives the same lines
    after a stray "^@" echoed by script."""
    rt = ketch
    cid = rt.new_id("exectty")
    assert rt("run", "-d", "-b", str(make_bundle(["sleep", "1000"])), cid).rc == 0
    try:
        cmd = " ".join(rt.argv("exec", "-t", cid, "sh", "-c", "'echo ready; echo b'"))
        outs = {subprocess.run(["script", "-qec", cmd, "/dev/null"], stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=20).stdout for _ in range(8)}
    finally:
        rt("delete", "-f", cid)
    assert outs == {b"ready\r\nb\r\n"}, f"{rt.name}: {outs!r}"


class ConsoleReceiver:
    """A unix socket that accepts one connection and receives one fd (the pty master)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(1)
        self.sock.settimeout(20)
        self.fd: int | None = None
        self.name = b""
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            conn, _ = self.sock.accept()
            with conn:
                msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 1)
                self.name = msg
                self.fd = fds[0] if fds else None
        except BaseException as e:  # reported by wait()
            self.error = e

    def wait(self) -> int:
        self.thread.join(20)
        self.sock.close()
        if self.error:
            raise self.error
        assert self.fd is not None, "no fd received"
        return self.fd


def test_console_socket(any_runtime: Runtime, make_bundle, tmp_path: Path) -> None:
    """``create --console-socket`` sends the pty master over SCM_RIGHTS; what the
    container writes to its stdout arrives on it, and what we write is its stdin."""
    rt = any_runtime
    bundle = make_bundle(["sh", "-c", "echo started; tty; read line; echo got:$line; exit 5"],
                         terminal=True)
    receiver = ConsoleReceiver(tmp_path / "console.sock")
    cid = rt.new_id("cons")
    r = rt("create", "--console-socket", str(receiver.path), "--bundle", str(bundle), cid)
    assert r.rc == 0, str(r)
    master = receiver.wait()
    try:
        mode = os.fstat(master).st_mode
        assert os.major(os.fstat(master).st_rdev) == 5 and (mode & 0o170000) == 0o020000, \
            "not the ptmx master"
        assert rt("start", cid).rc == 0
        head = read_until_closed(master, until=b"/dev/pts/0\r\n")
        assert head == b"started\r\n/dev/pts/0\r\n", f"{rt.name}: {head!r}"
        os.write(master, b"hello\n")
        tail = read_until_closed(master, until=b"got:hello\r\n")
        assert tail.endswith(b"got:hello\r\n"), f"{rt.name}: {tail!r}"
        assert wait_until(lambda: rt.status(cid) == "stopped")
    finally:
        with contextlib.suppress(OSError):
            os.close(master)


def test_console_socket_rejections(runc: Runtime, ketch: Runtime, make_bundle, tmp_path: Path,
                                   known_bug) -> None:
    """The terminal/console-socket combinations runc refuses, refused the same way."""
    tty_bundle = make_bundle(["true"], terminal=True)
    plain_bundle = make_bundle(["true"])
    sock = tmp_path / "unused.sock"
    seen = {}
    for rt in (runc, ketch):
        rows = []
        for args in (["create", "--bundle", str(tty_bundle)],
                     ["run", "--detach", "--bundle", str(tty_bundle)],
                     ["create", "--console-socket", str(sock), "--bundle", str(plain_bundle)],
                     ["run", "--console-socket", str(sock), "--bundle", str(tty_bundle)],
                     ["run", "--detach", "--console-socket", str(sock), "--bundle", str(tty_bundle)]):
            r = rt(*args, rt.new_id("rej"))
            rows.append((" ".join(a for a in args if a.startswith("-") or a.isalpha()),
                         r.rc, rt.norm(r.msg)))
        for cid in os.listdir(rt.root) if rt.root.exists() else []:
            rows.append(("left behind", cid))
        seen[rt.name] = rows
    diff = [f"  runc:  {r}\n  ketch: {k}" for r, k in zip(seen["runc"], seen["ketch"], strict=False)
            if r != k]
    assert len(seen["runc"]) == len(seen["ketch"]) and not diff, \
        "ketch differs from runc:\n" + "\n".join(diff)


# -- stdio pipes of a foreground run/exec without a terminal ----------------------------------

_STDIO_KINDS = "for n in 0 1 2; do readlink /proc/self/fd/$n | cut -d: -f1; done"


def test_foreground_stdio_are_pipes(any_runtime: Runtime, make_bundle, tmp_path: Path) -> None:
    """``run`` and ``exec`` without ``-d`` and without a terminal give the process
    pipes (runc's setupProcessPipes), whatever the caller's stdio are: here a
    file for stdout, so a pass-through would show it. stdin is relayed, exit
    status and stderr too."""
    rt = any_runtime
    out = tmp_path / f"{rt.name}.out"
    bundle = make_bundle(["sh", "-c", f"{_STDIO_KINDS}; read x; echo got=$x; echo oops >&2; "
                                      "exit 3"])
    with open(out, "w") as f:
        p = subprocess.run(rt.argv("run", "-b", str(bundle), rt.new_id("pipes")), input=b"hi\n",
                           stdout=f, stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 3, p
    assert out.read_text() == "pipe\npipe\npipe\ngot=hi\n"
    assert p.stderr == b"oops\n"
    cid = rt.new_id("pipes")
    assert rt("run", "-d", "-b", str(make_bundle(["sleep", "60"])), cid).rc == 0
    try:
        p = subprocess.run(rt.argv("exec", cid, "sh", "-c", f"{_STDIO_KINDS}; cat; exit 4"),
                           input=b"relayed", capture_output=True, timeout=30)
        assert (p.returncode, p.stdout) == (4, b"pipe\npipe\npipe\nrelayed"), p
    finally:
        rt("delete", "-f", cid)


def test_foreground_pipes_carry_large_output_and_reach_eof(any_runtime: Runtime,
                                                           make_bundle) -> None:
    """4 MiB through the stdout pipe arrive intact; a process that never reads its
    stdin still ends; a background child holding the pipe does not keep ``run``
    waiting after the container's process exits."""
    rt = any_runtime
    bundle = make_bundle(["sh", "-c", "head -c 4194304 /dev/zero | tr '\\0' x; "
                                      "sleep 30 > /dev/null 2>&1 < /dev/null & exit 0"])
    start = time.monotonic()
    p = subprocess.run(rt.argv("run", "-b", str(bundle), rt.new_id("bigout")),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"x" * 4194304
    assert time.monotonic() - start < 20


def test_foreground_pipes_reopen_in_a_user_namespace(any_runtime: Runtime,
                                                     make_bundle) -> None:
    """The pipes belong to the container's root (a host uid in a user namespace),
    so ``/dev/stdout`` can be reopened, as under runc (which chowns them too)."""
    rt = any_runtime

    def edit(c: dict) -> None:
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]

    bundle = make_bundle(["sh", "-c", "echo reopened > /dev/stdout"], edit=edit)
    for parent in [bundle, *bundle.parents]:
        if parent == Path("/tmp"):
            break
        os.chmod(parent, os.stat(parent).st_mode | 0o111)
    p = subprocess.run(rt.argv("run", "-b", str(bundle), rt.new_id("pipens")),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert (p.returncode, p.stdout) == (0, b"reopened\n"), p


def test_a_reader_that_goes_away_stops_the_writer(any_runtime: Runtime, make_bundle) -> None:
    """``run ... | head -1``: once our stdout's reader is gone the process's next
    write fails (SIGPIPE, status 141 for ``yes``) and the runtime returns at
    once instead of draining output nobody reads."""
    rt = any_runtime
    bundle = make_bundle(["sh", "-c", "yes; echo yes-rc=$? >&2"])
    p = subprocess.Popen(rt.argv("run", "-b", str(bundle), rt.new_id("sigpipe")),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    assert p.stdout is not None and p.stdout.readline() == b"y\n"
    p.stdout.close()
    try:
        _, err = p.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError(f"{rt.name} kept running after its reader went away") from None
    assert b"yes-rc=141" in err, err


def test_exec_session_and_late_output_like_runc(runc: Runtime, ketch: Runtime,
                                                make_bundle) -> None:
    """A foreground ``exec`` without a terminal: the process leads a session of
    its own (not the caller's, whose terminal it must not reach), and output of
    a child that outlives it still arrives: the pipes are relayed to EOF."""
    seen = {}
    for rt in (runc, ketch):
        cid = rt.new_id("execpipes")
        assert rt("run", "-d", "-b", str(make_bundle(["sleep", "60"])), cid).rc == 0
        try:
            r = rt("exec", cid, "sh", "-c", "set -- $(cut -d' ' -f1,5,6 /proc/$$/stat); "
                                            '[ "$1" = "$2" ] && [ "$1" = "$3" ] && echo leader; '
                                            "(sleep 1; echo late) & echo early")
            seen[rt.name] = (r.rc, r.out)
        finally:
            rt("delete", "-f", cid)
    assert seen["ketch"] == seen["runc"] == (0, "leader\nearly\nlate\n"), seen

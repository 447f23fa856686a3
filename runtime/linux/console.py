"""The container's terminal when ``process.terminal`` is true.

runtime-spec config.md "terminal"/"consoleSize" and runtime-linux.md
"/dev/console"; the console-socket protocol is runc's (``docs/terminals.md``):
the runtime connects to the AF_UNIX socket given by ``--console-socket`` and
sends ONE message whose payload is the pty master's name and whose SCM_RIGHTS
ancillary data carries the master fd.
"""

from __future__ import annotations

import fcntl
import os
import socket
import stat
import struct
import termios

from ketch.runtime import syscalls as s
from ketch.runtime.errors import KetchError
from ketch.runtime.linux.procfs import open_procfs
from ketch.runtime.syscalls import Syscalls

# asm-generic/ioctls.h (x86_64 and arm64 alike); Python's termios lacks them
TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431


def connect_console_socket(path: str) -> socket.socket:
    """Connect to the caller's console socket (before the container is built).

    Raises ``KetchError`` with Go's ``net.Dial`` wording, which runc's callers see.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        # Go's net.Dial wording, which runc's callers see
        raise KetchError(f"dial unix {path}: connect: {(e.strerror or str(e)).lower()}") from None
    return sock


def setup_console(sc: Syscalls, console_fd: int, size: dict | None, *,
                  mount_console: bool = True, clear_onlcr: bool = False) -> None:
    """In the init after pivot_root (or an exec'd process after joining the
    mount namespace): make a pty in the container's devpts, bind its slave
    over ``/dev/console`` (init only), send the master over ``console_fd`` and
    make the slave the controlling terminal and stdio; ``clear_onlcr``: turn off
    NL -> CR NL now, before the process can write (for a pty the runtime proxies).
    Raises ``OSError``.
    """
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
    slave_path = f"/dev/pts/{number}"
    if clear_onlcr:
        clear_pty_onlcr(master)
    if size:
        fcntl.ioctl(master, termios.TIOCSWINSZ,
                    struct.pack("HHHH", size.get("height", 0), size.get("width", 0), 0, 0))
    if mount_console:
        _mount_console(sc, slave_path)
    sock = socket.socket(fileno=console_fd)
    try:
        socket.send_fds(sock, [b"/dev/ptmx"], [master])
    finally:
        sock.close()
        os.close(master)
    slave = os.open(slave_path, os.O_RDWR)
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for target in (0, 1, 2):
        os.dup2(slave, target)
    if slave > 2:
        os.close(slave)


def _mount_console(sc: Syscalls, slave_path: str) -> None:
    """Bind the pty slave over ``/dev/console`` (runtime-linux.md "/dev/console").

    The image may have planted ``/dev/console`` as a symlink (to a procfs file
    or anything else): the node is opened without following it, only a
    regular file or a character device is accepted, and the bind goes through
    the opened fd, so it lands on exactly what was checked.
    """
    flags = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open("/dev/console", os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600)
        os.close(fd)
    except FileExistsError:
        pass
    fd = os.open("/dev/console", flags)
    try:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode)):
            raise KetchError("/dev/console in the rootfs is a symlink or not a file; "
                             "refusing to mount the console over it")
        sc.mount(slave_path, _through_fd(sc, fd, "/dev/console"), None, s.MS_BIND, None)
    finally:
        os.close(fd)


def _through_fd(sc: Syscalls, fd: int, path: str) -> str:
    """``/proc/self/fd/N`` for ``fd`` when the container has a real procfs at /proc,
    else ``path`` itself (checked just before; no container process runs yet)."""
    try:
        os.close(open_procfs(sc, "/proc/self/fd", os.O_PATH | os.O_DIRECTORY))
    except OSError:
        return path
    return f"/proc/self/fd/{fd}"


def receive_master(sock: socket.socket) -> int:
    """Receive the pty master fd sent by ``setup_console``. Raises ``OSError``."""
    _, fds, _, _ = socket.recv_fds(sock, 4096, 1)
    if not fds:
        raise OSError("no pty master received on the console socket")
    return fds[0]


def host_console() -> int:
    """The caller's terminal for a foreground ``run``/``exec`` with ``terminal: true``
    (runc's ``initHostConsole``): the first of stderr, stdout, stdin that is a
    terminal, else the controlling terminal opened through ``/dev/tty``.

    Returns an fd the caller must not close when it is 0, 1 or 2 (see
    :func:`release_host_console`). Raises ``KetchError`` (``open /dev/tty: ...``,
    runc's text) when there is no terminal at all: the container's pty would
    have no one to talk to.
    """
    for fd in (2, 1, 0):
        if os.isatty(fd):
            return fd
    try:
        return os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        raise KetchError(f"open /dev/tty: {(e.strerror or str(e)).lower()}") from None


def release_host_console(fd: int) -> None:
    """Close what :func:`host_console` opened (never our own stdio)."""
    if fd > 2:
        os.close(fd)


def clear_pty_onlcr(master: int) -> None:
    """Turn off NL -> CR NL output mapping on the container's pty, as runc does for
    a foreground terminal: the caller's own terminal (raw while proxied) or a
    file receives the container's bytes unchanged. Raises ``OSError``."""
    attrs = termios.tcgetattr(master)
    attrs[1] &= ~termios.ONLCR
    termios.tcsetattr(master, termios.TCSANOW, attrs)

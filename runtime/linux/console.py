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
import struct
import termios

from ketch.runtime import syscalls as s
from ketch.runtime.errors import KetchError
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
                  mount_console: bool = True) -> None:
    """In the init after pivot_root (or an exec'd process after joining the
    mount namespace): make a pty in the container's devpts, bind its slave
    over ``/dev/console`` (init only), send the master over ``console_fd`` and
    make the slave the controlling terminal and stdio. Raises ``OSError``.
    """
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
    slave_path = f"/dev/pts/{number}"
    if size:
        fcntl.ioctl(master, termios.TIOCSWINSZ,
                    struct.pack("HHHH", size.get("height", 0), size.get("width", 0), 0, 0))
    if mount_console:
        if not os.path.lexists("/dev/console"):
            os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW,
                             0o600))
        sc.mount(slave_path, "/dev/console", None, s.MS_BIND, None)
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


def receive_master(sock: socket.socket) -> int:
    """Receive the pty master fd sent by ``setup_console``. Raises ``OSError``."""
    _, fds, _, _ = socket.recv_fds(sock, 4096, 1)
    if not fds:
        raise OSError("no pty master received on the console socket")
    return fds[0]

"""The process's own stdin/stdout/stderr when a caller started it with one closed.

Not a spec section: both CLIs (``ketch``, ``ketch-image``) call
:func:`fill_closed_stdio` first thing, as a caller may start them with fd 0, 1
or 2 closed (``>&-``).
"""

from __future__ import annotations

import errno
import io
import os
import sys


class ClosedOutput(io.TextIOBase):
    """``sys.stdout`` when the process was started with fd 1 closed: writing anything
    raises ``OSError(EBADF)`` for ``/dev/stdout``, as a Go program's write to a closed
    fd fails (``runc list >&-``: "write /dev/stdout: bad file descriptor", exit 1), so
    a caller capturing output never sees success without it. ``fileno()`` is the fd
    (then /dev/null), for what passes it on rather than writing to it."""

    def __init__(self, fd: int, name: str) -> None:
        super().__init__()
        self._fd, self.name = fd, name

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:  # type: ignore[override]
        if not s:
            return 0
        # "write /dev/stdout" in the filename slot: both CLIs print an OSError as
        # "<filename>: <reason>", which then reads as Go's PathError does
        raise OSError(errno.EBADF, "bad file descriptor", f"write {self.name}")

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return False


def fill_closed_stdio() -> None:
    """Put /dev/null on each of fds 0-2 that is closed, and give Python a file object for
    it where ``sys.stdin``/``stdout``/``stderr`` is None.

    Writing to the closed stdout then fails with EBADF (:class:`ClosedOutput`), as
    runc's and skopeo's writes do; messages to a closed stderr are lost (there is
    nowhere to report them); and no fd of ours (a lock, a socket, a layout file)
    can land on 0-2 and be written by a message or handed to a container as its
    stdio. Raises nothing but the OSError of opening /dev/null.
    """
    closed = set()
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.add(fd)
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free fd: this one
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    if sys.stdin is None:
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 (lives as long as we do)
    if sys.stdout is None or 1 in closed:
        sys.stdout = ClosedOutput(1, "/dev/stdout")
    if sys.stderr is None:
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115

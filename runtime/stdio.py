"""The process's own stdin/stdout/stderr when a caller started it with one closed.

Not a spec section: both CLIs (``ketch``, ``ketch-image``) call
:func:`fill_closed_stdio` first thing, as a caller may start them with fd 0, 1
or 2 closed (``>&-``).
"""

from __future__ import annotations

import os
import sys


def fill_closed_stdio() -> None:
    """Put /dev/null on each of fds 0-2 that is closed, and give Python a file object for
    it where ``sys.stdin``/``stdout``/``stderr`` is None.

    Output to a closed fd is then lost without an error (as runc's is), and no fd
    of ours (a lock, a socket, a layout file) can land on 0-2 and be written by a
    message or handed to a container as its stdio. Raises nothing but the OSError
    of opening /dev/null.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free fd: this one
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    if sys.stdin is None:
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 (lives as long as we do)
    if sys.stdout is None:
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    if sys.stderr is None:
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115

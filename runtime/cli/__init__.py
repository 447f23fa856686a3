"""``ketch``: runc's command line (the OCI runtime-spec operations plus run,
list and spec) over the ``ketch.runtime.container`` library.

``main`` is the console script. The package keeps its import cost low: the
argv grammar, the log formats and only the chosen verb's module are loaded
(no click, jsonschema or requests on this path).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run ``ketch`` with ``argv`` (default ``sys.argv``); returns the exit status."""
    if sys.stdin is None or sys.stdout is None or sys.stderr is None:
        _fill_closed_stdio()
    from ketch.runtime.cli.app import run

    return run(list(sys.argv if argv is None else argv))


def _fill_closed_stdio() -> None:
    """Started with stdin, stdout or stderr closed (``>&-``; Python then has
    ``sys.stdout is None``): /dev/null takes the fd, as runc's output to a closed
    fd is lost without an error, and no fd of ours (a lock, a socket) can land
    on 0-2 and be written by a message or handed to a container as its stdio."""
    import os

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

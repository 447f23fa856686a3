"""Writing the command's output to stdout, with Go's behaviour on a closed pipe.

A Go program whose stdout reader went away dies of SIGPIPE (``ketch list |
head -1``); Python ignores SIGPIPE and raises ``BrokenPipeError`` instead.
``write`` turns that into ``StdoutClosed``, which the CLI answers by dying
of SIGPIPE. A broken pipe anywhere else (a socket in the library) stays an
ordinary error.
"""

from __future__ import annotations

import contextlib
import sys


class StdoutClosed(Exception):
    """stdout's reader has gone away."""


def write(text: str) -> None:
    """Write ``text`` to stdout and flush it."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise StdoutClosed() from None


def write_best_effort(text: str) -> None:
    """Write help or version text: a failure is ignored, as urfave/cli's ``fmt.Fprint``
    of them is (``runc --version >&-`` exits 0; ``runc list >&-`` fails)."""
    with contextlib.suppress(OSError, StdoutClosed):
        write(text)

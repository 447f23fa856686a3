"""The runtime library's log sink.

Library code calls ``log.warning(msg)`` / ``log.debug(msg)``; the CLI installs
a sink that writes runc-style lines (text or ``--log-format json``) to
``--log`` or stderr. Without a sink, warnings go to stderr and debug lines are
dropped.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

Sink = Callable[[str, str], None]


def _default_sink(level: str, message: str) -> None:
    if level != "debug":
        sys.stderr.write(f"ketch: {level}: {message}\n")


_sink: Sink = _default_sink


def set_sink(sink: Sink) -> None:
    """Route every library log line to ``sink(level, message)``."""
    global _sink
    _sink = sink


def emit(level: str, message: str) -> None:
    """Log ``message`` at ``level`` ("debug", "info", "warning", "error")."""
    _sink(level, message)


def warning(message: str) -> None:
    emit("warning", message)


def debug(message: str) -> None:
    emit("debug", message)

"""Progress output of transfers: plain lines, or a live display on a terminal.

Plain mode (stderr is not a terminal) prints one line per step, which logs and
tests can read. On a terminal, each blob in flight gets a line with a bar and
byte counts that is redrawn in place (ANSI cursor-up and erase-line), at most
ten times a second; a finished blob's line and other messages scroll above the
live lines, so the last line printed is the result. Safe to call from the
download threads.
"""

from __future__ import annotations

import threading
import time
from typing import TextIO

_REDRAW_INTERVAL = 0.1
_BAR = 24


def _size(n: int) -> str:
    """Decimal units as skopeo and docker print them (a 1193-byte config is not 0.0 MB)."""
    if n < 1000:
        return f"{n} B"
    for unit, scale in (("kB", 1e3), ("MB", 1e6), ("GB", 1e9)):
        if n < scale * 1000 or unit == "GB":
            return f"{n / scale:.1f} {unit}"
    raise AssertionError("unreachable")


class TerminalProgress:
    """Callable as a message sink; :meth:`blob_bytes` reports bytes of one blob."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self._blobs: dict[str, list[int]] = {}  # digest -> [done, total]
        self._drawn = 0
        self._last = 0.0

    def __call__(self, msg: str) -> None:
        if msg.startswith(("Copying blob ", "Blob ")) and " already present" not in msg:
            return  # shown as a live line instead
        with self._lock:
            self._erase()
            self.stream.write(msg + "\n")
            self._draw()

    def blob_bytes(self, digest: str, done: int, total: int) -> None:
        with self._lock:
            if done >= total:
                # finished: its final line scrolls up with the messages
                self._blobs.pop(digest, None)
                self._erase()
                self.stream.write(_line(digest, done, total))
                self._draw()
                return
            self._blobs[digest] = [done, total]
            now = time.monotonic()
            if now - self._last < _REDRAW_INTERVAL:
                return
            self._last = now
            self._erase()
            self._draw()

    def _erase(self) -> None:
        if self._drawn:
            self.stream.write(f"\x1b[{self._drawn}A")
            self.stream.write("\x1b[J")
            self._drawn = 0

    def _draw(self) -> None:
        for digest, (done, total) in self._blobs.items():
            self.stream.write(_line(digest, done, total))
        self._drawn = len(self._blobs)
        self.stream.flush()


def _line(digest: str, done: int, total: int) -> str:
    filled = min(_BAR, _BAR * done // total) if total else _BAR
    return (f"Copying blob {digest[:19]} [{'=' * filled}{' ' * (_BAR - filled)}] "
            f"{_size(done)} / {_size(total)}\n")

"""Progress output of transfers: plain lines, or a live display on a terminal.

Plain mode (stderr is not a terminal) prints one line per step, which logs and
tests can read. On a terminal, each blob in flight gets a line with a bar and
byte counts that is redrawn in place (ANSI cursor-up and erase-line), at most
ten times a second; other messages scroll above the live lines. Safe to call
from the download threads.
"""

from __future__ import annotations

import threading
import time
from typing import TextIO

_REDRAW_INTERVAL = 0.1
_BAR = 24


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


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
            self._blobs[digest] = [done, total]
            now = time.monotonic()
            if done < total and now - self._last < _REDRAW_INTERVAL:
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
            filled = _BAR * done // total if total else _BAR
            self.stream.write(f"Copying blob {digest[:19]} [{'=' * filled}{' ' * (_BAR - filled)}] "
                              f"{_mb(done)} / {_mb(total)}\n")
        self._drawn = len(self._blobs)
        self.stream.flush()

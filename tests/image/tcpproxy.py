"""A TCP proxy for fault tests: starts listening only after ``delay`` seconds (until
then connections are refused, as when a registry restarts), and with ``cut_after``
closes the first connection that has carried more than that many client bytes
(a connection lost in the middle of an upload); with ``rate`` each direction of
each connection carries at most that many bytes per second (a slow link, so a
transfer is still under way when a test interrupts it)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class TcpProxy:
    def __init__(self, target_port: int, port: int, *, delay: float = 0.0,
                 cut_after: int | None = None, rate: int | None = None) -> None:
        self.target_port, self.port = target_port, port
        self.rate = rate
        self.host = f"127.0.0.1:{port}"
        self.delay, self.cut_after = delay, cut_after
        self.cuts = 0
        self.connections = 0
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> TcpProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.close()

    def _serve(self) -> None:
        if self._stop.wait(self.delay):
            return
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pump, args=(client, upstream, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False),
                             daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        carried = 0
        try:
            while data := src.recv(65536):
                carried += len(data)
                if from_client and self.cut_after is not None and carried > self.cut_after:
                    with self._lock:
                        cut = self.cuts == 0
                        if cut:
                            self.cuts += 1
                    if cut:
                        # RST, not FIN: the client sees its connection reset mid-request
                        src.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       b"\x01\x00\x00\x00\x00\x00\x00\x00")
                        break
                dst.sendall(data)
                if self.rate:
                    time.sleep(len(data) / self.rate)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

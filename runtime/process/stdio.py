"""Pipes for the stdio of a container process run in the foreground.

runc's ``run`` and ``exec`` without ``--detach`` and without a terminal give
the process three pipes and copy between them and the runtime's own stdio
("setupProcessPipes"), rather than handing over the runtime's stdin, stdout
and stderr. Observable from inside (``/proc/self/fd/0`` is a pipe), and it
matters: a process that inherited the caller's terminal could read from it,
change its modes or push input into it (TIOCSTI) although ``process.terminal``
is false. The pipes are owned by the container's root, so the process can
reopen ``/dev/stdout`` inside a user namespace, as with runc.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
from collections.abc import Callable

from ketch.runtime.errors import KetchError

_CHUNK = 65536


class StdioPipes:
    """Three pipes: the process's ends (``child_fds``, stdin then stdout, stderr)
    and ours; ``copy_until_exit`` relays them and returns the exit status."""

    def __init__(self, uid: int = 0, gid: int = 0) -> None:
        """``uid``/``gid``: host ids of the container's root (owner of the pipes)."""
        self._fds: list[int] = []
        try:
            in_r, in_w = os.pipe2(os.O_CLOEXEC)
            self._fds += [in_r, in_w]
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            self._fds += [out_r, out_w]
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            self._fds += [err_r, err_w]
            if (uid, gid) != (0, 0):
                for fd in self._fds:
                    os.fchown(fd, uid, gid)
        except OSError as e:
            self.close()
            raise KetchError(f"unable to set up the process's stdio pipes: {e.strerror}") from e
        self.child_fds: tuple[int, int, int] | None = (in_r, out_w, err_w)
        self._stdin_w, self._stdout_r, self._stderr_r = in_w, out_r, err_r

    def close_child_ends(self) -> None:
        """After the fork: only the process holds its ends (EOF reaches us then)."""
        if self.child_fds is not None:
            for fd in self.child_fds:
                self._close(fd)
            self.child_fds = None

    def close(self) -> None:
        for fd in list(self._fds):
            self._close(fd)

    def _close(self, fd: int) -> None:
        if fd in self._fds:
            self._fds.remove(fd)
            with contextlib.suppress(OSError):
                os.close(fd)

    def copy_until_exit(self, pid: int, reap: Callable[[], int | None], *,
                        until_eof: bool = False) -> int:
        """Copy our stdin to the process and its stdout/stderr to ours until ``pid``
        exits, then what is left: for ``run`` what is buffered (the init's end
        takes the container's processes with it), with ``until_eof`` (``exec``,
        whose children may outlive it in the running container) until every
        holder of the pipes has closed them, as runc waits for its copies.
        ``reap()`` returns the exit code once ``pid`` is gone, or None while it
        runs."""
        self.close_child_ends()
        outputs = {self._stdout_r: 1, self._stderr_r: 2}
        stdin_open = _usable(0)
        if not stdin_open:
            self._close(self._stdin_w)
        pending = b""
        if self._stdin_w in self._fds:
            os.set_blocking(self._stdin_w, False)
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            pidfd = None
        try:
            code = None
            while code is None:
                readers = list(outputs)
                if stdin_open and not pending:
                    readers.append(0)
                if pidfd is not None:
                    readers.append(pidfd)
                writers = [self._stdin_w] if pending and self._stdin_w in self._fds else []
                try:
                    ready_r, ready_w, _ = select.select(readers, writers, [],
                                                       None if pidfd is not None else 0.05)
                except InterruptedError:
                    continue
                for fd in ready_r:
                    if fd in outputs:
                        if not self._relay(fd, outputs):
                            del outputs[fd]
                    elif fd == 0:
                        data = _read(0)
                        if data:
                            pending = data
                        else:
                            stdin_open = False
                            if not pending:
                                self._close(self._stdin_w)
                if ready_w:
                    pending = self._feed(pending)
                    if not stdin_open and not pending:
                        self._close(self._stdin_w)
                code = reap()
            self._close(self._stdin_w)
            if until_eof:
                while outputs:
                    try:
                        ready, _, _ = select.select(list(outputs), [], [])
                    except InterruptedError:
                        continue
                    for fd in ready:
                        if not self._relay(fd, outputs):
                            outputs.pop(fd, None)
            for fd in list(outputs):  # what the process wrote before it exited
                os.set_blocking(fd, False)
                while self._relay(fd, outputs):
                    pass
            return code
        finally:
            if pidfd is not None:
                os.close(pidfd)
            self.close()

    def _relay(self, fd: int, outputs: dict[int, int]) -> bool:
        """Copy one chunk from ``fd`` to its stdio; False at EOF (or nothing left)."""
        try:
            data = os.read(fd, _CHUNK)
        except BlockingIOError:
            return False
        if not data:
            return False
        try:
            _write_all(outputs[fd], data)
        except OSError:
            # EPIPE and friends: our reader went away. Close this end so the
            # process's next write fails (SIGPIPE) as it would under runc,
            # instead of draining output nobody reads.
            self._close(fd)
            return False
        return True

    def _feed(self, pending: bytes) -> bytes:
        try:
            written = os.write(self._stdin_w, pending)
        except BlockingIOError:
            return pending
        except OSError as e:  # EPIPE: the process closed its stdin
            if e.errno != errno.EPIPE:
                raise
            self._close(self._stdin_w)
            return b""
        return pending[written:]


def _usable(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, _CHUNK)
    except OSError:
        return b""


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]

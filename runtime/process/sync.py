"""Typed messages between the runtime and the processes it forks.

The runtime (parent), the namespace-setup child (stage 1) and the container's
init talk over one ``AF_UNIX``/``SOCK_SEQPACKET`` socketpair, so each send is
one message. A message is a small JSON object with a ``type`` field; the
types are the constants below. Modelled on runc's ``libcontainer/sync.go``
and youki's channel messages.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from typing import Any

# parent -> stage 1: the cgroup is joined; go on
PROCEED = "proceed"
# stage 1 -> parent: I unshared the user namespace; write my uid/gid maps
USERNS_READY = "userns-ready"
# parent -> stage 1: the maps are written
USERNS_MAPPED = "userns-mapped"
# stage 1 -> parent: the container's init has this pid (in the runtime's pid namespace)
INIT_PID = "init-pid"
# parent -> init: detached idmapped mounts (fds over SCM_RIGHTS), ``mounts``
# lists their indices in config.json's mounts
MOUNT_FDS = "mount-fds"
# init -> parent: mounts are done, run the prestart/createRuntime hooks now
RUN_HOOKS = "run-hooks"
# parent -> init: those hooks succeeded
HOOKS_DONE = "hooks-done"
# init -> parent: the container is fully set up and about to wait for `start`
READY = "ready"
# any child -> parent: setup failed; ``message`` says why
ERROR = "error"
# init or exec'd process -> parent: the seccomp listener fd rides along (SCM_RIGHTS)
SECCOMP_FD = "seccomp-fd"
# parent -> child: the listener fd has been handed to the seccomp agent
SECCOMP_DONE = "seccomp-done"
# any child -> parent: a log line (``level``, ``message``) for the runtime's log
LOG = "log"

_MAX = 1 << 16


class SyncError(Exception):
    """The peer closed the socket or sent something unexpected."""


class SyncSocket:
    """One end of the socketpair; ``send``/``expect`` typed messages."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        # called with (level, message) for LOG messages met by ``expect``
        self.on_log: Callable[[str, str], None] | None = None

    @classmethod
    def pair(cls) -> tuple[SyncSocket, SyncSocket]:
        """(parent end, child end); both close-on-exec."""
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        return cls(a), cls(b)

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def send(self, msg_type: str, **fields: Any) -> None:
        self.sock.send(json.dumps({"type": msg_type, **fields}).encode())

    def send_fds(self, msg_type: str, fds: list[int], **fields: Any) -> None:
        """``send`` with ``fds`` attached (SCM_RIGHTS); the caller keeps its copies.
        ``recv`` hands them over in the message's ``fds`` list."""
        socket.send_fds(self.sock, [json.dumps({"type": msg_type, **fields}).encode()], fds)

    def expect_fds(self, msg_type: str, max_fds: int) -> tuple[dict[str, Any], list[int]]:
        """Receive one ``msg_type`` message and the fds attached to it (at most
        ``max_fds``); an ``error`` message or another type raises ``SyncError``."""
        data, fds, _flags, _addr = socket.recv_fds(self.sock, _MAX, max_fds)
        for fd in fds:
            os.set_inheritable(fd, False)
        if not data:
            raise SyncError("peer exited before sending its fds")
        msg = json.loads(data)
        if not isinstance(msg, dict) or msg.get("type") != msg_type:
            for fd in fds:
                os.close(fd)
            raise SyncError(f"expected {msg_type!r} message, got {data[:100]!r}")
        return msg, fds

    def _recv(self) -> dict[str, Any] | None:
        # recvmsg with room for fds: a plain recv(2) would drop (close) them
        data, fds, _flags, _addr = socket.recv_fds(self.sock, _MAX, 4)
        if not data:
            for fd in fds:
                os.close(fd)
            return None
        msg = json.loads(data)
        if not isinstance(msg, dict) or "type" not in msg:
            for fd in fds:
                os.close(fd)
            raise SyncError(f"malformed sync message: {data[:100]!r}")
        if fds:
            msg["fds"] = fds
        return msg

    def recv(self) -> dict[str, Any]:
        """The next message (received fds in its ``fds`` list, owned by the caller);
        raises ``SyncError`` when the peer has gone."""
        msg = self._recv()
        if msg is None:
            raise SyncError("child exited before finishing setup")
        return msg

    def expect_eof(self, on_message: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Wait for the peer to close (its close-on-exec end went with a
        successful execve); an ``error`` message raises ``SyncError``, other
        messages go to ``on_message``."""
        while True:
            msg = self._recv()
            if msg is None:
                return
            if msg.get("type") == LOG and self.on_log is not None:
                self.on_log(msg.get("level", "info"), msg.get("message", ""))
            elif msg.get("type") == ERROR:
                raise SyncError(msg.get("message", "unknown error"))
            elif on_message is not None:
                on_message(msg)

    def expect(self, msg_type: str) -> dict[str, Any]:
        """Receive one message of ``msg_type``; an ``error`` message raises ``SyncError``."""
        msg = self.recv()
        while msg["type"] == LOG and self.on_log is not None:
            self.on_log(msg.get("level", "info"), msg.get("message", ""))
            msg = self.recv()
        if msg["type"] == ERROR:
            raise SyncError(msg.get("message", "unknown error"))
        if msg["type"] != msg_type:
            raise SyncError(f"expected {msg_type!r} message, got {msg['type']!r}")
        return msg

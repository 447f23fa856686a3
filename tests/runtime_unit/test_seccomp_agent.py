"""The seccomp listener's way out: a sync message carrying an fd, and the
container process state sent to the agent (runtime.md "Container Process State")."""

from __future__ import annotations

import json
import os
import socket
import threading

import pytest

from ketch.runtime.linux.seccomp_agent import SeccompAgentError, send_listener_fd
from ketch.runtime.process import sync
from ketch.runtime.process.sync import SyncSocket


def test_sync_message_carries_an_fd_and_plain_ones_still_work():
    parent, child = SyncSocket.pair()
    r, w = os.pipe()
    try:
        child.send_fds(sync.SECCOMP_FD, [w])
        child.send(sync.READY)
        msg = parent.recv()
        assert msg["type"] == sync.SECCOMP_FD and len(msg["fds"]) == 1
        os.write(msg["fds"][0], b"through")  # the very same pipe
        os.close(msg["fds"][0])
        assert os.read(r, 7) == b"through"
        assert parent.expect(sync.READY) == {"type": sync.READY}
    finally:
        for end in (parent, child):
            end.close()
        os.close(r)
        os.close(w)


def test_agent_receives_state_and_fd(tmp_path):
    path = str(tmp_path / "agent.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    got: dict = {}

    def accept() -> None:
        conn, _ = server.accept()
        with conn:
            msg, fds, _, _ = socket.recv_fds(conn, 65536, 2)
        got["state"] = json.loads(msg)
        got["fds"] = fds

    t = threading.Thread(target=accept)
    t.start()
    r, w = os.pipe()
    state = {"ociVersion": "1.0.2", "id": "c1", "status": "creating", "pid": 42, "bundle": "/b"}
    try:
        send_listener_fd(path, w, state, 42, "meta")
        t.join(5)
        assert got["state"] == {"ociVersion": "1.0.2", "fds": ["seccompFd"], "pid": 42,
                                "metadata": "meta", "state": state}
        assert len(got["fds"]) == 1 and os.fstat(got["fds"][0]).st_ino == os.fstat(w).st_ino
    finally:
        for fd in (r, w, *got.get("fds", [])):
            os.close(fd)
        server.close()


def test_agent_missing_is_runcs_error(tmp_path):
    r, w = os.pipe()
    try:
        with pytest.raises(SeccompAgentError, match=r"failed to connect with seccomp agent "
                           r"specified in the seccomp profile: dial unix .*/none.sock: "
                           r"connect: no such file or directory"):
            send_listener_fd(str(tmp_path / "none.sock"), w, {}, 1, None)
    finally:
        os.close(r)
        os.close(w)

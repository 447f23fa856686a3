"""Hand a seccomp listener fd to the agent at ``linux.seccomp.listenerPath``.

runtime-spec config-linux.md "Seccomp" (``listenerPath``,
``listenerMetadata``) and runtime.md "Container Process State": the runtime
connects to the AF_UNIX stream socket at ``listenerPath`` and sends one
message whose payload is the container process state (JSON: ``ociVersion``,
``fds``, ``pid``, ``metadata``, ``state``) and whose SCM_RIGHTS data carries
the fds named in ``fds`` (here only ``seccompFd``). runc does the same from
its parent process, for the init and for each exec'd process.
"""

from __future__ import annotations

import json
import socket

from ketch.runtime.errors import KetchError

SECCOMP_FD_NAME = "seccompFd"


class SeccompAgentError(KetchError):
    """The seccomp agent could not be reached or did not take the fd."""


def process_state(state: dict, pid: int, metadata: str | None) -> dict:
    """The container process state for ``pid`` (the process the filter belongs to);
    ``state``: the container's state object (runtime.md "State")."""
    doc: dict = {"ociVersion": state.get("ociVersion", ""), "fds": [SECCOMP_FD_NAME], "pid": pid}
    if metadata:
        doc["metadata"] = metadata
    doc["state"] = state
    return doc


def send_listener_fd(listener_path: str, fd: int, state: dict, pid: int,
                     metadata: str | None) -> None:
    """Connect to ``listener_path`` and send the process state with ``fd`` attached.

    Raises ``SeccompAgentError`` with runc's wording when the agent cannot be
    reached or the send fails.
    """
    payload = json.dumps(process_state(state, pid, metadata)).encode()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        try:
            sock.connect(listener_path)
        except OSError as e:
            raise SeccompAgentError(
                "failed to connect with seccomp agent specified in the seccomp profile: "
                f"dial unix {listener_path}: connect: {(e.strerror or str(e)).lower()}") from None
        try:
            socket.send_fds(sock, [payload], [fd])
        except OSError as e:
            raise SeccompAgentError(f"cannot send seccomp fd to {listener_path}: "
                                    f"{(e.strerror or str(e)).lower()}") from None
    finally:
        sock.close()

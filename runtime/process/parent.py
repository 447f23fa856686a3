"""The runtime side of ``create``: fork stage 1, join its cgroup, map its ids,
and wait until the container's init reports READY.

runtime-spec runtime.md "create" (the environment is built, the user program
is not run); the parent/child split follows runc's ``process_linux.go`` and
youki's main/intermediate/init chain. On any failure every process forked
here is killed and reaped before the error is raised, so nothing half-created
survives.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable

from ketch.runtime import syscalls
from ketch.runtime.cgroups.fs import CgroupJoinError, CgroupManager
from ketch.runtime.errors import ProcessError
from ketch.runtime.linux import idmap
from ketch.runtime.linux.hooks import run_hooks
from ketch.runtime.linux.seccomp_agent import SeccompAgentError, send_listener_fd
from ketch.runtime.process import sync
from ketch.runtime.process.init import InitOptions, stage1_main
from ketch.runtime.process.setns import ExecOptions, exec_stage1_main
from ketch.runtime.process.sync import SyncError, SyncSocket


def _write_id_map(pid: int, name: str, mappings: list[dict]) -> None:
    lines = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in mappings)
    with open(f"/proc/{pid}/{name}", "w") as f:
        f.write(lines)


def _fork_stage1(stage1: Callable[[SyncSocket], None],
                 log: Callable[[str, str], None]) -> tuple[SyncSocket, int]:
    """Fork a stage-1 child running ``stage1(child_end)`` (which never returns);
    return our end of the sync socket and the child's pid."""
    parent_end, child_end = SyncSocket.pair()
    parent_end.on_log = log
    pid = os.fork()
    if pid == 0:
        parent_end.close()
        stage1(child_end)
    child_end.close()
    return parent_end, pid


def _start_failure(err: SyncError | OSError) -> ProcessError:
    reason = (str(err) if isinstance(err, (SyncError, CgroupJoinError))
              else f"{err.strerror}: {err.filename}")
    # runc's wording; callers such as containerd show it to users as is
    return ProcessError(f"unable to start container process: {reason}")


def spawn_init(spec: dict, opts: InitOptions, cgroup: CgroupManager,
               log: Callable[[str, str], None],
               on_ready: Callable[[int], None] | None = None) -> int:
    """Fork the container's process chain; return the init's pid once it is READY.

    ``spec``: the validated config.json document; ``cgroup``: created by the
    caller, the init is placed in it before any namespace work; ``log(level,
    msg)`` receives warnings from the children; ``on_ready(init_pid)`` runs
    once the init has set the container up and waits for ``start`` (runc sets
    the cgroup's resources at that point, "procReady": the setup's own
    processes and allocations are not held to the container's limits).
    Raises ``ProcessError`` with the child's own message, or what
    ``on_ready`` raised; nothing is left running.
    """
    parent_end, stage1 = _fork_stage1(lambda chan: stage1_main(chan, spec, opts), log)
    init_pid = 0
    try:
        cgroup.add(stage1)
        parent_end.send(sync.PROCEED)
        linux = spec.get("linux", {})
        if any(ns.get("type") == "user" and not ns.get("path")
               for ns in linux.get("namespaces", []) or []):
            parent_end.expect(sync.USERNS_READY)
            _write_id_map(stage1, "uid_map", linux.get("uidMappings") or [])
            _write_id_map(stage1, "gid_map", linux.get("gidMappings") or [])
            parent_end.send(sync.USERNS_MAPPED)
        init_pid = int(parent_end.expect(sync.INIT_PID)["pid"])
        _reap(stage1)
        stage1 = 0
        # after INIT_PID, so that a failure here knows which init to kill
        _send_idmapped_mounts(parent_end, spec, opts.bundle, init_pid)
        while True:
            msg = parent_end.recv()
            if msg["type"] == sync.RUN_HOOKS:
                # runtime namespace, after the container's mounts, before pivot_root
                state = {**opts.hook_state, "status": "creating", "pid": init_pid}
                # The OCI validation suite (hooks_stdin) holds prestart hooks to
                # "created"; runc 1.1 passes "creating" there and we do so for
                # the hooks that replaced prestart.
                # in the bundle, with the runtime's environment, as runc (which
                # chdirs into the bundle for create/run)
                run_hooks(spec, "prestart", {**state, "status": "created"}, opts.bundle,
                          inherit_env=True)
                run_hooks(spec, "createRuntime", state, opts.bundle, inherit_env=True)
                parent_end.send(sync.HOOKS_DONE)
            elif msg["type"] == sync.LOG:
                log(msg.get("level", "info"), msg.get("message", ""))
            elif msg["type"] == sync.ERROR:
                raise SyncError(msg.get("message", "unknown error"))
            elif msg["type"] == sync.SECCOMP_FD:
                _to_seccomp_agent(spec.get("linux", {}).get("seccomp") or {}, msg,
                                  {**opts.hook_state, "status": "creating", "pid": init_pid},
                                  init_pid)
                parent_end.send(sync.SECCOMP_DONE)
            elif msg["type"] == sync.READY:
                if on_ready is not None:
                    on_ready(init_pid)
                return init_pid
            else:
                raise SyncError(f"unexpected sync message {msg['type']!r}")
    except (SyncError, OSError) as e:
        # the init is our child only when we are its subreaper; reaped if we can
        _kill_and_reap(init_pid, stage1)
        raise _start_failure(e) from e
    except BaseException:  # a failed hook, idmapped mount or on_ready: their own message
        _kill_and_reap(init_pid, stage1)
        raise
    finally:
        parent_end.close()


def _send_idmapped_mounts(chan: SyncSocket, spec: dict, bundle: str, init_pid: int) -> None:
    """Make the detached idmapped mounts here, in the runtime's namespaces, and
    hand them to the init (which waits for them before its mounts)."""
    indices = idmap.mount_indices(spec)
    if not indices:
        return
    userns = None
    for ns in (spec.get("linux") or {}).get("namespaces") or []:
        if ns.get("type") == "user":
            userns = ns.get("path") or f"/proc/{init_pid}/ns/user"
    fds = idmap.prepare_mounts(syscalls.linux(), spec, bundle, userns)
    try:
        chan.send_fds(sync.MOUNT_FDS, fds, mounts=indices)
    finally:
        for fd in fds:
            os.close(fd)


def spawn_exec(process: dict, opts: ExecOptions, cgroup: CgroupManager,
               log: Callable[[str, str], None]) -> int:
    """Fork a process into the running container of ``opts.init_pid``; return
    its pid once it has exec'd ``process.args``.

    The process joins ``cgroup`` before it enters any namespace. Raises
    ``ProcessError`` with the process's own message (nothing is left running).
    """
    parent_end, stage1 = _fork_stage1(lambda chan: exec_stage1_main(chan, process, opts), log)
    pid = 0
    try:
        cgroup.add(stage1)
        parent_end.send(sync.PROCEED)
        pid = int(parent_end.expect(sync.INIT_PID)["pid"])
        _reap(stage1)
        stage1 = 0

        def on_message(msg: dict) -> None:
            if msg["type"] != sync.SECCOMP_FD:
                raise SyncError(f"unexpected sync message {msg['type']!r}")
            _to_seccomp_agent(opts.seccomp or {}, msg, opts.state or {}, pid)
            parent_end.send(sync.SECCOMP_DONE)

        parent_end.expect_eof(on_message)
        return pid
    except (SyncError, OSError) as e:
        _kill_and_reap(pid, stage1)
        raise _start_failure(e) from e
    finally:
        parent_end.close()


def _to_seccomp_agent(seccomp: dict, msg: dict, state: dict, pid: int) -> None:
    """Pass the listener fd in ``msg`` to ``seccomp.listenerPath`` (then close ours)."""
    fds = msg.get("fds") or []
    try:
        if not fds:
            raise SyncError("seccomp listener fd missing from the sync message")
        # runtime.md "State" order, as runc marshals it
        ordered = {k: state[k] for k in ("ociVersion", "id", "status", "pid", "bundle",
                                         "annotations") if k in state}
        send_listener_fd(seccomp.get("listenerPath", ""), fds[0], ordered, pid,
                         seccomp.get("listenerMetadata"))
    except SeccompAgentError as e:
        raise SyncError(str(e)) from None
    finally:
        for fd in fds:
            os.close(fd)


def _kill_and_reap(pid: int, stage1: int) -> None:
    for p in (pid, stage1):
        if p:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
    for p in (stage1, pid):
        if p:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(p, 0)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)

"""The container side of ``exec``: enter a running container and exec a process.

Not a runtime-spec operation but runc's ``exec`` (runc ``setns_init_linux.go``):
stage 1 (forked from the runtime, single-threaded, non-dumpable) joins every
namespace the container's init has that differs from ours — the user
namespace first — and forks the process, so a joined pid namespace applies
to it. The process applies the ``process`` object (terminal, rlimits,
capabilities, no_new_privs, user, cwd) and execs. The sync socket is
close-on-exec: the runtime reads EOF on success and an ``error`` message on
failure, so even a failing execve(2) is reported.
"""

from __future__ import annotations

import os

from ketch.runtime import syscalls as s
from ketch.runtime.linux.console import setup_console
from ketch.runtime.linux.lsm import apply_apparmor
from ketch.runtime.linux.namespaces import FLAGS, PROC_NAMES
from ketch.runtime.linux.process_attrs import apply_io_priority, apply_scheduler
from ketch.runtime.process.init import (
    exec_process,
    prepare_exec,
    report,
    run_stage1,
    set_rlimits,
    set_user,
)
from ketch.runtime.process.sync import SyncSocket

# Joining order: the user namespace first (it owns the rest), the mount
# namespace late (it changes our root and cwd).
_JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")


class ExecOptions:
    """What the exec'd process needs beyond its ``process`` object."""

    def __init__(self, init_pid: int, *, preserve_fds: int = 0, console_fd: int | None = None,
                 debug: bool = False, seccomp: dict | None = None,
                 state: dict | None = None, console_proxied: bool = False,
                 stdio: tuple[int, int, int] | None = None) -> None:
        self.init_pid = init_pid
        self.stdio = stdio  # fds that become the process's 0, 1, 2
        self.preserve_fds = preserve_fds
        self.console_fd = console_fd
        # the runtime proxies the pty to its caller: ONLCR off before the process runs
        self.console_proxied = console_proxied
        self.debug = debug
        # the container's linux.seccomp: an exec'd process gets the same filter (runc)
        self.seccomp = seccomp
        # the container's state, for a seccomp agent (runtime.md "Container Process State")
        self.state = state


def namespaces_to_join(init_pid: int) -> list[tuple[str, str]]:
    """(type, /proc/PID/ns path) of every namespace of ``init_pid`` that differs from ours."""
    joins = []
    for ns_type in _JOIN_ORDER:
        name = PROC_NAMES[ns_type]
        theirs = f"/proc/{init_pid}/ns/{name}"
        try:
            if os.readlink(theirs) != os.readlink(f"/proc/self/ns/{name}"):
                joins.append((ns_type, theirs))
        except FileNotFoundError:
            continue  # a namespace type this kernel does not have
    return joins


def exec_stage1_main(chan: SyncSocket, process: dict, opts: ExecOptions) -> None:
    """Join the container's namespaces and fork the process. Never returns."""

    def enter(sc: s.Syscalls) -> None:
        # Open every namespace before entering any: after joining the mount
        # namespace the container's /proc is no longer ours to read.
        fds = [(t, os.open(p, os.O_RDONLY | os.O_CLOEXEC))
               for t, p in namespaces_to_join(opts.init_pid)]
        for ns_type, fd in fds:
            sc.setns(fd, FLAGS[ns_type])
            os.close(fd)
            if ns_type == "user":
                sc.setresgid(0)
                sc.setresuid(0)

    keep = {chan.fileno()} | ({opts.console_fd} if opts.console_fd is not None else set())
    run_stage1(chan, keep, opts.preserve_fds, opts.debug, enter,
               lambda: _process_main(chan, process, opts), opts.stdio)


def _process_main(chan: SyncSocket, process: dict, opts: ExecOptions) -> None:
    try:
        sc = s.linux()
        os.chdir("/")
        # A session of its own, as runc's exec gives: the caller's controlling
        # terminal and process group are not the container's (no /dev/tty to
        # the host's terminal, no second copy of a Ctrl-C sent to the group).
        os.setsid()
        if process.get("terminal") and opts.console_fd is not None:
            setup_console(sc, opts.console_fd, process.get("consoleSize"), mount_console=False,
                          clear_onlcr=opts.console_proxied)
        set_rlimits(process)
        apply_io_priority(sc, process.get("ioPriority"))
        apply_scheduler(process.get("scheduler"))
        late_filter = set_user(sc, chan, process, opts.seccomp)
        path, args, env = prepare_exec(process)
        s.linux().close_range_cloexec(3 + opts.preserve_fds)
        apply_apparmor(process.get("apparmorProfile"))
        if late_filter is not None:
            sc.load_seccomp(late_filter)
        exec_process(path, args, env)
    except BaseException as e:  # report every failure, then exit
        report(chan, e, opts.debug)
        os._exit(255)

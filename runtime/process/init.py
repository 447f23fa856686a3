"""The container side of ``create``: namespace setup child and container init.

Stage 1 (forked from the runtime, single-threaded) joins or creates the
namespaces; it forks the init, which becomes PID 1 of a new pid namespace.
The init builds the rootfs, applies the process attributes, reports READY
and then blocks opening ``exec.fifo`` until ``start`` reads it, and finally
execs ``process.args`` (runtime-spec runtime.md "Lifecycle" steps 1-3 of
create, and "start"; config.md "Process", "Hostname", "POSIX process").

Neither function returns: each ends in ``os._exit`` or ``execve``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import signal
import traceback
from collections.abc import Callable

from ketch.runtime import syscalls as s
from ketch.runtime.errors import KetchError
from ketch.runtime.linux import idmap
from ketch.runtime.linux.capabilities import CapabilitySets
from ketch.runtime.linux.console import setup_console
from ketch.runtime.linux.hooks import hooks_of, run_hooks
from ketch.runtime.linux.hooks import preload as preload_hooks
from ketch.runtime.linux.lsm import apply_apparmor
from ketch.runtime.linux.namespaces import NamespacePlan, join_namespaces
from ketch.runtime.linux.process_attrs import (
    apply_io_priority,
    apply_personality,
    apply_scheduler,
    write_time_offsets,
)
from ketch.runtime.linux.procfs import write_procfs
from ketch.runtime.linux.rootfs import setup_rootfs
from ketch.runtime.linux.seccomp import build_filter
from ketch.runtime.process import sync
from ketch.runtime.process.sync import SyncSocket
from ketch.runtime.syscalls import SeccompFilter

_MAX_ID = 2**31 - 1  # runc's bound for uids and gids


class InitError(KetchError):
    """Setting up the container process failed."""


class InitOptions:
    """What the init needs beyond config.json.

    ``state_dir_fd``: an O_PATH fd of ``<root>/<id>``, to reach exec.fifo after
    pivot_root; ``console_fd``: the connected console socket when
    ``process.terminal`` is true; ``console_proxied``: the runtime proxies that
    pty to its caller (clear ONLCR before anything is written). (A plain class: dataclasses cost ~20 ms of
    imports on the container start path.)
    """

    def __init__(self, bundle: str, state_dir_fd: int, *, no_pivot: bool = False,
                 preserve_fds: int = 0, debug: bool = False,
                 console_fd: int | None = None, hook_state: dict | None = None,
                 no_new_keyring: bool = False, console_proxied: bool = False,
                 stdio: tuple[int, int, int] | None = None) -> None:
        self.bundle = bundle
        # the process's ends of the foreground stdio pipes (ketch.runtime.process.stdio)
        self.stdio = stdio
        self.state_dir_fd = state_dir_fd
        self.no_pivot = no_pivot
        self.preserve_fds = preserve_fds
        self.debug = debug
        self.console_fd = console_fd
        self.console_proxied = console_proxied
        # the state given to hooks run by the init (status and pid filled in)
        self.hook_state = hook_state or {}
        self.no_new_keyring = no_new_keyring


def run_stage1(chan: SyncSocket, keep: set[int], preserve_fds: int, debug: bool,
               enter: Callable[[s.Syscalls], None], child: Callable[[], None],
               stdio: tuple[int, int, int] | None = None) -> None:
    """The frame both stage-1 children share (create's and exec's); never returns.

    Closes every fd but stdio, the preserved ones and ``keep`` (the runtime's
    own fds must not reach the container), turns non-dumpable, waits for the
    parent's PROCEED (cgroup joined), runs ``enter`` to create or join
    namespaces, forks ``child`` and reports its pid; any failure is reported
    to the parent as an ``error`` message. ``stdio``: fds that become 0, 1, 2.
    """
    code = 1
    try:
        for target, fd in enumerate(stdio or ()):
            os.dup2(fd, target)  # the pipes' originals go with the fds closed next
        close_fds_except(keep, 3 + preserve_fds)
        _hide_command_line()
        sc = s.linux()
        # A dumpable process that enters the container could be ptraced or have
        # its /proc/PID/{exe,fd} opened from inside (CVE-2019-5736 class).
        sc.prctl(s.PR_SET_DUMPABLE, 0)
        chan.expect(sync.PROCEED)
        enter(sc)
        pid = os.fork()
        if pid == 0:
            child()
        chan.send(sync.INIT_PID, pid=pid)
        code = 0
    except BaseException as e:  # report every failure to the parent, then exit
        report(chan, e, debug)
    finally:
        os._exit(code)


def _hide_command_line() -> None:
    """Show ``ketch init`` as our command line, as runc shows ``runc init``: the
    container can read /proc/1/cmdline before ``start``, and the runtime's
    interpreter, script and ``--root`` paths are host details it has no
    business seeing."""
    import setproctitle  # a C extension: no measurable cost on the hot path

    setproctitle.setproctitle("ketch init")


def stage1_main(chan: SyncSocket, spec: dict, opts: InitOptions) -> None:
    """Namespace setup child of ``create``; see the module docstring. Never returns."""
    plan = NamespacePlan.from_spec(spec)

    def enter(sc: s.Syscalls) -> None:
        # Still in the host's namespaces, so through the host's /proc: a rootfs
        # cannot fake the file (runc's nsexec writes it at the same point).
        process = spec.get("process") or {}
        if "oomScoreAdj" in process:
            write_procfs(sc, "/proc/self/oom_score_adj", str(process["oomScoreAdj"]),
                         "process.oomScoreAdj")
        join_namespaces(sc, plan, only={"user"})
        if "user" in plan.new:
            sc.unshare(s.CLONE_NEWUSER)
            chan.send(sync.USERNS_READY)
            chan.expect(sync.USERNS_MAPPED)
        if plan.has("user"):
            sc.setresgid(0)
            sc.setresuid(0)
        join_namespaces(sc, plan, only={t for t, _ in plan.join if t != "user"})
        sc.unshare(plan.unshare_flags())
        if "time" in plan.new:
            write_time_offsets((spec.get("linux") or {}).get("timeOffsets"))

    keep = {chan.fileno(), opts.state_dir_fd}
    if opts.console_fd is not None:
        keep.add(opts.console_fd)
    run_stage1(chan, keep, opts.preserve_fds, opts.debug, enter,
               lambda: init_main(chan, spec, opts, plan), opts.stdio)


def close_fds_except(keep: set[int], first: int) -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= first and fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def report(chan: SyncSocket, err: BaseException, debug: bool) -> None:
    message = str(err) if isinstance(err, KetchError) else _describe(err)
    if debug:
        message += "\n" + traceback.format_exc()
    with contextlib.suppress(OSError):
        chan.send(sync.ERROR, message=message)


def _describe(err: BaseException) -> str:
    if isinstance(err, OSError):
        text = err.strerror or str(err)
        return f"{text}: {err.filename}" if err.filename else text
    return f"{type(err).__name__}: {err}"


def init_main(chan: SyncSocket, spec: dict, opts: InitOptions, plan: NamespacePlan) -> None:
    """The container's init; see the module docstring. Never returns."""
    try:
        late_filter = _setup(chan, spec, opts, plan)
        process = spec.get("process")
        # runtime.md: create works without a process; only start needs one
        # (and refuses before it would release us).
        path, args, env = prepare_exec(process) if process else ("", [], {})
        fd_base = 3 + opts.preserve_fds
        chan.send(sync.READY)
        chan.close()
        _wait_for_start(opts.state_dir_fd)
        if not process:
            os._exit(255)
        run_hooks(spec, "startContainer", {**opts.hook_state, "status": "created",
                                           "pid": os.getpid()})
        s.linux().close_range_cloexec(fd_base)
        apply_apparmor((process or {}).get("apparmorProfile"))
        if late_filter is not None:
            s.linux().load_seccomp(late_filter)
        exec_process(path, args, env)
    except BaseException as e:  # report every failure, then exit
        with contextlib.suppress(Exception):
            report(chan, e, opts.debug)
        if chan.sock.fileno() < 0:
            # After READY nobody listens: as runc's init, say it on the
            # container's stderr and exit 1 (a failed startContainer hook, an
            # execve the seccomp filter refuses).
            message = str(e) if isinstance(e, KetchError) else f"exec failed: {_describe(e)}"
            with contextlib.suppress(OSError):
                os.write(2, f"{message}\n".encode())
            os._exit(1)
        os._exit(255)


def _setup(chan: SyncSocket, spec: dict, opts: InitOptions,
           plan: NamespacePlan) -> SeccompFilter | None:
    sc = s.linux()
    os.setsid()
    if not opts.no_new_keyring:
        _join_session_keyring(sc, opts.hook_state.get("id", ""))
    process = spec.get("process") or {}

    def create_hooks() -> None:
        if hooks_of(spec, "prestart") or hooks_of(spec, "createRuntime"):
            chan.send(sync.RUN_HOOKS)
            chan.expect(sync.HOOKS_DONE)
        # runc runs createContainer hooks from the rootfs (before pivot_root)
        run_hooks(spec, "createContainer", {**opts.hook_state, "status": "creating",
                                            "pid": os.getpid()},
                  cwd=os.path.join(opts.bundle, spec["root"]["path"]))

    detached: dict[int, int] = {}
    idmapped = idmap.mount_indices(spec)
    if idmapped:
        msg, fds = chan.expect_fds(sync.MOUNT_FDS, len(idmapped))
        detached = dict(zip(msg.get("mounts", []), fds, strict=False))
    def sysctls() -> None:
        for key, value in (spec.get("linux", {}).get("sysctl") or {}).items():
            write_procfs(sc, "/proc/sys/" + key.replace(".", "/"), value,
                         f"linux.sysctl[{key!r}]")

    preload_hooks(spec, "startContainer")
    setup_rootfs(sc, spec, opts.bundle, no_pivot=opts.no_pivot, userns=plan.has("user"),
                 mount_ns=plan.has("mount"), before_pivot=create_hooks, after_pivot=sysctls,
                 detached=detached)
    if process.get("terminal") and opts.console_fd is not None:
        setup_console(sc, opts.console_fd, process.get("consoleSize"),
                      clear_onlcr=opts.console_proxied)
    if spec.get("hostname"):
        sc.sethostname(spec["hostname"])
    if spec.get("domainname"):
        sc.setdomainname(spec["domainname"])
    apply_personality(sc, spec.get("linux", {}).get("personality"))
    if not process:
        return
    set_rlimits(process)
    apply_io_priority(sc, process.get("ioPriority"))
    apply_scheduler(process.get("scheduler"))
    return set_user(sc, chan, process, spec.get("linux", {}).get("seccomp"))


def set_user(sc: s.Syscalls, chan: SyncSocket, process: dict,
             seccomp: dict | None = None) -> SeccompFilter | None:
    """Capabilities, no_new_privs and the uid/gid switch, in runc's order.

    ``seccomp`` (``linux.seccomp``): without no_new_privs loading a filter is
    privileged, so it is loaded here, before capabilities are dropped; with
    no_new_privs the built filter is returned for the caller to load as the
    last step before execve (fewest syscalls under the filter; runc's order).
    A filter with ``SCMP_ACT_NOTIFY`` is loaded here in both cases and its
    listener fd sent over ``chan`` (``sync.SECCOMP_FD``) for the agent.
    """
    user = process.get("user") or {}
    ids = [user.get("uid", 0), user.get("gid", 0), *(user.get("additionalGids") or [])]
    if not all(0 <= i <= _MAX_ID for i in ids):
        # (uid_t)-1 means "unchanged" to setresuid(2): the process would stay root
        raise InitError(f"unable to setup user: uids and gids must be in range 0-{_MAX_ID}")
    late_filter = None
    early_filter = False
    if seccomp:
        flt = build_filter(seccomp)
        if process.get("noNewPrivileges"):
            late_filter = flt
        else:
            # The filter may refuse getcwd(2) (the OCI validation suite's
            # linux_seccomp does), which the check after the uid switch needs:
            # check the cwd once now, while nothing is filtered.
            _enter_cwd(process.get("cwd", "/"), filtered=False)
            os.chdir("/")
            _hand_over_listener(chan, sc.load_seccomp(flt))
            early_filter = True
    caps = CapabilitySets(process.get("capabilities"),
                          lambda m: chan.send(sync.LOG, level="warning", message=m))
    if process.get("capabilities") is not None:
        caps.drop_bounding(sc)
    if process.get("noNewPrivileges"):
        sc.prctl(s.PR_SET_NO_NEW_PRIVS, 1)
    sc.prctl(s.PR_SET_KEEPCAPS, 1)
    os.setgroups(list(user.get("additionalGids") or []))
    sc.setresgid(user.get("gid", 0))
    sc.setresuid(user.get("uid", 0))
    sc.prctl(s.PR_SET_KEEPCAPS, 0)
    if process.get("capabilities") is not None:
        try:
            caps.apply(sc)
        except OSError as e:  # runc's wording
            raise InitError(f"unable to apply caps: {(e.strerror or str(e)).lower()}") from e
    os.umask(user.get("umask", 0o022))
    _enter_cwd(process.get("cwd", "/"), filtered=early_filter)
    if late_filter is not None and late_filter.uses_notify():
        # The listener fd reaches the agent through the runtime, which listens
        # only until READY (exec: until execve): load it now, not last (runc too).
        _hand_over_listener(chan, sc.load_seccomp(late_filter))
        late_filter = None
    return late_filter


def _enter_cwd(cwd: str, *, filtered: bool) -> None:
    """chdir to ``process.cwd`` and make sure it is inside the container's root.

    A cwd such as /proc/self/fd/N can reach a directory fd of ours outside the
    rootfs (CVE-2024-21626); getcwd(2) fails with ENOENT for a directory
    outside our root. ``filtered``: a seccomp filter is loaded that may refuse
    getcwd itself; then only ENOENT counts (the same cwd was checked before
    the filter was loaded).
    """
    try:
        os.chdir(cwd)
    except OSError as e:
        # runc's text: Go's %q quoting, the errno text in lower case
        quoted = '"' + cwd.replace("\\", "\\\\").replace('"', '\\"') + '"'
        raise InitError(f"chdir to cwd ({quoted}) set in config.json failed: "
                        f"{(e.strerror or str(e)).lower()}") from e
    try:
        os.getcwd()
    except OSError as e:
        if filtered and e.errno != errno.ENOENT:
            return
        raise InitError(f"current working directory ({cwd!r}) is outside of the container "
                        "mount namespace root -- possible container breakout detected") from None


def _hand_over_listener(chan: SyncSocket, fd: int | None) -> None:
    """Send the seccomp listener fd to the runtime, which passes it to the agent at
    ``listenerPath``; wait until it has (a notified syscall blocks until then)."""
    if fd is None:
        return
    try:
        chan.send_fds(sync.SECCOMP_FD, [fd])
    finally:
        os.close(fd)
    chan.expect(sync.SECCOMP_DONE)


def _join_session_keyring(sc: s.Syscalls, container_id: str) -> None:
    # A keyring of its own, so the container cannot read the host session's
    # keys (runc does the same unless --no-new-keyring).
    try:
        sc.join_session_keyring("_ses." + container_id)
    except OSError as e:
        if e.errno not in (errno.ENOSYS, errno.EPERM, errno.EACCES):
            raise


def _home_of(uid: int) -> str | None:
    try:
        with open("/etc/passwd") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5]
    except OSError:
        pass
    return None


def prepare_exec(process: dict) -> tuple[str, list[str], dict[str, str]]:
    """(resolved executable, argv, environment) for ``process``; checked before READY
    so that a missing binary fails ``create`` as in runc."""
    args = process.get("args") or []
    if not args:
        raise InitError("process.args must not be empty")
    env: dict[str, str] = {}
    for item in process.get("env") or []:
        name, _, value = item.partition("=")
        env[name] = value
    if "HOME" not in env:
        env["HOME"] = _home_of((process.get("user") or {}).get("uid", 0)) or "/"
    return _look_path(args[0], env.get("PATH", "")), list(args), env


def _look_path(name: str, path: str) -> str:
    if "/" in name:
        if os.access(name, os.X_OK) and not os.path.isdir(name):
            return name
        raise InitError(f'exec: "{name}": stat {name}: no such file or directory'
                        if not os.path.exists(name) else f'exec: "{name}": permission denied')
    for directory in path.split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            if not os.path.isabs(candidate):
                # Go's exec.ErrDot (runc 1.1.5 is built with Go >= 1.19): a PATH
                # entry relative to the cwd would let whatever directory the
                # process starts in choose the program
                raise InitError(f'exec: "{name}": cannot run executable found relative to '
                                "current directory")
            return candidate
    raise InitError(f'exec: "{name}": executable file not found in $PATH')


def exec_process(path: str, args: list[str], env: dict[str, str]) -> None:
    """execve(2) the user process with default signal dispositions."""
    # Python ignores SIGPIPE and SIGXFSZ; ignored dispositions survive execve.
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    os.execve(path, args, env)


def set_rlimits(process: dict) -> None:
    """Apply ``process.rlimits`` (config.md "POSIX process"); raises ``OSError``."""
    for i, rl in enumerate(process.get("rlimits") or []):
        try:
            resource.setrlimit(getattr(resource, rl["type"]), (rl["soft"], rl["hard"]))
        except (ValueError, OSError) as e:
            raise InitError(f"process.rlimits[{i}] ({rl['type']}): cannot set soft {rl['soft']}, "
                            f"hard {rl['hard']}: {getattr(e, 'strerror', None) or e}") from e


def _wait_for_start(state_dir_fd: int) -> None:
    # Opening a FIFO for writing blocks until `ketch start` opens it for reading.
    fd = os.open("exec.fifo", os.O_WRONLY | os.O_CLOEXEC, dir_fd=state_dir_fd)
    try:
        os.write(fd, b"0")
    finally:
        os.close(fd)
        os.close(state_dir_fd)

"""``Container``: the runtime-spec lifecycle on one container.

runtime-spec runtime.md "Operations" (state, create, start, kill, delete) and
"Lifecycle", with runc's additions (``run`` in the foreground, ``delete`` of a
created container, ``--force``). Status guards follow the spec's invalid-state
rules; error texts are runc's where callers match them.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import time

from ketch.runtime import log
from ketch.runtime import syscalls as s
from ketch.runtime.cgroups.fs import CgroupManager
from ketch.runtime.errors import (
    ConfigError,
    ContainerNotRunningError,
    InvalidStateError,
    KetchError,
    ProcessError,
)
from ketch.runtime.linux.hooks import hook_state, run_hooks
from ketch.runtime.state import StateDir, list_ids

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

    from ketch.runtime.cgroups.stats import OomWatcher
    from ketch.runtime.process.stdio import StdioPipes

# state, kill, delete and list only read the state store: the process, rootfs
# and terminal machinery is imported by the operations that start processes.

CREATED, RUNNING, PAUSED, STOPPED = "created", "running", "paused", "stopped"
# in the state directory: the cgroup directories create is about to make
CGROUP_PLAN = "cgroup.json"

_FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                      signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGCONT)


def _rfc3339_now() -> str:
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def process_start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None if gone.

    Stored at create so that a recycled pid is not mistaken for the init.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):  # a zombie has already exited
        return None
    return fields[19]


class Container:
    """One container under a runtime root; create with ``create`` or ``load``."""

    def __init__(self, state_dir: StateDir, doc: dict) -> None:
        self._dir = state_dir
        self._doc = doc
        # pty master held for a foreground run with a terminal
        self._console_master: int | None = None
        # the caller's terminal that master is proxied to (see _console_pair)
        self._host_tty: int | None = None
        # signal forwarding installed by a foreground create
        self._forwarder: SignalForwarder | None = None
        # stdio pipes relayed by a foreground run without a terminal
        self._stdio: StdioPipes | None = None

    # -- construction ---------------------------------------------------------

    @classmethod
    def create(cls, root: str, container_id: str, bundle: str, *, pid_file: str | None = None,
               console_socket: str | None = None, no_pivot: bool = False,
               preserve_fds: int = 0, no_new_keyring: bool = False,
               detach: bool = True, debug: bool = False) -> Container:
        """runtime-spec "create": build the container from ``<bundle>/config.json``
        and leave its init blocked until ``start``.

        ``root``: the runtime's state root (``--root``); ``bundle``: the bundle
        directory; ``pid_file``: where to write the init's pid; ``detach``: False
        when the caller will ``wait_foreground`` (then a terminal is proxied
        through this process instead of a console socket, as ``runc run`` does).
        Raises ``InvalidIDError``, ``ContainerExistsError``, ``ConfigError``,
        ``ProcessError``; on any error nothing is left under ``root``.
        """
        from ketch.runtime.cgroups.resources import apply_resources
        from ketch.runtime.linux.console import release_host_console
        from ketch.runtime.process.init import InitOptions
        from ketch.runtime.process.parent import spawn_init
        from ketch.runtime.spec.validate import load_config

        state_dir = StateDir(root, container_id)
        bundle = os.path.realpath(bundle)  # runc records getcwd() after chdir(bundle)
        spec = load_config(bundle)
        from ketch.runtime.linux.lsm import check_lsm

        check_lsm(spec, log.warning)
        from ketch.runtime.spec.semantics import absolute_mount_destinations

        absolute_mount_destinations(spec, log.warning)
        seccomp = (spec.get("linux") or {}).get("seccomp")
        if seccomp:
            from ketch.runtime.linux.seccomp import build_filter

            build_filter(seccomp)  # refuse a bad filter before anything is created
        preserve_fds += _socket_activation(spec)
        _reserve_fds(preserve_fds)
        console_ours, console_theirs, host_tty = _console_pair(
            bool((spec.get("process") or {}).get("terminal")), console_socket, detach)
        try:
            state_dir.create()
        except BaseException:
            _close_console_pair(console_ours, console_theirs, host_tty)
            raise
        cgroup = CgroupManager((spec.get("linux") or {}).get("cgroupsPath") or container_id)
        # In the foreground every signal from now on is meant for the container
        # (runc forwards from before start); queued until the init exists.
        forwarder = None if detach else SignalForwarder()
        stdio = None
        pid = 0
        try:
            if not detach and console_ours is None:
                stdio = _stdio_pipes(spec)
            os.mkfifo(state_dir.fifo, 0o622)
            os.chmod(state_dir.fifo, 0o622)  # mkfifo honours the umask
            # The init opens the fifo as the container's root, which a user
            # namespace maps to another host uid (runc does the same chown).
            os.chown(state_dir.fifo, _host_id(spec, "uidMappings"), _host_id(spec, "gidMappings"))
            s.linux().prctl(s.PR_SET_CHILD_SUBREAPER, 1)
            # where the cgroup goes, written first: a delete after a crash here removes it
            with open(os.path.join(state_dir.path, CGROUP_PLAN), "w") as f:
                json.dump(cgroup.targets(), f)
            cgroup.create()
            dir_fd = os.open(state_dir.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                hook_base = hook_state({"ociVersion": spec.get("ociVersion", ""),
                                        "id": container_id, "bundle": bundle,
                                        "annotations": spec.get("annotations")}, "creating", 0)
                opts = InitOptions(bundle=bundle, state_dir_fd=dir_fd, no_pivot=no_pivot,
                                   preserve_fds=preserve_fds, debug=debug, hook_state=hook_base,
                                   no_new_keyring=no_new_keyring,
                                   console_proxied=console_ours is not None,
                                   console_fd=console_theirs.fileno() if console_theirs else None,
                                   stdio=stdio.child_fds if stdio else None)
                pid = spawn_init(spec, opts, cgroup, log.emit,
                                 on_ready=lambda _pid: apply_resources(cgroup, spec, log.warning))
            finally:
                os.close(dir_fd)
                if stdio is not None:
                    stdio.close_child_ends()
                if console_theirs is not None:
                    console_theirs.close()
            master = _receive_master(console_ours)
            if forwarder is not None:
                forwarder.target(pid, master, host_tty)
            doc = {
                "ociVersion": spec.get("ociVersion", ""),
                "id": container_id,
                "pid": pid,
                "pid_start": process_start_time(pid),
                "bundle": bundle,
                "rootfs": os.path.realpath(os.path.join(bundle, spec["root"]["path"])),
                "created": _rfc3339_now(),
                "owner": "",
                "annotations": spec.get("annotations") or {},
                "config": spec,
                "cgroup_paths": cgroup.paths,
            }
            state_dir.save(doc)
            log.debug(f"created container {container_id}: init pid {pid}, bundle {bundle}, "
                      f"cgroups {sorted(cgroup.paths.values())}")
            if pid_file:
                _write_pid_file(pid_file, pid)
        except BaseException:
            if forwarder is not None:
                forwarder.restore()
            if stdio is not None:
                stdio.close()
            if host_tty is not None:
                release_host_console(host_tty)
            if pid:  # the init exists: a failed create must not leave it behind
                _kill_and_wait(pid, cgroup)
            cgroup.destroy()
            state_dir.remove()
            # runtime.md: a failed create continues at delete, whose poststop
            # hooks still run (teardown such as network cleanup depends on it)
            run_hooks(spec, "poststop", hook_state(
                {"ociVersion": spec.get("ociVersion", ""), "id": container_id,
                 "bundle": bundle, "annotations": spec.get("annotations")}, STOPPED, 0),
                bundle, inherit_env=True, warn=log.warning)
            raise
        finally:
            if console_ours is not None:
                console_ours.close()
        state_dir.unlock()
        container = cls(state_dir, doc)
        container._console_master = master
        container._host_tty = host_tty
        container._forwarder = forwarder
        container._stdio = stdio
        return container

    @classmethod
    def load(cls, root: str, container_id: str) -> Container:
        """The container ``container_id`` under ``root``.

        Raises ``InvalidIDError`` or ``ContainerNotExistError``.
        """
        state_dir = StateDir(root, container_id)
        return cls(state_dir, state_dir.load())

    # -- queries --------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._dir.id

    @property
    def pid(self) -> int:
        return int(self._doc.get("pid") or 0)

    def _alive(self) -> bool:
        pid = self.pid
        return bool(pid) and process_start_time(pid) == self._doc.get("pid_start")

    def status(self) -> str:
        """"created", "running", "paused" (runc's addition) or "stopped"
        (runtime-spec "State" ``status``)."""
        if not self._alive():
            return STOPPED
        if self._doc.get("paused") and self._cgroup().is_frozen():
            return PAUSED
        if os.path.exists(self._dir.fifo):
            return CREATED
        return RUNNING

    def state(self) -> dict:
        """runc's state JSON: ociVersion, id, pid, status, bundle, rootfs, created, owner
        and annotations (omitted when empty). ``pid`` is 0 once stopped."""
        status = self.status()
        doc = self._doc
        out: dict = {
            "ociVersion": doc["ociVersion"],
            "id": doc["id"],
            "pid": self.pid if status != STOPPED else 0,
            "status": status,
            "bundle": doc["bundle"],
            "rootfs": doc["rootfs"],
            "created": doc["created"],
            "owner": doc.get("owner", ""),
        }
        if doc.get("annotations"):
            out["annotations"] = doc["annotations"]
        return out

    def _cgroup(self) -> CgroupManager:
        return CgroupManager(self._doc["config"].get("linux", {}).get("cgroupsPath") or self.id,
                             self._doc.get("cgroup_paths"))

    # -- operations -----------------------------------------------------------

    def start(self) -> None:
        """runtime-spec "start": release the init to exec ``process.args``.

        Raises ``InvalidStateError`` unless the container is ``created``.
        """
        with self._dir.locked():
            status = self.status()
            if status == STOPPED:
                raise InvalidStateError("cannot start a container that has stopped")
            if status != CREATED:
                raise InvalidStateError("cannot start an already running container")
            if not self._doc["config"].get("process"):
                # runtime.md "start": MUST generate an error when process is
                # unset. Such a container can never run, so its init is
                # stopped too: the container reads "stopped" and a plain
                # `delete` removes it, as after any other failed start.
                self._kill_all()
                raise InvalidStateError("cannot start a container with no process")
            import select

            fd = os.open(self._dir.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                while True:
                    ready, _, _ = select.select([fd], [], [], 0.1)
                    if ready and os.read(fd, 1):
                        break
                    if not self._alive():
                        raise ProcessError("container init exited before start")
            finally:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._dir.fifo)
            log.debug(f"started container {self.id}: init pid {self.pid} released")
            # runtime.md "Lifecycle": a failing poststart hook is a warning and the
            # lifecycle goes on (runc 1.1 stops the container instead; the spec wins)
            run_hooks(self._doc["config"], "poststart", hook_state(self._doc, RUNNING, self.pid),
                      inherit_env=True, warn=log.warning)

    def signal(self, sig: int, all: bool = False) -> None:
        """runtime-spec "kill": send ``sig`` to the init (every process in the
        cgroup with ``all``, which leaves the cgroup thawed, as runc does).
        Raises ``ContainerNotRunningError`` when stopped (not with ``all``,
        which runc treats as a no-op then)."""
        with self._dir.locked():
            if self.status() == STOPPED:
                if all:
                    return  # runc: signalling every process of a stopped container is a no-op
                raise ContainerNotRunningError()
            if not all:
                self._send(sig, [self.pid])
                if sig == signal.SIGKILL and self._doc.get("paused"):
                    # A frozen task dies only once thawed (cgroup v1): thaw for SIGKILL
                    # alone, as runc does; other signals wait for resume.
                    with contextlib.suppress(OSError):
                        self._cgroup().freeze(False)
                    self._doc["paused"] = False
                    self._dir.save(self._doc)
                return
            # runc's signalAllProcesses: freeze so that nothing forks away while the
            # signals go out, then thaw (a paused container too: frozen tasks
            # would never act on them)
            cgroup = self._cgroup()
            with contextlib.suppress(OSError):
                cgroup.freeze(True)
            try:
                self._send(sig, cgroup.pids() or [self.pid])
            finally:
                with contextlib.suppress(OSError):
                    cgroup.freeze(False)
                if self._doc.get("paused"):
                    self._doc["paused"] = False
                    self._dir.save(self._doc)

    @staticmethod
    def _send(sig: int, pids: list[int]) -> None:
        for pid in pids:
            try:
                os.kill(pid, sig)
                log.debug(f"sent signal {sig} to pid {pid}")
            except ProcessLookupError:
                continue
            except OSError as e:  # e.g. an invalid signal number
                raise KetchError(f"unable to signal init: {(e.strerror or '').lower()}") from e

    def pause(self) -> None:
        """Freeze every process of the container (runc ``pause``; cgroup freezer).

        Raises ``ContainerNotRunningError`` unless it is created or running; a
        created container resumes to ``created``, as with runc.
        """
        self._set_paused(True)

    def resume(self) -> None:
        """Thaw a paused container (runc ``resume``). Raises ``InvalidStateError``."""
        self._set_paused(False)

    def _set_paused(self, paused: bool) -> None:
        with self._dir.locked():
            status = self.status()
            if paused and status not in (RUNNING, CREATED):  # runc pauses a created one too
                raise ContainerNotRunningError()
            if not paused and status != PAUSED:
                raise InvalidStateError("container not paused")
            try:
                self._cgroup().freeze(paused)
            except OSError as e:
                raise KetchError(f"{'pause' if paused else 'resume'}: {e.strerror}") from e
            self._doc["paused"] = paused
            self._dir.save(self._doc)

    def update(self, resources: dict) -> None:
        """Apply ``resources`` (a runtime-spec LinuxResources object holding only
        the values to change) to the running container's cgroup and remember
        them in its state (runc ``update``). Raises ``ContainerNotRunningError``
        when stopped, ``ResourceError`` when a value is refused."""
        from ketch.runtime.cgroups.resources import update_resources
        from ketch.runtime.spec.validate import validate_config

        if not isinstance(resources, dict) or not all(
                isinstance(v, (dict, list)) for v in resources.values()):
            raise ConfigError("linux.resources", "must be an object of resource groups")
        with self._dir.locked():
            if self.status() == STOPPED:
                raise ContainerNotRunningError()
            config = self._doc["config"]
            current = (config.get("linux") or {}).get("resources") or {}
            cpu = resources.get("cpu")
            if cpu and (cpu.get("quota") is None) != (cpu.get("period") is None):
                # a quota is meaningless without its period (and v2 writes both at once)
                for key in ("quota", "period"):
                    if cpu.get(key) is None and (current.get("cpu") or {}).get(key) is not None:
                        cpu[key] = current["cpu"][key]
            updated = json.loads(json.dumps(config))
            merged = updated.setdefault("linux", {}).setdefault("resources", {})
            for group, values in resources.items():
                if isinstance(values, dict) and isinstance(merged.get(group), dict):
                    merged[group] = {**merged[group], **values}
                else:
                    merged[group] = values
            validate_config(updated)  # a bad value is a ConfigError naming its field
            update_resources(self._cgroup(), resources, log.warning)
            self._doc["config"] = updated
            self._dir.save(self._doc)

    def stats(self) -> dict:
        """runc's stats object (``events --stats``) for the container's cgroup.
        Raises ``InvalidStateError`` when the container is stopped."""
        from ketch.runtime.cgroups.stats import collect

        if self.status() == STOPPED:
            raise InvalidStateError(f"container with id {self.id} is not running")
        return collect(self._cgroup())

    def oom_watcher(self) -> OomWatcher:
        """An ``OomWatcher`` on the container's memory cgroup. Raises ``OSError``."""
        from ketch.runtime.cgroups.stats import OomWatcher

        return OomWatcher(self._cgroup())

    def delete(self, force: bool = False) -> None:
        """runtime-spec "delete": remove what ``create`` made. A ``created``
        container is killed first (runc); a running one only with ``force``.
        Raises ``InvalidStateError``."""
        with self._dir.locked():
            status = self.status()
            if status in (RUNNING, PAUSED) and not force:
                raise InvalidStateError(
                    f"cannot delete container {self.id} that is not stopped: {status}")
            if status == PAUSED:
                # a frozen task cannot die: thaw it so that SIGKILL is delivered
                with contextlib.suppress(OSError):
                    self._cgroup().freeze(False)
            if status != STOPPED:
                self._kill_all()
            self._cgroup().destroy()
            self._dir.remove()
            log.debug(f"deleted container {self.id} (was {status})")
            # runtime.md: a poststop failure is only a warning, the other hooks still run
            run_hooks(self._doc["config"], "poststop", hook_state(self._doc, STOPPED, 0),
                      inherit_env=True, warn=log.warning)

    def _kill_all(self) -> None:
        _kill_and_wait(self.pid, self._cgroup(), self._doc.get("pid_start"))

    def pids(self) -> list[int]:
        """Host pids of the processes in the container's cgroup (runc ``ps``)."""
        return sorted(self._cgroup().pids())

    def process_template(self) -> dict:
        """A copy of the container's ``process`` object (runc ``exec`` starts from it).

        A container created without ``process`` (runtime.md allows it; runc
        refuses such a create) gives root in ``/`` with the default ``PATH``.
        """
        process = self._doc["config"].get("process")
        if not process:
            from ketch.runtime.spec.default import DEFAULT_PATH

            return {"user": {"uid": 0, "gid": 0}, "cwd": "/", "env": [f"PATH={DEFAULT_PATH}"]}
        return json.loads(json.dumps(process))

    def exec(self, process: dict, *, detach: bool = False, pid_file: str | None = None,
             console_socket: str | None = None, preserve_fds: int = 0,
             debug: bool = False, ignore_paused: bool = False,
             sub_cgroups: dict[str, str] | None = None) -> int:
        """Run ``process`` (a runtime-spec ``process`` object) inside the container,
        in all its namespaces and its cgroup (runc ``exec``).

        ``ignore_paused``: exec into a paused container too (the process waits,
        frozen, until ``resume``); ``sub_cgroups``: join these existing sub-cgroups
        of the container's instead (``CgroupManager.sub_cgroups``).

        Returns 0 once started with ``detach``, else the process's exit code
        (128+N when killed by signal N). Raises ``ConfigError`` for an invalid
        ``process``, ``InvalidStateError`` for a stopped container,
        ``ProcessError`` when it cannot be started.
        """
        from ketch.runtime.linux.console import release_host_console
        from ketch.runtime.process.parent import spawn_exec
        from ketch.runtime.process.setns import ExecOptions
        from ketch.runtime.spec.validate import validate_config

        validate_config({**self._doc["config"], "process": process})
        status = self.status()
        if status == STOPPED:
            raise InvalidStateError("cannot exec in a stopped container")
        if status == PAUSED and not ignore_paused:
            # the new process would join the frozen cgroup and freeze before exec
            raise InvalidStateError("cannot exec in a paused container "
                                    "(use --ignore-paused to override)")
        cgroup = self._cgroup().sub_cgroups(sub_cgroups) if sub_cgroups else self._cgroup()
        _reserve_fds(preserve_fds)
        ours, theirs, host_tty = _console_pair(bool(process.get("terminal")), console_socket,
                                               detach)
        forwarder = None if detach else SignalForwarder()
        stdio = None
        pid = 0
        master = None
        try:
            if not detach and ours is None:
                stdio = _stdio_pipes(self._doc["config"])
            s.linux().prctl(s.PR_SET_CHILD_SUBREAPER, 1)
            opts = ExecOptions(self.pid, preserve_fds=preserve_fds, debug=debug,
                               seccomp=(self._doc["config"].get("linux") or {}).get("seccomp"),
                               state=hook_state(self._doc, RUNNING, self.pid),
                               console_fd=theirs.fileno() if theirs else None,
                               console_proxied=ours is not None,
                               stdio=stdio.child_fds if stdio else None)
            try:
                pid = spawn_exec(process, opts, cgroup, log.emit)
                log.debug(f"exec in container {self.id}: pid {pid} runs {process.get('args')}")
            finally:
                if theirs is not None:
                    theirs.close()
                if stdio is not None:
                    stdio.close_child_ends()
            master = _receive_master(ours)
            if pid_file:
                _write_pid_file(pid_file, pid)
        except BaseException:
            if pid:  # a failed exec leaves no process behind (runc kills it too)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
            if master is not None:
                os.close(master)
            if forwarder is not None:
                forwarder.restore()
            if stdio is not None:
                stdio.close()
            if host_tty is not None:
                release_host_console(host_tty)
            raise
        finally:
            if ours is not None:
                ours.close()
        if forwarder is None:
            return 0
        forwarder.target(pid, master, host_tty)
        return _wait_for(pid, master, forwarder, stdio, until_eof=True, host_tty=host_tty)

    def wait_foreground(self) -> int:
        """For ``run`` without ``--detach``: forward signals to the init, reap it
        and any orphan handed to us (we are a subreaper), and return its exit
        code (128+N when killed by signal N)."""
        forwarder = self._forwarder or SignalForwarder()
        forwarder.target(self.pid, self._console_master, self._host_tty)
        return _wait_for(self.pid, self._console_master, forwarder, self._stdio,
                         host_tty=self._host_tty)


def _console_pair(terminal: bool, console_socket: str | None, detach: bool
                  ) -> tuple[socket.socket | None, socket.socket | None, int | None]:
    """(our end, the container's end) for the pty master: the caller's console
    socket, or a socketpair we proxy when running in the foreground (runc's rules);
    third, for that proxy, the caller's terminal (``host_console``: without one the
    foreground terminal is refused before anything is created, as runc does)."""
    if terminal and console_socket is None and detach:
        raise KetchError("cannot allocate tty if runc will detach without setting console socket")
    if not terminal and console_socket is not None:
        raise KetchError("cannot use console socket if runc will not detach or allocate tty")
    if not terminal:
        return None, None, None
    import socket

    from ketch.runtime.linux.console import connect_console_socket, host_console

    if console_socket is not None:
        return None, connect_console_socket(console_socket), None
    host_tty = host_console()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return ours, theirs, host_tty


def _close_console_pair(ours: socket.socket | None, theirs: socket.socket | None,
                        host_tty: int | None) -> None:
    from ketch.runtime.linux.console import release_host_console

    for sock in (ours, theirs):
        if sock is not None:
            sock.close()
    if host_tty is not None:
        release_host_console(host_tty)


def _receive_master(ours: socket.socket | None) -> int | None:
    """The pty master sent back over our end of the pair (None without one); its
    NL -> CR NL mapping is already off (``console_proxied``), as runc's proxy has it."""
    if ours is None:
        return None
    from ketch.runtime.linux.console import receive_master

    return receive_master(ours)


class SignalForwarder:
    """Forward the signals a foreground ``run``/``exec`` receives to the container
    process; signals that arrive before it exists are queued. With a terminal,
    SIGWINCH resizes the pty instead (runc's ``signalHandler``)."""

    def __init__(self) -> None:
        self._pid = 0
        self._master: int | None = None
        self._tty: int | None = None
        self._pending: list[int] = []
        self._previous = {sig: signal.signal(sig, self._handle) for sig in _FORWARDED_SIGNALS}

    def _handle(self, signum: int, _frame: object) -> None:
        # waitpid is retried after a handler returns (PEP 475), so act here.
        if not self._pid:
            self._pending.append(signum)
        elif signum == signal.SIGWINCH and self._master is not None:
            _copy_window_size(self._master, self._tty)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signum)

    def target(self, pid: int, master: int | None, host_tty: int | None = None) -> None:
        """From now on signals go to ``pid``; the queued ones are sent first.
        ``master``/``host_tty``: the pty proxied to the caller's terminal, whose
        size it follows."""
        self._pid, self._master, self._tty = pid, master, host_tty
        if master is not None:
            _copy_window_size(master, host_tty)
        while self._pending:
            self._handle(self._pending.pop(0), None)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _copy_window_size(master: int, host_tty: int | None) -> None:
    """Give the container's pty the size of the caller's terminal, if there is one."""
    import fcntl
    import termios

    if host_tty is None:
        return
    with contextlib.suppress(OSError):
        size = fcntl.ioctl(host_tty, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(master, termios.TIOCSWINSZ, size)


def _wait_for(pid: int, master: int | None, forwarder: SignalForwarder,
              stdio: StdioPipes | None = None, *, until_eof: bool = False,
              host_tty: int | None = None) -> int:
    """Proxy ``pid``'s terminal if ``master`` (or relay its ``stdio`` pipes), reap
    it and any orphan handed to us (we are a subreaper); return its exit code.
    Restores ``forwarder``'s handlers."""
    try:
        if master is not None:
            return _proxy_terminal(master, pid, host_tty)
        if stdio is not None:
            return stdio.copy_until_exit(pid, lambda: _reap_if_exited(pid), until_eof=until_eof)
        while True:
            try:
                reaped, status = os.waitpid(-1, 0)
            except ChildProcessError:
                return 255
            if reaped == pid:
                return _exit_code(status)
    finally:
        forwarder.restore()


def _kill_and_wait(pid: int, cgroup: CgroupManager, start_time: str | None = None) -> None:
    """SIGKILL ``pid`` and everything in ``cgroup``; wait (up to 5 s) until ``pid`` is gone."""
    start_time = start_time or process_start_time(pid)
    for victim in [pid, *cgroup.pids()]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while process_start_time(pid) == start_time and start_time and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.005)


def _reap_if_exited(pid: int) -> int | None:
    """``pid``'s exit code once it has exited (reaping it), else None."""
    try:
        reaped, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return 255
    return _exit_code(status) if reaped == pid else None


def _stdio_pipes(spec: dict) -> StdioPipes:
    """Foreground stdio pipes owned by the container's root (its host ids)."""
    from ketch.runtime.process.stdio import StdioPipes

    return StdioPipes(_host_id(spec, "uidMappings"), _host_id(spec, "gidMappings"))


def _exit_code(status: int) -> int:
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def _proxy_terminal(master: int, pid: int, host_tty: int | None) -> int:
    """Copy our stdin to the pty master and the master to our stdout until the
    init exits (``runc run`` with ``terminal: true`` and no console socket);
    the caller's terminal ``host_tty`` is raw meanwhile (then released)."""
    import select
    import termios
    import tty

    from ketch.runtime.linux.console import release_host_console

    saved = None
    if host_tty is not None and os.isatty(host_tty):
        saved = termios.tcgetattr(host_tty)
        tty.setraw(host_tty)
        # Raw input, but output processing kept (as runc's console package does):
        # the container's pty sends bare NLs (clear_onlcr), this terminal maps them.
        attrs = termios.tcgetattr(host_tty)
        attrs[1] |= termios.OPOST
        termios.tcsetattr(host_tty, termios.TCSANOW, attrs)
    code: int | None = None
    # a caller may have closed our stdin or stdout (runc copies regardless)
    inputs = [0, master] if _fd_is_open(0) else [master]
    output_open = _fd_is_open(1)
    try:
        while True:
            try:
                ready, _, _ = select.select(inputs, [], [], 0.05)
            except InterruptedError:
                ready = []
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the slave side is closed
                    data = b""
                if data and output_open:
                    try:
                        _write_all(1, data)
                    except OSError:  # a closed stdout or a reader gone: keep draining
                        output_open = False
                elif not data:
                    inputs = [fd for fd in inputs if fd != master]
            if 0 in ready:
                data = os.read(0, 65536)
                if data:
                    os.write(master, data)
                else:
                    inputs = [fd for fd in inputs if fd != 0]
            if code is None:
                with contextlib.suppress(ChildProcessError):
                    reaped, status = os.waitpid(-1, os.WNOHANG)
                    if reaped == pid:
                        code = _exit_code(status)
            if code is not None and master not in ready:
                return code
    finally:
        if saved is not None:
            termios.tcsetattr(host_tty, termios.TCSADRAIN, saved)
        if host_tty is not None:
            release_host_console(host_tty)
        os.close(master)


def _fd_is_open(fd: int) -> bool:
    import fcntl

    try:
        fcntl.fcntl(fd, fcntl.F_GETFD)
    except OSError:
        return False
    return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def remove_stale_state(root: str, container_id: str) -> None:
    """Remove ``<root>/<id>`` when it holds no state.json (an aborted create).

    Raises ``InvalidIDError`` for an invalid ID; a live container is never touched.
    """
    state_dir = StateDir(root, container_id)
    if state_dir.exists() or not os.path.isdir(state_dir.path):
        return
    # A create in progress holds the lock and has not written state.json yet.
    if state_dir.try_lock():
        if not state_dir.exists():
            _remove_planned_cgroup(state_dir)
            state_dir.remove()
        state_dir.unlock()


def _remove_planned_cgroup(state_dir: StateDir) -> None:
    """Kill what a crashed create left in the cgroup it planned, and remove it."""
    try:
        with open(os.path.join(state_dir.path, CGROUP_PLAN)) as f:
            planned = json.load(f)
    except (OSError, ValueError):
        return
    cgroup = CgroupManager("", {m: p for m, p in planned.items() if os.path.isdir(p)})
    if cgroup.is_frozen():
        with contextlib.suppress(OSError):
            cgroup.freeze(False)  # a frozen task cannot die
    for pid in cgroup.pids():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    cgroup.destroy()


def list_containers(root: str) -> list[Container]:
    """Every container under ``root``, sorted by ID; unreadable ones are skipped."""
    found = []
    for container_id in list_ids(root):
        try:
            found.append(Container.load(root, container_id))
        except KetchError as e:  # one broken container must not hide the others
            log.warning(str(e))
    return found


def _reserve_fds(count: int) -> None:
    """Check that fds 3 .. 3+count-1 (``--preserve-fds``, socket activation) are open:
    a caller asking to preserve an fd it never opened is refused, as runc does
    (which also keeps our own later fds out of that range).

    Raises ``KetchError`` in runc's words."""
    for i, fd in enumerate(range(3, 3 + count)):
        try:
            os.stat(f"/proc/self/fd/{fd}")
        except OSError as e:
            raise KetchError(f"unable to stat preserved-fd {i} (of {count}): "
                             f"stat /proc/self/fd/{fd}: {_strerror(e)}") from None


def _socket_activation(spec: dict) -> int:
    """systemd socket activation passes ``LISTEN_FDS`` fds from 3 on: keep them
    open for the container and tell its process (runc does the same).
    Returns how many extra fds to preserve.

    Only when ``LISTEN_PID`` names this process (sd_listen_fds(3)): variables
    inherited from a socket-activated ancestor describe fds that are not ours."""
    try:
        count = int(os.environ.get("LISTEN_FDS", ""))
        if int(os.environ.get("LISTEN_PID", "")) != os.getpid():
            return 0
    except ValueError:
        return 0
    if count <= 0 or not spec.get("process"):
        return 0
    spec["process"]["env"] = [*(spec["process"].get("env") or []),
                              f"LISTEN_FDS={count}", "LISTEN_PID=1"]
    return count


def _host_id(spec: dict, key: str) -> int:
    """Host id of the container's id 0 under ``linux.<key>``, 0 without a mapping."""
    for m in (spec.get("linux") or {}).get(key) or []:
        if m["containerID"] <= 0 < m["containerID"] + m["size"]:
            return m["hostID"] - m["containerID"]
    return 0


def _write_pid_file(path: str, pid: int) -> None:
    """Write ``pid`` to ``path`` atomically (a dot-file beside it, renamed over it),
    as runc does. Raises ``KetchError`` in Go's ``open``/``rename`` wording."""
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path))
    try:
        with open(tmp, "w") as f:
            f.write(str(pid))
    except OSError as e:
        raise KetchError(f"open {tmp}: {_strerror(e)}") from None
    try:
        if os.path.isdir(path):
            # Go's os.Rename refuses a directory target with EEXIST (rename(2) says EISDIR)
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST))
        os.rename(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise KetchError(f"rename {tmp} {path}: {_strerror(e)}") from None


def _strerror(e: OSError) -> str:
    return (e.strerror or str(e)).lower()

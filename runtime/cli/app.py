"""The ``ketch`` command: runc's global flags, command table and dispatch.

Implements runc's ``main.go`` on urfave/cli v1: global flags, the ``Before``
hook (absolute ``--root``, logrus set-up from ``--debug``/``--log``/
``--log-format``), command lookup (unknown command: ``No help topic for
'X'``, exit 3), per-command flag parsing (``ketch.runtime.cli.flags``),
``--help``, the argument-count checks of runc's ``checkArgs``, and ``fatal``:
an error is logged at level error and, when the log goes to a ``--log`` file,
printed to stderr as well; the exit status is 1.

The verbs are runtime-spec ``runtime.md`` operations (create, start, state,
kill, delete) plus runc's run, list and spec; each lives in
``ketch.runtime.cli.commands.<verb>`` and only the chosen one is imported.
"""

from __future__ import annotations

import os
import sys

from ketch.runtime.cli import end_start_up, log, output
from ketch.runtime.cli.flags import (
    BOOL,
    DURATION,
    HELP,
    INT,
    INT64_SLICE,
    SLICE,
    STRING,
    Flag,
    FlagError,
    Parsed,
    parse,
    reorder,
)
from ketch.runtime.cli.output import StdoutClosed

APP_NAME = "ketch"
VERSION = "0.1.0"

EXACT, MIN, MAX = "exactly", "a minimum of", "a maximum of"


def default_root() -> str:
    """``/run/ketch``; for a non-root user ``$XDG_RUNTIME_DIR/ketch`` (runc's rule)."""
    if os.geteuid() != 0:
        xdg = os.environ.get("XDG_RUNTIME_DIR", "")
        if xdg:
            return xdg + "/" + APP_NAME
    return "/run/" + APP_NAME


def global_flags() -> list[Flag]:
    return [
        Flag(("debug",), BOOL, usage="enable debug logging"),
        Flag(("log",), STRING, usage="set the log file to write ketch logs to (default is '/dev/stderr')"),
        Flag(("log-format",), STRING, "text", "set the log format ('text' (default), or 'json')"),
        Flag(("root",), STRING, default_root(),
             "root directory for storage of container state (this should be located in tmpfs)"),
        Flag(("criu",), STRING, "criu", "path to the criu binary used for checkpoint and restore (unused)"),
        Flag(("systemd-cgroup",), BOOL, usage="enable systemd cgroup support, expects cgroupsPath to"
             ' be of form "slice:prefix:name" for e.g. "system.slice:ketch:434234"'),
        Flag(("rootless",), STRING, "auto", "ignore cgroup permission errors ('true', 'false', or 'auto')"),
        HELP,
        Flag(("version", "v"), BOOL, usage="print the version"),
    ]


_BUNDLE = Flag(("bundle", "b"), usage="path to the root of the bundle directory, defaults to the current directory")
_CONSOLE = Flag(("console-socket",), usage="path to an AF_UNIX socket which will receive a file"
                " descriptor referencing the master end of the console's pseudoterminal")
_PID_FILE = Flag(("pid-file",), usage="specify the file to write the process id to")
_NO_PIVOT = Flag(("no-pivot",), BOOL, usage="do not use pivot root to jail process inside rootfs."
                 "  This should be used whenever the rootfs is on top of a ramdisk")
_NO_KEYRING = Flag(("no-new-keyring",), BOOL, usage="do not create a new session keyring for the"
                   " container.  This will cause the container to inherit the calling processes session key")
_PRESERVE = Flag(("preserve-fds",), INT, 0, "Pass N additional file descriptors to the container"
                 " (stdio + $LISTEN_FDS + N in total)")


class Command:
    """A verb: its flags, runc's argument-count checks and its module."""

    __slots__ = ("checks", "error_prefix", "flags", "name", "reorder")

    def __init__(self, name: str, flags: list[Flag], checks: list[tuple[str, int]],
                 error_prefix: bool = False, reorder: bool = True) -> None:
        self.name = name
        self.flags = flags
        self.checks = checks
        self.error_prefix = error_prefix
        # urfave's SkipArgReorder is the negation (runc's exec sets it: the
        # command's own flags follow the ID)
        self.reorder = reorder


COMMANDS: dict[str, Command] = {c.name: c for c in sorted((
    Command("create", [_BUNDLE, _CONSOLE, _PID_FILE, _NO_PIVOT, _NO_KEYRING, _PRESERVE],
            [(EXACT, 1)], error_prefix=True),
    Command("delete", [Flag(("force", "f"), BOOL, usage="Forcibly deletes the container if it is"
                            " still running (uses SIGKILL)")], [(EXACT, 1)]),
    Command("exec", [
        _CONSOLE,
        Flag(("cwd",), usage="current working directory in the container"),
        Flag(("env", "e"), SLICE, usage="set environment variables"),
        Flag(("tty", "t"), BOOL, usage="allocate a pseudo-TTY"),
        Flag(("user", "u"), usage="UID (format: <uid>[:<gid>])"),
        Flag(("additional-gids", "g"), INT64_SLICE, usage="additional gids"),
        Flag(("process", "p"), usage="path to the process.json"),
        Flag(("detach", "d"), BOOL, usage="detach from the container's process"),
        _PID_FILE,
        Flag(("process-label",), usage="set the asm process label for the process commonly used"
             " with selinux"),
        Flag(("apparmor",), usage="set the apparmor profile for the process"),
        Flag(("no-new-privs",), BOOL, usage="set the no new privileges value for the process"),
        Flag(("cap", "c"), SLICE, usage="add a capability to the bounding set for the process"),
        _PRESERVE,
        Flag(("cgroup",), SLICE, usage="run the process in an (existing) sub-cgroup(s). Format is"
             " [<controller>:]<cgroup>."),
        Flag(("ignore-paused",), BOOL, usage="allow exec in a paused container"),
    ], [(MIN, 1)], reorder=False),
    Command("features", [], [(EXACT, 0)]),
    Command("kill", [Flag(("all", "a"), BOOL, usage="send the specified signal to all processes"
                          " inside the container")], [(MIN, 1), (MAX, 2)]),
    Command("list", [Flag(("format", "f"), STRING, "table", "select one of: table or json"),
                     Flag(("quiet", "q"), BOOL, usage="display only container IDs")], [(EXACT, 0)]),
    Command("pause", [], [(EXACT, 1)]),
    Command("ps", [Flag(("format", "f"), STRING, "table", "select one of: table or json")],
            [(MIN, 1)], reorder=False),
    Command("resume", [], [(EXACT, 1)]),
    Command("run", [_BUNDLE, _CONSOLE,
                    Flag(("detach", "d"), BOOL, usage="detach from the container's process"),
                    Flag(("keep",), BOOL, usage="do not delete the container after it exits"),
                    _PID_FILE,
                    Flag(("no-subreaper",), BOOL, usage="disable the use of the subreaper used to"
                         " reap reparented processes"),
                    _NO_PIVOT, _NO_KEYRING, _PRESERVE], [(EXACT, 1)], error_prefix=True),
    Command("spec", [Flag(("bundle", "b"), usage="path to the root of the bundle directory"),
                     Flag(("rootless",), BOOL, usage="generate a configuration for a rootless container")],
            [(EXACT, 0)]),
    Command("start", [], [(EXACT, 1)]),
    Command("events", [Flag(("interval",), DURATION, 5.0, "set the stats collection interval"),
                       Flag(("stats",), BOOL, usage="display the container's stats then exit")],
            [(EXACT, 1)]),
    Command("update", [
        Flag(("resources", "r"), usage="path to the file containing the resources to update or"
             " '-' to read from the standard input"),
        Flag(("blkio-weight",), INT, 0, "Specifies per cgroup weight, range is from 10 to 1000"),
        Flag(("cpu-period",), usage="CPU CFS period to be used for hardcapping (in usecs). 0 to"
             " use system default"),
        Flag(("cpu-quota",), usage="CPU CFS hardcap limit (in usecs). Allowed cpu time in a"
             " given period"),
        Flag(("cpu-share",), usage="CPU shares (relative weight vs. other containers)"),
        Flag(("cpu-rt-period",), usage="CPU realtime period to be used for hardcapping (in"
             " usecs). 0 to use system default"),
        Flag(("cpu-rt-runtime",), usage="CPU realtime hardcap limit (in usecs). Allowed cpu"
             " time in a given period"),
        Flag(("cpuset-cpus",), usage="CPU(s) to use"),
        Flag(("cpuset-mems",), usage="Memory node(s) to use"),
        Flag(("memory",), usage="Memory limit (in bytes)"),
        Flag(("memory-reservation",), usage="Memory reservation or soft_limit (in bytes)"),
        Flag(("memory-swap",), usage="Total memory usage (memory + swap); set '-1' to enable"
             " unlimited swap"),
        Flag(("pids-limit",), INT, 0, "Maximum number of pids allowed in the container"),
        Flag(("l3-cache-schema",), usage="The string of Intel RDT/CAT L3 cache schema"),
        Flag(("mem-bw-schema",), usage="The string of Intel RDT/MBA memory bandwidth schema"),
    ], [(EXACT, 1)]),
    Command("state", [], [(EXACT, 1)]),
), key=lambda c: c.name)}


class Context:
    """What a verb gets: the parsed global and command flags, the positional
    arguments, the absolute state root and the program name for messages."""

    __slots__ = ("args", "command", "globals", "opts", "prog", "root")

    def __init__(self, prog: str, command: str, globals_: Parsed, opts: Parsed, root: str) -> None:
        self.prog = prog
        self.command = command
        self.globals = globals_
        self.opts = opts
        self.args = opts.args
        self.root = root


def program_name(argv0: str) -> str:
    """The program name in messages (runc prints ``os.Args[0]``).

    A console script always sees its full path in ``sys.argv[0]`` (the kernel
    passes the script path to the interpreter), so the base name is used: what
    runc prints when found on PATH. ``ketch`` under ``python -m``/``-c``.
    """
    base = os.path.basename(argv0)
    if not base or base.endswith(".py") or base in ("-m", "-c"):
        return APP_NAME
    return base


def fatal(message: str) -> None:
    """runc's ``fatal``: log at error level; repeat on stderr when logging to a file."""
    log.error(message)
    if not log.to_stderr():
        _stderr(message + "\n")


def _stderr(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _stdout_help(text: str) -> None:
    output.write_best_effort(text)


def version_text() -> str:
    from ketch.runtime.spec.default import OCI_VERSION

    return f"{VERSION}\nspec: {OCI_VERSION}"


def _app_help(prog: str) -> str:
    from ketch.runtime.cli import help as h

    return h.app_help(prog, version_text(), list(COMMANDS), global_flags())


def _command_help(prog: str, cmd: Command) -> str:
    from ketch.runtime.cli import help as h

    return h.command_help(prog, cmd.name, cmd.flags)


def _abs(path: str) -> str:
    """Go's ``filepath.Abs``: join with the cwd and clean (``//x`` → ``/x``)."""
    p = os.path.abspath(path)
    return "/" + p.lstrip("/") if p.startswith("//") else p


def run(argv: list[str]) -> int:
    """Parse ``argv`` (with argv[0]) and run the command; returns the exit status."""
    try:
        return _run(argv)
    except StdoutClosed:
        _die_of_sigpipe()
        return 141


def _run(argv: list[str]) -> int:
    prog = program_name(argv[0] if argv else "")
    gflags = global_flags()
    try:
        g = parse(gflags, argv[1:])
    except FlagError as e:
        msg = str(e)
        if msg.startswith("Cannot use two forms"):
            _stdout_help(msg + "\n" + _app_help(prog))
        else:
            _stdout_help(f"Incorrect Usage. {msg}\n\n" + _app_help(prog))
        fatal(msg)
        return 1
    if g["help"]:
        _stdout_help(_app_help(prog))
        return 0
    if g["version"]:
        _stdout_help(f"{APP_NAME} version {version_text()}\n")
        return 0

    # runc's app.Before: absolute --root, then logrus from --debug/--log-format/--log.
    root = _abs(str(g["root"]))
    try:
        log.configure(debug=bool(g["debug"]), log_format=str(g["log-format"]), log_file=str(g["log"]))
    except log.LogConfigError as e:
        fatal(str(e))
        return 1
    log.install_runtime_sink()

    if not g.args:
        _stdout_help(_app_help(prog))
        return 0
    name = g.args[0]
    if name in ("help", "h"):
        topic = g.args[1] if len(g.args) > 1 else ""
        if not topic:
            _stdout_help(_app_help(prog))
            return 0
        if topic in COMMANDS:
            _stdout_help(_command_help(prog, COMMANDS[topic]))
            return 0
        name = topic
    cmd = COMMANDS.get(name)
    if cmd is None:
        # urfave's help action: an ExitCoder written through runc's FatalWriter.
        text = f"No help topic for '{name}'\n"
        log.error(text)
        if not log.to_stderr():
            _stderr(text)
        return 3
    return _run_command(prog, cmd, g, root)


def _run_command(prog: str, cmd: Command, g: Parsed, root: str) -> int:
    flags = [*cmd.flags, HELP]
    args = reorder(flags, g.args[1:]) if cmd.reorder else g.args[1:]
    try:
        opts = parse(flags, args)
    except FlagError as e:
        _stdout_help(f"Incorrect Usage: {e}\n\n" + _command_help(prog, cmd))
        fatal(str(e))
        return 1
    if opts["help"]:
        _stdout_help(_command_help(prog, cmd))
        return 0
    n = len(opts.args)
    for kind, want in cmd.checks:
        bad = (n != want) if kind == EXACT else (n < want) if kind == MIN else (n > want)
        if bad:
            _stdout_help("Incorrect Usage.\n\n" + _command_help(prog, cmd))
            fatal(f'{prog}: "{cmd.name}" requires {kind} {want} argument(s)')
            return 1

    ctx = Context(prog, cmd.name, g, opts, root)
    debug = bool(g["debug"])
    try:
        module = __import__(f"ketch.runtime.cli.commands.{cmd.name}", fromlist=["run"])
        end_start_up()  # the verb's own work runs with the collector
        return int(module.run(ctx))
    except StdoutClosed:
        raise
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        if debug and not _is_ketch_error(e):
            import traceback

            _stderr(traceback.format_exc())
        msg = error_message(e)
        if cmd.error_prefix:
            msg = f"{APP_NAME} {cmd.name} failed: {msg}"
        fatal(msg)
        return int(getattr(e, "exit_code", 1) or 1) if _is_ketch_error(e) else 1


def _is_ketch_error(e: BaseException) -> bool:
    from ketch.runtime.errors import KetchError

    return isinstance(e, KetchError)


def error_message(e: BaseException) -> str:
    """One line for any error: a KetchError's text, an OSError in Go's style
    (``open /x: no such file or directory``), else ``Type: text``."""
    if _is_ketch_error(e):
        return str(e)
    if isinstance(e, OSError) and e.errno is not None:
        text = log.go_errno_text(e)
        if e.filename is not None:
            return f"{e.filename}: {text}"
        return text
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _die_of_sigpipe() -> None:
    """Go dies of SIGPIPE when stdout's reader went away; do the same."""
    import signal

    try:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - nothing left to flush at exit
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGPIPE)
    except OSError:
        pass

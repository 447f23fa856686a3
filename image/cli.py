"""The ``ketch-image`` command line (click).

Commands: ``pull``, ``push``, ``copy`` (:mod:`ketch.image.cli_transfer`), ``import``,
``unpack``, ``inspect``, ``validate``, ``gc``, ``tag``, ``untag``/``rm``, ``ls``
(:mod:`ketch.image.cli_local`), ``tags``, ``login``, ``logout``
(:mod:`ketch.image.cli_registry`) and ``repack`` (:mod:`ketch.image.cli_layers`).
Each only turns options into library calls (the logic lives in one module per
command); every :class:`~ketch.image.errors.ImageError` (and OS error) becomes one
line ``ketch-image: error: <message>`` on stderr and exit status 1.

The group loads a command's module only when that command runs (click's "lazy
loading of subcommands" pattern, :class:`LazyGroup`), so ``push`` does not build the
options of the other fifteen commands; ``--help`` loads them all to list them.
``requests`` is only imported by the commands that talk to a registry.
"""

from __future__ import annotations

import gc as _gc

# The collector stays paused while this module and click load: by the console
# script (ketch.image.startup.main, which freezes what start-up created once the
# command's module has loaded), or here, for a process that only imports this module
# (enabled again at its end).
_gc_was_enabled = _gc.isenabled()
_gc.disable()

import contextlib  # noqa: E402
import importlib  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from typing import NoReturn  # noqa: E402

import click  # noqa: E402

from ketch.image import startup  # noqa: E402
from ketch.image.cli_common import PROG, say  # noqa: E402
from ketch.image.errors import ImageError  # noqa: E402
from ketch.runtime.stdio import fill_closed_stdio  # noqa: E402

# command name -> "module:attribute" of its click.Command
COMMANDS = {
    "pull": "ketch.image.cli_transfer:pull",
    "push": "ketch.image.cli_transfer:push",
    "copy": "ketch.image.cli_transfer:copy",
    "import": "ketch.image.cli_local:import_",
    "unpack": "ketch.image.cli_local:unpack",
    "inspect": "ketch.image.cli_local:inspect",
    "validate": "ketch.image.cli_local:validate",
    "gc": "ketch.image.cli_local:gc",
    "tag": "ketch.image.cli_local:tag_",
    "untag": "ketch.image.cli_local:untag",
    "rm": "ketch.image.cli_local:untag",
    "ls": "ketch.image.cli_local:ls",
    "tags": "ketch.image.cli_registry:tags",
    "login": "ketch.image.cli_registry:login",
    "logout": "ketch.image.cli_registry:logout",
    "repack": "ketch.image.cli_layers:repack",
}


class LazyGroup(click.Group):
    """A click group whose commands are imported from ``lazy_commands``
    (name -> ``"module:attribute"``) when first asked for."""

    def __init__(self, *args: object, lazy_commands: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in self.lazy_commands:
            module_name, _, attr = self.lazy_commands[cmd_name].partition(":")
            command = getattr(importlib.import_module(module_name), attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self.lazy_commands[cmd_name]} is not a click command")
            self.add_command(command, cmd_name)
        return command

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        finally:
            startup.end()  # the command's own work runs with the collector


@click.group(cls=LazyGroup, lazy_commands=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option("0.1.0", prog_name=PROG)
def cli() -> None:
    """Pull, push, copy, import, unpack, inspect and manage OCI images and image layouts."""


if _gc_was_enabled:
    _gc.enable()


# Options that take a boolean value, which skopeo's (Go) flags also accept bare.
_BOOL_OPTIONS = frozenset({"--tls-verify", "--src-tls-verify", "--dest-tls-verify"})
_BOOL_WORDS = frozenset({"true", "false", "1", "0", "yes", "no", "on", "off", "t", "f",
                         "y", "n"})


def bare_bool_flags(args: list[str]) -> list[str]:
    """``--tls-verify`` alone means ``--tls-verify=true`` (as in skopeo), instead of
    taking the next argument as its value; ``--tls-verify false`` still works.

    Arguments after ``--`` are left alone. Returns a new list.
    """
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        nxt = args[i + 1] if i + 1 < len(args) else None
        if arg in _BOOL_OPTIONS and (nxt is None or nxt.lower() not in _BOOL_WORDS):
            arg += "=true"
        out.append(arg)
    return out


def _os_error_text(e: OSError) -> str:
    """``PATH: problem`` (not Python's ``[Errno N] ...: 'PATH'``)."""
    if e.strerror is None:
        return str(e)
    problem = e.strerror[:1].lower() + e.strerror[1:]
    if e.filename is None:
        return problem
    if e.filename2 is not None:
        return f"{e.filename} -> {e.filename2}: {problem}"
    return f"{e.filename}: {problem}"


def main(argv: list[str] | None = None) -> NoReturn:
    """Console entry point: run the CLI, map errors to one line and exit status 1."""
    fill_closed_stdio()
    signal.signal(signal.SIGTERM, _terminated)
    startup.begin()
    try:
        args = bare_bool_flags(sys.argv[1:] if argv is None else argv)
        code = cli.main(args=args, prog_name=PROG, standalone_mode=False)
    except ImageError as e:
        say(f"{PROG}: error: {' '.join(str(e).split())}")
        _exit(1)
    except click.exceptions.Abort:
        say(f"{PROG}: aborted")
        _exit_interrupted(130)
    except click.ClickException as e:
        with contextlib.suppress(OSError):
            e.show()
        _exit(e.exit_code)
    except OSError as e:
        say(f"{PROG}: error: {_os_error_text(e)}")
        _exit(1)
    except KeyboardInterrupt:
        say(f"{PROG}: interrupted")
        _exit_interrupted(130)
    except _Terminated:
        say(f"{PROG}: terminated")
        _exit_interrupted(143)
    finally:
        startup.end()  # when no command was resolved (--help, a usage error)
    _exit(code if isinstance(code, int) else 0)


class _Terminated(BaseException):
    """SIGTERM arrived: unwinds like Ctrl-C, so half-written bundles and blobs are
    removed by the same cleanup."""


def _terminated(_signum: int, _frame: object) -> None:
    # a second SIGTERM during the cleanup unwinds again, as a second Ctrl-C does: the
    # exit path is bounded (it abandons stuck workers) and still removes partial files
    raise _Terminated()


def _exit_interrupted(code: int) -> NoReturn:
    """End an interrupted command (Ctrl-C, SIGTERM) at once: blob writers still stuck
    on a slow peer are abandoned (joining them took as long as their transfer), after
    their partial files are removed."""
    import os

    layout = sys.modules.get("ketch.image.layout")
    if layout is not None:
        layout.remove_own_partial_blobs()
    import atexit

    atexit._run_exitfuncs()
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _exit(code: int) -> NoReturn:
    """End the process with status ``code`` without the interpreter's teardown.

    That teardown frees every module one by one: 25-30 ms once requests is
    loaded, a tenth of a push of a 50 MB image, and nothing a finished command
    needs. The atexit handlers still run and stdout/stderr are flushed; every
    file the commands write is closed (and fsynced) before they return. When
    another thread still runs, or a flush fails (a closed pipe), it is the
    ordinary ``sys.exit``, which waits for the thread or reports the error.
    """
    import atexit
    import os

    threading = sys.modules.get("threading")
    if threading is None or threading.active_count() == 1:
        atexit._run_exitfuncs()
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            sys.exit(code)
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    main()

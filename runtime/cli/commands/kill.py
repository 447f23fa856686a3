"""``ketch kill [--all|-a] <container-id> [signal]``: runtime-spec ``kill``.

runc's rules: the container is looked up first, then the signal is parsed;
it defaults to SIGTERM (also when given as ""); a decimal number (Go's
``strconv.Atoi``: optional sign, ASCII digits, no spaces) is used as is, and
the kernel judges it; otherwise the name is upper-cased, ``SIG`` is added when
missing, and it must be one of the 31 classic Linux signal names that
``unix.SignalNum`` knows (no RTMIN+n, no SIGIOT/SIGCLD/SIGPOLL aliases), else
``unknown signal "X"``. ``--all`` is passed to the library.
"""

from __future__ import annotations

import signal

from ketch.runtime.cli import backend
from ketch.runtime.cli.commands.create import container_id
from ketch.runtime.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ketch.runtime.cli.app import Context

# golang.org/x/sys/unix signalList for Linux: the names runc accepts.
NAMES = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE",
         "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT",
         "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU",
         "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS")
_INT64 = 1 << 63


def parse_signal(raw: str) -> int:
    """runc's ``parseSignal``: a number, or a signal name in any case with or without SIG."""
    text = raw[1:] if raw[:1] in ("+", "-") else raw
    if text and text.isascii() and text.isdigit():
        value = int(raw)
        if -_INT64 <= value < _INT64:
            return value
    name = raw.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name in NAMES:
        number = getattr(signal, name, None)
        if number is not None:
            return int(number)
    from ketch.runtime.cli.gofmt import quote

    raise UsageError(f"unknown signal {quote(raw)}")


def run(ctx: Context) -> int:
    container = backend.get().Container.load(ctx.root, container_id(ctx))
    raw = ctx.args[1] if len(ctx.args) > 1 else ""
    container.signal(parse_signal(raw or "SIGTERM"), all=bool(ctx.opts["all"]))
    return 0

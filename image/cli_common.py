"""What the ``ketch-image`` command modules share: messages on stderr, the
progress sink, and the options common to several commands (registry access,
``--jobs``, ``--verbose``).

Kept out of :mod:`ketch.image.cli` so that a command module loaded on demand by
the group (see ``cli.LazyGroup``) never imports ``cli`` itself, which runs as
``__main__`` under ``python -m ketch.image.cli`` and would then load twice.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Any

import click

PROG = "ketch-image"


def say(msg: str) -> None:
    """One line on stderr; a reader that went away (``2>&1 | head -1``) costs the
    message, never the command (a transfer must not stop half-way over it)."""
    with contextlib.suppress(OSError):
        click.echo(msg, err=True)


def warn(msg: str) -> None:
    """``ketch-image: warning: <msg>`` on stderr."""
    say(f"{PROG}: warning: {msg}")


# per-blob and per-document steps (the result, the platform chosen and retries always show)
_BLOB_CHATTER = ("Copying ", "Blob ", "Mounted blob ", "Writing index ")


def progress_sink(quiet: bool, verbose: bool = False) -> Callable[[str], None]:
    """Progress sink: nothing with -q; a live display on a terminal; otherwise (a
    log, a pipe) quiet but for the result and retries, every step with -v."""
    if not quiet and sys.stderr.isatty():
        from ketch.image.progress import TerminalProgress
        return TerminalProgress(sys.stderr)

    def emit(msg: str) -> None:
        if quiet or (not verbose and msg.startswith(_BLOB_CHATTER)):
            return
        say(msg)
    return emit


def parse_platform_arg(value: str | None) -> Any:
    """``--platform OS/ARCH[/VARIANT]`` as a platform dict, or None when not given.

    Raises :class:`~ketch.image.errors.ImageError` for a malformed value.
    """
    if value is None:
        return None
    from ketch.image.platforms import parse_platform
    return parse_platform(value)


def _creds(value: str, flag: str) -> tuple[str, str]:
    from ketch.image.registry.auth import Credentials

    user, sep, password = value.partition(":")
    if not sep or not user:
        raise click.BadParameter("expected USER:PASS", param_hint=flag)
    return Credentials(user, password, flag)


def creds_for(value: str | None, authfile: str | None, ref: Any,
              flag: str = "--creds") -> tuple[str, str] | None:
    """Credentials for the registry of ``ref`` (a Reference): ``value`` (``USER:PASS``
    of option ``flag``) if given, else what the auth file (or its helper) holds,
    else None. Raises click.BadParameter for a ``value`` without ``:`` or user."""
    if value is not None:
        return _creds(value, flag)
    from ketch.image.registry.credentials import CredentialHelperMissing, lookup
    try:
        return lookup(ref.registry, ref.repository, authfile)
    except CredentialHelperMissing as e:
        # as skopeo does: an uninstalled helper must not stop an anonymous pull; a
        # registry that wants credentials then says so
        warn(f"{e}; continuing without credentials")
        return None


ALLOW_ND = click.option(
    "--allow-nondistributable-artifacts", is_flag=True,
    help="Push non-distributable (foreign) layers present in the source (default: skip "
         "them, as docker and skopeo do).")
VERBOSE = click.option("-v", "--verbose", is_flag=True,
                       help="Without a terminal, also log each blob as it is handled.")
AUTHFILE = click.option("--authfile", type=click.Path(dir_okay=False), metavar="FILE",
                        help="Auth file (default: $REGISTRY_AUTH_FILE or "
                             "~/.docker/config.json).")
JOBS = click.option("-j", "--jobs", type=click.IntRange(1, 32), default=4, show_default=True,
                    help="Blobs transferred at once.")


def registry_options(f: Callable) -> Callable:
    """--creds, --authfile, --tls-verify, --cert-dir: how to reach and log in to a registry."""
    f = AUTHFILE(f)
    f = click.option("--cert-dir", type=click.Path(file_okay=False), metavar="DIR",
                     help="CA certificates (*.crt) and client certificate (*.cert/*.key).")(f)
    f = click.option("--tls-verify", type=click.BOOL, default=True, show_default=True,
                     help="Verify TLS certificates; false also allows plain HTTP.")(f)
    f = click.option("--creds", metavar="USER:PASS",
                     help="Credentials for the registry/token server.")(f)
    return f

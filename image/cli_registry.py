"""``ketch-image tags``, ``login`` and ``logout``: a registry's tag list
(distribution-spec "Listing tags") and the credentials kept for registries.

Loaded by the group in :mod:`ketch.image.cli` only when one of these commands runs
(or for ``--help``).
"""

from __future__ import annotations

import sys

import click

from ketch.image.cli_common import AUTHFILE, creds_for, registry_options
from ketch.image.startup import load_http_stack


@click.command()
@click.argument("ref")
@registry_options
@click.option("--page-size", type=click.IntRange(1), metavar="N",
              help="Tags asked for per request (?n=); every page is followed.")
def tags(ref: str, creds: str | None, authfile: str | None, tls_verify: bool,
         cert_dir: str | None, page_size: int | None) -> None:
    """List the tags of the registry repository REF."""
    from ketch.image.reference import parse_reference
    from ketch.image.tags import registry_tags

    name_part = ref.removeprefix("docker://").rsplit("/", 1)[-1]
    if ":" in name_part or "@" in name_part:
        raise click.UsageError(f"{ref}: tags takes a repository, without a tag or digest")
    reference = parse_reference(ref)
    load_http_stack()
    for name in registry_tags(reference, creds=creds_for(creds, authfile, reference),
                              tls_verify=tls_verify, cert_dir=cert_dir, page_size=page_size):
        click.echo(name)


@click.command()
@click.argument("registry")
@click.option("-u", "--username", help="User name (asked for when missing on a terminal).")
@click.option("-p", "--password", help="Password (prefer --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@AUTHFILE
@click.option("--tls-verify", type=click.BOOL, default=True, show_default=True,
              help="Verify TLS certificates; false also allows plain HTTP.")
@click.option("--cert-dir", type=click.Path(file_okay=False), metavar="DIR",
              help="CA certificates (*.crt) and client certificate (*.cert/*.key).")
def login(registry: str, username: str | None, password: str | None, password_stdin: bool,
          authfile: str | None, tls_verify: bool, cert_dir: str | None) -> None:
    """Check credentials against REGISTRY and save them (auth file or credential helper)."""
    from ketch.image.errors import AuthError
    from ketch.image.login import login as do_login
    from ketch.image.login import registry_host

    if password is not None and password_stdin:
        raise click.UsageError("--password and --password-stdin exclude each other")
    registry_host(registry)  # a malformed REGISTRY fails before any prompt
    if (username is None or (password is None and not password_stdin)) and \
            not sys.stdin.isatty():
        # a prompt would read a password from a pipe (getpass warns and echoes)
        missing = "--username" if username is None else "--password-stdin (or --password)"
        raise AuthError(f"no terminal to ask for credentials: give {missing}")
    if username is None:
        username = click.prompt("Username")
    source = "--password"
    if password_stdin:
        # one line, its end in either convention (docker and skopeo drop a "\r" too)
        password = sys.stdin.readline().rstrip("\n").removesuffix("\r")
        if not password:
            raise AuthError("--password-stdin: no password on standard input")
        source = "--password-stdin"
    elif password is None:
        password = click.prompt("Password", hide_input=True)
        source = "the password typed in"
    assert username is not None and password is not None
    load_http_stack()
    where = do_login(registry, username, password, authfile=authfile, tls_verify=tls_verify,
                     cert_dir=cert_dir, source=source)
    click.echo(f"Login Succeeded (credentials saved in {where})")


@click.command()
@click.argument("registry", required=False)
@click.option("-a", "--all", "all_", is_flag=True, help="Forget every registry's credentials.")
@AUTHFILE
def logout(registry: str | None, all_: bool, authfile: str | None) -> None:
    """Forget the saved credentials of REGISTRY."""
    from ketch.image.errors import AuthError
    from ketch.image.login import logout as do_logout

    if (registry is None) == (not all_):
        raise click.UsageError("give REGISTRY or --all")
    if not do_logout(None if all_ else registry, authfile=authfile):
        raise AuthError(f"not logged in to {registry}")
    click.echo(f"Removed login credentials for {'every registry' if all_ else registry}")

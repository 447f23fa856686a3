"""The ``ketch-image`` command line (click).

Commands: ``pull``, ``import``, ``unpack``, ``inspect`` and ``repack``
(:mod:`ketch.image.cli_layers`). Each only turns options
into library calls; every :class:`~ketch.image.errors.ImageError` (and OS error)
becomes one line ``ketch-image: error: <message>`` on stderr and exit status 1.
``requests`` is only imported by ``pull``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from ketch.image.errors import ImageError
from ketch.image.reference import DEFAULT_TAG, parse_layout_arg

PROG = "ketch-image"


def _warn(msg: str) -> None:
    click.echo(f"{PROG}: warning: {msg}", err=True)


def _progress(quiet: bool) -> Callable[[str], None]:
    def emit(msg: str) -> None:
        if not quiet:
            click.echo(msg, err=True)
    return emit


def _platform(value: str | None) -> Any:
    if value is None:
        return None
    from ketch.image.platforms import parse_platform
    return parse_platform(value)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option("0.1.0", prog_name=PROG)
def cli() -> None:
    """Pull, import, unpack and inspect OCI images in OCI image layouts."""


@cli.command()
@click.argument("ref")
@click.argument("layout")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="Platform to pick from an index (default: this host).")
@click.option("--creds", metavar="USER:PASS", help="Credentials for the registry/token server.")
@click.option("--tls-verify", type=click.BOOL, default=True, show_default=True,
              help="Verify TLS certificates; false also allows plain HTTP.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
def pull(ref: str, layout: str, platform: str | None, creds: str | None, tls_verify: bool,
         quiet: bool) -> None:
    """Pull REF from a registry into LAYOUT[:TAG] (default tag: REF's tag or latest)."""
    from ketch.image.pull import pull as do_pull
    from ketch.image.reference import parse_reference

    reference = parse_reference(ref)
    path, tag = parse_layout_arg(layout, default_tag=None)
    tag = tag or reference.tag or DEFAULT_TAG
    credentials = None
    if creds is not None:
        user, sep, password = creds.partition(":")
        if not sep or not user:
            raise click.BadParameter("expected USER:PASS", param_hint="--creds")
        credentials = (user, password)
    result = do_pull(reference, path, tag, platform=_platform(platform), creds=credentials,
                     tls_verify=tls_verify, progress=_progress(quiet))
    click.echo(result.descriptor["digest"])


@cli.command("import")
@click.argument("source", type=click.Path(exists=True))
@click.argument("layout")
@click.option("--entrypoint", help="Entrypoint as a JSON array (or a shell command).")
@click.option("--cmd", help="Cmd as a JSON array (or a shell command).")
@click.option("--env", multiple=True, metavar="NAME=VALUE", help="Environment entry (repeatable).")
@click.option("--workdir", help="Working directory.")
@click.option("--user", help="User (uid, uid:gid, name, name:group).")
@click.option("--label", multiple=True, metavar="KEY=VALUE", help="Label (repeatable).")
@click.option("--author", help="Author of the image.")
def import_(source: str, layout: str, entrypoint: str | None, cmd: str | None,
            env: tuple[str, ...], workdir: str | None, user: str | None,
            label: tuple[str, ...], author: str | None) -> None:
    """Import a root filesystem (directory or tar) as a one-layer image LAYOUT:TAG."""
    from ketch.image.importer import ImportOptions, import_rootfs

    path, tag = parse_layout_arg(layout)
    labels = {}
    for item in label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--label")
        labels[key] = value
    for item in env:
        if "=" not in item or item.startswith("="):
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--env")
    options = ImportOptions(entrypoint=_command(entrypoint, "--entrypoint"),
                            cmd=_command(cmd, "--cmd"), env=list(env), workdir=workdir,
                            user=user, labels=labels, author=author)
    desc = import_rootfs(source, path, tag or DEFAULT_TAG, options, warn=_warn)
    click.echo(desc["digest"])


def _command(value: str | None, hint: str) -> list[str] | None:
    if value is None:
        return None
    if value.lstrip().startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError as e:
            raise click.BadParameter(f"invalid JSON array: {e}", param_hint=hint) from None
        if not isinstance(parsed, list) or not all(isinstance(x, str) for x in parsed):
            raise click.BadParameter("expected a JSON array of strings", param_hint=hint)
        return parsed
    # Dockerfile "shell form"
    return ["/bin/sh", "-c", value]


@cli.command()
@click.argument("layout")
@click.argument("bundle", type=click.Path())
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="Platform to pick when the tag names an index (default: this host).")
@click.option("--volumes", type=click.Choice(["tmpfs", "ignore"]), default="tmpfs",
              show_default=True, help="How to turn the image's Volumes into mounts.")
@click.option("--rootless", is_flag=True,
              help="No chown: owners go into the user.rootlesscontainers xattr, devices are "
                   "skipped, config.json gets a user namespace.")
@click.option("--uid-map", multiple=True, metavar="CONTAINER:HOST:SIZE",
              help="Map image uids to host uids (repeatable); adds a user namespace.")
@click.option("--gid-map", multiple=True, metavar="CONTAINER:HOST:SIZE",
              help="Map image gids to host gids (repeatable).")
@click.option("--keep-selinux-labels", is_flag=True,
              help="Apply security.selinux xattrs from the layers (dropped by default).")
def unpack(layout: str, bundle: str, platform: str | None, volumes: str, rootless: bool,
           uid_map: tuple[str, ...], gid_map: tuple[str, ...], keep_selinux_labels: bool) -> None:
    """Unpack LAYOUT[:TAG] into the runtime bundle BUNDLE (config.json + rootfs)."""
    from ketch.image.layers.ownership import parse_id_map
    from ketch.image.unpack import UnpackOptions
    from ketch.image.unpack import unpack as do_unpack

    path, tag = parse_layout_arg(layout)
    options = UnpackOptions(rootless=rootless, uid_map=[parse_id_map(m) for m in uid_map],
                            gid_map=[parse_id_map(m) for m in gid_map],
                            keep_selinux=keep_selinux_labels)
    do_unpack(path, tag or DEFAULT_TAG, bundle, platform=_platform(platform), volumes=volumes,
              warn=_warn, options=options)


@cli.command()
@click.argument("layout")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="Platform to pick when the tag names an index (default: this host).")
def inspect(layout: str, platform: str | None) -> None:
    """Print the descriptor, manifest and config of LAYOUT[:TAG] as JSON."""
    from ketch.image.image import resolve
    from ketch.image.layout import Layout

    path, tag = parse_layout_arg(layout)
    image = resolve(Layout.open(path), tag or DEFAULT_TAG, _platform(platform))
    out: dict[str, Any] = {"descriptor": image.descriptor}
    if image.index is not None:
        out["index"] = image.index
        out["manifestDescriptor"] = image.manifest_descriptor
    out["manifest"] = image.manifest
    out["config"] = image.config
    click.echo(json.dumps(out, indent=2))


def _register_extra_commands() -> None:
    from ketch.image.cli_layers import repack

    cli.add_command(repack)


_register_extra_commands()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI, map errors to one line and exit status 1."""
    try:
        code = cli.main(args=argv, prog_name=PROG, standalone_mode=False)
    except ImageError as e:
        click.echo(f"{PROG}: error: {' '.join(str(e).split())}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo(f"{PROG}: aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except OSError as e:
        click.echo(f"{PROG}: error: {e}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo(f"{PROG}: interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()

"""``ketch-image import``, ``unpack``, ``inspect``, ``validate``, ``gc``, ``tag``,
``untag`` (alias ``rm``) and ``ls``: commands on an image layout (image-spec
``image-layout.md``); ``inspect`` also reads ``docker://`` references.

Loaded by the group in :mod:`ketch.image.cli` only when one of these commands runs
(or for ``--help``).
"""

from __future__ import annotations

import json
from typing import Any

import click

from ketch.image.cli_common import PROG, creds_for, parse_platform_arg, registry_options, warn
from ketch.image.reference import DEFAULT_TAG, layout_path_arg, parse_layout_arg
from ketch.image.startup import load_http_stack


@click.command("import")
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
    desc = import_rootfs(source, path, tag or DEFAULT_TAG, options, warn=warn)
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


@click.command()
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
    do_unpack(path, tag or DEFAULT_TAG, bundle, platform=parse_platform_arg(platform),
              volumes=volumes, warn=warn, options=options)


@click.command()
@click.argument("layout")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="Platform to pick when the tag names an index (default: this host).")
@click.option("--raw", is_flag=True, help="Print the tagged manifest or index byte for byte.")
@click.option("--config", "config_only", is_flag=True,
              help="Print the image config byte for byte.")
@registry_options
def inspect(layout: str, platform: str | None, raw: bool, config_only: bool, creds: str | None,
            authfile: str | None, tls_verify: bool, cert_dir: str | None) -> None:
    """Print the descriptor, manifest and config of LAYOUT[:TAG] (or docker://REF) as JSON."""
    from ketch.image.image import resolve
    from ketch.image.layout import Layout

    if raw and config_only:
        raise click.UsageError("--raw and --config exclude each other")
    if layout.startswith("docker://"):
        load_http_stack()
        from ketch.image.inspect_remote import inspect_remote
        from ketch.image.reference import parse_reference

        reference = parse_reference(layout)
        result = inspect_remote(reference, platform=parse_platform_arg(platform), raw=raw,
                                config_only=config_only,
                                creds=creds_for(creds, authfile, reference),
                                tls_verify=tls_verify, cert_dir=cert_dir)
        if isinstance(result, bytes):
            click.echo(result, nl=False)
        else:
            click.echo(json.dumps(result, indent=2))
        return
    path, tag = parse_layout_arg(layout)
    store = Layout.open(path)
    store.hold_read_lock()  # released when the process ends
    if raw:
        desc = store.lookup(tag or DEFAULT_TAG)
        click.echo(store.read_blob(desc["digest"], desc["size"]), nl=False)
        return
    image = resolve(store, tag or DEFAULT_TAG, parse_platform_arg(platform))
    if config_only:
        cdesc = image.manifest["config"]
        click.echo(store.read_blob(cdesc["digest"], cdesc["size"]), nl=False)
        return
    out: dict[str, Any] = {"descriptor": image.descriptor}
    if image.index is not None:
        out["index"] = image.index
        out["manifestDescriptor"] = image.manifest_descriptor
    out["manifest"] = image.manifest
    out["config"] = image.config
    click.echo(json.dumps(out, indent=2))


@click.command()
@click.argument("layout")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing when the layout is valid.")
@click.option("--verify-layers", is_flag=True,
              help="Also decompress every layer and check it against the config's diff_ids.")
def validate(layout: str, quiet: bool, verify_layers: bool) -> None:
    """Check LAYOUT: files, blob digests, references, schemas of every document.

    Each image config must list one diff_id per layer; --verify-layers also
    decompresses the layers and compares their digests with those diff_ids.
    """
    from ketch.image.errors import LayoutError
    from ketch.image.validate import validate_layout

    layout = layout_path_arg(layout)
    report = validate_layout(layout, verify_layers=verify_layers)
    for w in report.warnings:
        warn(w)
    for p in report.problems:
        click.echo(f"{PROG}: invalid: {p}", err=True)
    if not report.valid:
        raise LayoutError(f"{layout}: {len(report.problems)} problem(s), not a valid OCI "
                          "image layout")
    if not quiet:
        layers = (f", {report.layers_verified} layers uncompressed" if verify_layers else "")
        click.echo(f"{layout}: valid OCI image layout ({report.tags} tags, {report.blobs} "
                   f"blobs, {report.documents} documents checked{layers})")


@click.command()
@click.argument("layout")
@click.option("-n", "--dry-run", is_flag=True, help="Only list what would be removed.")
def gc(layout: str, dry_run: bool) -> None:
    """Remove blobs of LAYOUT that no tag references (waits for running writers)."""
    from ketch.image.gc import gc as do_gc

    partials: list[str] = []
    for digest in do_gc(layout_path_arg(layout), dry_run=dry_run, partials=partials):
        click.echo(digest)
    for path in partials:  # what interrupted writes left (a killed pull or repack)
        click.echo(path)


@click.command("tag")
@click.argument("layout")
@click.argument("new_tag")
def tag_(layout: str, new_tag: str) -> None:
    """Give the image LAYOUT[:TAG] the additional tag NEW_TAG."""
    from ketch.image.tags import tag as do_tag

    path, tag = parse_layout_arg(layout)
    click.echo(do_tag(path, tag or DEFAULT_TAG, new_tag)["digest"])


@click.command()
@click.argument("layout")
def untag(layout: str) -> None:
    """Remove the tag LAYOUT:TAG (its blobs stay until gc)."""
    from ketch.image.tags import untag as do_untag

    path, tag = parse_layout_arg(layout, default_tag=None)
    if tag is None:
        raise click.UsageError("untag needs LAYOUT:TAG")
    do_untag(path, tag)



@click.command("ls")
@click.argument("layout")
@click.option("-l", "--long", "long_", is_flag=True, help="Also print digest and media type.")
def ls(layout: str, long_: bool) -> None:
    """List the tags of LAYOUT."""
    from ketch.image.tags import layout_tags

    for name, desc in layout_tags(layout_path_arg(layout)):
        click.echo(f"{name}\t{desc['digest']}\t{desc['mediaType']}" if long_ else name)

"""The ``ketch-image`` command line (click).

Commands: ``pull``, ``push``, ``copy``, ``import``, ``unpack``, ``repack``
(:mod:`ketch.image.cli_layers`), ``inspect``, ``validate``, ``gc``, ``tag``,
``untag``/``rm``, ``ls``, ``tags``, ``login``, ``logout``. Each only turns options
into library calls (the logic lives in one module per command); every
:class:`~ketch.image.errors.ImageError` (and OS error) becomes one line
``ketch-image: error: <message>`` on stderr and exit status 1.
``requests`` is only imported by the commands that talk to a registry.
"""

from __future__ import annotations

import gc as _gc

# Paused while this module and click load (enabled again at its end): the objects
# they create live as long as the process, so collections on the way only cost
# start-up time (~2 ms; see also registry.client._import_http_stack).
_gc.disable()

import contextlib  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any, NoReturn  # noqa: E402

import click  # noqa: E402

from ketch.image.errors import ImageError  # noqa: E402
from ketch.image.reference import DEFAULT_TAG, parse_layout_arg  # noqa: E402

PROG = "ketch-image"


def _warn(msg: str) -> None:
    _say(f"{PROG}: warning: {msg}")


# per-blob and per-document steps (the result, the platform chosen and retries always show)
_BLOB_CHATTER = ("Copying ", "Blob ", "Mounted blob ", "Writing index ")


def _progress(quiet: bool, verbose: bool = False) -> Callable[[str], None]:
    """Progress sink: nothing with -q; a live display on a terminal; otherwise (a
    log, a pipe) quiet but for the result and retries, every step with -v."""
    if not quiet and sys.stderr.isatty():
        from ketch.image.progress import TerminalProgress
        return TerminalProgress(sys.stderr)

    def emit(msg: str) -> None:
        if quiet or (not verbose and msg.startswith(_BLOB_CHATTER)):
            return
        _say(msg)
    return emit


def _say(msg: str) -> None:
    """One line on stderr; a reader that went away (``2>&1 | head -1``) costs the
    message, never the command (a transfer must not stop half-way over it)."""
    with contextlib.suppress(OSError):
        click.echo(msg, err=True)


_ALLOW_ND = click.option(
    "--allow-nondistributable-artifacts", is_flag=True,
    help="Push non-distributable (foreign) layers present in the source (default: skip "
         "them, as docker and skopeo do).")
_VERBOSE = click.option("-v", "--verbose", is_flag=True,
                        help="Without a terminal, also log each blob as it is handled.")


def _platform(value: str | None) -> Any:
    if value is None:
        return None
    from ketch.image.platforms import parse_platform
    return parse_platform(value)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option("0.1.0", prog_name=PROG)
def cli() -> None:
    """Pull, push, copy, import, unpack, inspect and manage OCI images and image layouts."""


def _creds(value: str | None, flag: str = "--creds") -> tuple[str, str] | None:
    if value is None:
        return None
    from ketch.image.registry.auth import Credentials

    user, sep, password = value.partition(":")
    if not sep or not user:
        raise click.BadParameter("expected USER:PASS", param_hint=flag)
    return Credentials(user, password, flag)


def _creds_for(value: str | None, authfile: str | None, ref: Any,
               flag: str = "--creds") -> tuple[str, str] | None:
    """--creds if given, else what the auth file (or its helper) holds for ``ref``."""
    if value is not None:
        return _creds(value, flag)
    from ketch.image.registry.credentials import lookup
    return lookup(ref.registry, ref.repository, authfile)


_AUTHFILE = click.option("--authfile", type=click.Path(dir_okay=False), metavar="FILE",
                         help="Auth file (default: $REGISTRY_AUTH_FILE or "
                              "~/.docker/config.json).")


def _registry_options(f: Callable) -> Callable:
    """--creds, --authfile, --tls-verify, --cert-dir: how to reach and log in to a registry."""
    f = _AUTHFILE(f)
    f = click.option("--cert-dir", type=click.Path(file_okay=False), metavar="DIR",
                     help="CA certificates (*.crt) and client certificate (*.cert/*.key).")(f)
    f = click.option("--tls-verify", type=click.BOOL, default=True, show_default=True,
                     help="Verify TLS certificates; false also allows plain HTTP.")(f)
    f = click.option("--creds", metavar="USER:PASS",
                     help="Credentials for the registry/token server.")(f)
    return f


_JOBS = click.option("-j", "--jobs", type=click.IntRange(1, 32), default=4, show_default=True,
                     help="Blobs transferred at once.")


@cli.command()
@click.argument("ref")
@click.argument("layout")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="Platform to pick from an index (default: this host).")
@click.option("--all-platforms", is_flag=True, help="Pull every manifest of an index.")
@_registry_options
@_JOBS
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@_VERBOSE
def pull(ref: str, layout: str, platform: str | None, all_platforms: bool, creds: str | None,
         authfile: str | None, tls_verify: bool, cert_dir: str | None, jobs: int,
         quiet: bool, verbose: bool) -> None:
    """Pull REF from a registry into LAYOUT[:TAG] (default tag: REF's tag or latest)."""
    from ketch.image.pull import pull as do_pull
    from ketch.image.reference import parse_reference

    reference = parse_reference(ref)
    path, tag = parse_layout_arg(layout, default_tag=None)
    tag = tag or reference.tag or DEFAULT_TAG
    if all_platforms and platform:
        raise click.UsageError("--platform and --all-platforms exclude each other")
    result = do_pull(reference, path, tag, platform=_platform(platform),
                     creds=_creds_for(creds, authfile, reference),
                     tls_verify=tls_verify, cert_dir=cert_dir, all_platforms=all_platforms,
                     jobs=jobs, progress=_progress(quiet, verbose))
    click.echo(result.descriptor["digest"])


@cli.command()
@click.argument("layout")
@click.argument("ref")
@_registry_options
@click.option("--mount-from", multiple=True, metavar="REPO",
              help="Repository of the same registry to mount blobs from (repeatable).")
@click.option("--chunk-size", type=click.IntRange(1), metavar="BYTES",
              help="Upload blobs larger than this in PATCH chunks of this size.")
@_JOBS
@_ALLOW_ND
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@_VERBOSE
def push(layout: str, ref: str, creds: str | None, authfile: str | None, tls_verify: bool,
         cert_dir: str | None, mount_from: tuple[str, ...], chunk_size: int | None, jobs: int,
         allow_nondistributable_artifacts: bool, quiet: bool, verbose: bool) -> None:
    """Push LAYOUT[:TAG] (a manifest, or an index with all its manifests) to REF."""
    from ketch.image.push import push as do_push
    from ketch.image.reference import parse_reference

    path, tag = parse_layout_arg(layout)
    reference = parse_reference(ref)
    for repo in mount_from:
        parse_reference(f"{reference.registry}/{repo}")  # validates the repository name
    desc = do_push(path, tag or DEFAULT_TAG, reference,
                   creds=_creds_for(creds, authfile, reference),
                   tls_verify=tls_verify, cert_dir=cert_dir, mount_from=mount_from,
                   chunk_size=chunk_size, jobs=jobs,
                   allow_nondistributable=allow_nondistributable_artifacts,
                   progress=_progress(quiet, verbose))
    click.echo(desc["digest"])


@cli.command()
@click.argument("src")
@click.argument("dst")
@click.option("-a", "--all", "all_platforms", is_flag=True,
              help="Copy every manifest of an index (default: one platform).")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="Platform to pick from an index (default: this host).")
@click.option("--src-creds", metavar="USER:PASS", help="Credentials for a SRC registry.")
@click.option("--dest-creds", metavar="USER:PASS", help="Credentials for a DST registry.")
@click.option("--src-tls-verify", type=click.BOOL, default=True, show_default=True,
              help="Verify the SRC registry's TLS certificate.")
@click.option("--dest-tls-verify", type=click.BOOL, default=True, show_default=True,
              help="Verify the DST registry's TLS certificate.")
@click.option("--src-cert-dir", type=click.Path(file_okay=False), metavar="DIR",
              help="certs.d-style directory for the SRC registry.")
@click.option("--dest-cert-dir", type=click.Path(file_okay=False), metavar="DIR",
              help="certs.d-style directory for the DST registry.")
@_AUTHFILE
@_JOBS
@_ALLOW_ND
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@_VERBOSE
def copy(src: str, dst: str, all_platforms: bool, platform: str | None, src_creds: str | None,
         dest_creds: str | None, src_tls_verify: bool, dest_tls_verify: bool,
         src_cert_dir: str | None, dest_cert_dir: str | None, authfile: str | None, jobs: int,
         allow_nondistributable_artifacts: bool, quiet: bool, verbose: bool) -> None:
    """Copy an image: SRC and DST are docker://REF, oci:PATH[:TAG] or oci-archive:FILE[:TAG]."""
    from ketch.image.copy import Access
    from ketch.image.copy import copy as do_copy
    from ketch.image.transports import parse_location

    if all_platforms and platform:
        raise click.UsageError("--platform and --all exclude each other")
    source, dest = parse_location(src), parse_location(dst)
    src_auth = _creds_for(src_creds, authfile, source.ref, "--src-creds") if source.ref else None
    dst_auth = _creds_for(dest_creds, authfile, dest.ref, "--dest-creds") if dest.ref else None
    desc = do_copy(source, dest, all_platforms=all_platforms, platform=_platform(platform),
                   src_access=Access(src_auth, src_tls_verify, src_cert_dir),
                   dst_access=Access(dst_auth, dest_tls_verify, dest_cert_dir),
                   jobs=jobs, allow_nondistributable=allow_nondistributable_artifacts,
                   progress=_progress(quiet, verbose))
    click.echo(desc["digest"])


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
@click.option("--raw", is_flag=True, help="Print the tagged manifest or index byte for byte.")
@click.option("--config", "config_only", is_flag=True,
              help="Print the image config byte for byte.")
@_registry_options
def inspect(layout: str, platform: str | None, raw: bool, config_only: bool, creds: str | None,
            authfile: str | None, tls_verify: bool, cert_dir: str | None) -> None:
    """Print the descriptor, manifest and config of LAYOUT[:TAG] (or docker://REF) as JSON."""
    from ketch.image.image import resolve
    from ketch.image.layout import Layout

    if raw and config_only:
        raise click.UsageError("--raw and --config exclude each other")
    if layout.startswith("docker://"):
        from ketch.image.inspect_remote import inspect_remote
        from ketch.image.reference import parse_reference

        reference = parse_reference(layout)
        result = inspect_remote(reference, platform=_platform(platform), raw=raw,
                                config_only=config_only,
                                creds=_creds_for(creds, authfile, reference),
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
    image = resolve(store, tag or DEFAULT_TAG, _platform(platform))
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


@cli.command()
@click.argument("layout")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing when the layout is valid.")
@click.option("--verify-layers", is_flag=True,
              help="Also decompress every layer and check it against the config's diff_ids.")
def validate(layout: str, quiet: bool, verify_layers: bool) -> None:
    """Check LAYOUT: files, blob digests, references, schemas of every document, one
    diff_id per layer (with --verify-layers: the diff_ids' values too)."""
    from ketch.image.errors import LayoutError
    from ketch.image.validate import validate_layout

    report = validate_layout(layout, verify_layers=verify_layers)
    for w in report.warnings:
        _warn(w)
    for p in report.problems:
        click.echo(f"{PROG}: invalid: {p}", err=True)
    if not report.valid:
        raise LayoutError(f"{layout}: {len(report.problems)} problem(s), not a valid OCI "
                          "image layout")
    if not quiet:
        layers = (f", {report.layers_verified} layers uncompressed" if verify_layers else "")
        click.echo(f"{layout}: valid OCI image layout ({report.tags} tags, {report.blobs} "
                   f"blobs, {report.documents} documents checked{layers})")


@cli.command()
@click.argument("layout")
@click.option("-n", "--dry-run", is_flag=True, help="Only list what would be removed.")
def gc(layout: str, dry_run: bool) -> None:
    """Remove blobs of LAYOUT that no tag references (waits for running writers)."""
    from ketch.image.gc import gc as do_gc

    partials: list[str] = []
    for digest in do_gc(layout, dry_run=dry_run, partials=partials):
        click.echo(digest)
    for path in partials:  # what interrupted writes left (a killed pull or repack)
        click.echo(path)


@cli.command("tag")
@click.argument("layout")
@click.argument("new_tag")
def tag_(layout: str, new_tag: str) -> None:
    """Give the image LAYOUT[:TAG] the additional tag NEW_TAG."""
    from ketch.image.tags import tag as do_tag

    path, tag = parse_layout_arg(layout)
    click.echo(do_tag(path, tag or DEFAULT_TAG, new_tag)["digest"])


@cli.command()
@click.argument("layout")
def untag(layout: str) -> None:
    """Remove the tag LAYOUT:TAG (its blobs stay until gc)."""
    from ketch.image.tags import untag as do_untag

    path, tag = parse_layout_arg(layout, default_tag=None)
    if tag is None:
        raise click.UsageError("untag needs LAYOUT:TAG")
    do_untag(path, tag)


cli.add_command(untag, "rm")


@cli.command("ls")
@click.argument("layout")
@click.option("-l", "--long", "long_", is_flag=True, help="Also print digest and media type.")
def ls(layout: str, long_: bool) -> None:
    """List the tags of LAYOUT."""
    from ketch.image.tags import layout_tags

    for name, desc in layout_tags(layout):
        click.echo(f"{name}\t{desc['digest']}\t{desc['mediaType']}" if long_ else name)


@cli.command()
@click.argument("ref")
@_registry_options
@click.option("--page-size", type=click.IntRange(1), metavar="N",
              help="Tags asked for per request (?n=); every page is followed.")
def tags(ref: str, creds: str | None, authfile: str | None, tls_verify: bool,
         cert_dir: str | None, page_size: int | None) -> None:
    """List the tags of the registry repository REF."""
    from ketch.image.reference import parse_reference
    from ketch.image.tags import registry_tags

    reference = parse_reference(ref)
    for name in registry_tags(reference, creds=_creds_for(creds, authfile, reference),
                              tls_verify=tls_verify, cert_dir=cert_dir, page_size=page_size):
        click.echo(name)


@cli.command()
@click.argument("registry")
@click.option("-u", "--username", help="User name (asked for when missing on a terminal).")
@click.option("-p", "--password", help="Password (prefer --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@_AUTHFILE
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
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise AuthError("--password-stdin: no password on standard input")
        source = "--password-stdin"
    elif password is None:
        password = click.prompt("Password", hide_input=True)
        source = "the password typed in"
    assert username is not None and password is not None
    where = do_login(registry, username, password, authfile=authfile, tls_verify=tls_verify,
                     cert_dir=cert_dir, source=source)
    click.echo(f"Login Succeeded (credentials saved in {where})")


@cli.command()
@click.argument("registry", required=False)
@click.option("-a", "--all", "all_", is_flag=True, help="Forget every registry's credentials.")
@_AUTHFILE
def logout(registry: str | None, all_: bool, authfile: str | None) -> None:
    """Forget the saved credentials of REGISTRY."""
    from ketch.image.errors import AuthError
    from ketch.image.login import logout as do_logout

    if (registry is None) == (not all_):
        raise click.UsageError("give REGISTRY or --all")
    if not do_logout(None if all_ else registry, authfile=authfile):
        raise AuthError(f"not logged in to {registry}")
    click.echo(f"Removed login credentials for {'every registry' if all_ else registry}")


def _register_extra_commands() -> None:
    from ketch.image.cli_layers import repack

    cli.add_command(repack)


_register_extra_commands()
_gc.enable()


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
    _fill_closed_stdio()
    signal.signal(signal.SIGTERM, _terminated)
    try:
        code = cli.main(args=argv, prog_name=PROG, standalone_mode=False)
    except ImageError as e:
        _say(f"{PROG}: error: {' '.join(str(e).split())}")
        _exit(1)
    except click.exceptions.Abort:
        _say(f"{PROG}: aborted")
        _exit(130)
    except click.ClickException as e:
        with contextlib.suppress(OSError):
            e.show()
        _exit(e.exit_code)
    except OSError as e:
        _say(f"{PROG}: error: {_os_error_text(e)}")
        _exit(1)
    except KeyboardInterrupt:
        _say(f"{PROG}: interrupted")
        _exit(130)
    except _Terminated:
        _say(f"{PROG}: terminated")
        _exit(143)
    _exit(code if isinstance(code, int) else 0)


class _Terminated(BaseException):
    """SIGTERM arrived: unwinds like Ctrl-C, so half-written bundles and blobs are
    removed by the same cleanup."""


def _terminated(_signum: int, _frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends us at once
    raise _Terminated()


def _fill_closed_stdio() -> None:
    """A caller may start us with stdin, stdout or stderr closed (``>&-``): put
    /dev/null there, so neither Python's ``sys.stdout is None`` nor a file of ours
    landing on fd 1 or 2 (and then written by a message) can hurt."""
    import os

    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free fd: this one
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    if sys.stdin is None:
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 (lives as long as we do)
    if sys.stdout is None:
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    if sys.stderr is None:
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115


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

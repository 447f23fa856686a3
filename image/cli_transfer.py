"""``ketch-image pull``, ``push`` and ``copy``: images between registries and layouts
(distribution-spec "Pulling manifests/blobs", "Pushing blobs/manifests").

Loaded by the group in :mod:`ketch.image.cli` only when one of these commands runs
(or for ``--help``); the transfer logic lives in :mod:`ketch.image.pull`,
:mod:`ketch.image.push` and :mod:`ketch.image.copy`.
"""

from __future__ import annotations

import click

from ketch.image.cli_common import (
    ALLOW_ND,
    AUTHFILE,
    JOBS,
    VERBOSE,
    creds_for,
    parse_platform_arg,
    progress_sink,
    registry_options,
)
from ketch.image.reference import DEFAULT_TAG, parse_layout_arg
from ketch.image.startup import load_http_stack


@click.command()
@click.argument("ref")
@click.argument("layout")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="Platform to pick from an index (default: this host).")
@click.option("--all-platforms", is_flag=True, help="Pull every manifest of an index.")
@registry_options
@JOBS
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@VERBOSE
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
    load_http_stack()
    result = do_pull(reference, path, tag, platform=parse_platform_arg(platform),
                     creds=creds_for(creds, authfile, reference),
                     tls_verify=tls_verify, cert_dir=cert_dir, all_platforms=all_platforms,
                     jobs=jobs, progress=progress_sink(quiet, verbose))
    click.echo(result.descriptor["digest"])


@click.command()
@click.argument("layout")
@click.argument("ref")
@registry_options
@click.option("--mount-from", multiple=True, metavar="REPO",
              help="Repository of the same registry to mount blobs from (repeatable).")
@click.option("--chunk-size", type=click.IntRange(1), metavar="BYTES",
              help="Upload blobs larger than this in PATCH chunks of this size.")
@JOBS
@ALLOW_ND
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@VERBOSE
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
    load_http_stack()
    desc = do_push(path, tag or DEFAULT_TAG, reference,
                   creds=creds_for(creds, authfile, reference),
                   tls_verify=tls_verify, cert_dir=cert_dir, mount_from=mount_from,
                   chunk_size=chunk_size, jobs=jobs,
                   allow_nondistributable=allow_nondistributable_artifacts,
                   progress=progress_sink(quiet, verbose))
    click.echo(desc["digest"])


@click.command()
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
@AUTHFILE
@JOBS
@ALLOW_ND
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@VERBOSE
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
    if source.ref or dest.ref:
        load_http_stack()
    src_auth = creds_for(src_creds, authfile, source.ref, "--src-creds") if source.ref else None
    dst_auth = creds_for(dest_creds, authfile, dest.ref, "--dest-creds") if dest.ref else None
    desc = do_copy(source, dest, all_platforms=all_platforms, platform=parse_platform_arg(platform),
                   src_access=Access(src_auth, src_tls_verify, src_cert_dir),
                   dst_access=Access(dst_auth, dest_tls_verify, dest_cert_dir),
                   jobs=jobs, allow_nondistributable=allow_nondistributable_artifacts,
                   progress=progress_sink(quiet, verbose))
    click.echo(desc["digest"])

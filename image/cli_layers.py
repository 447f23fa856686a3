"""``ketch-image repack`` (registered on the main group in :mod:`ketch.image.cli`).

Kept apart from ``cli.py`` so layer commands and registry commands can grow
without touching each other. Errors are raised as ImageError and reported by
``cli.main``.
"""

from __future__ import annotations

import click

from ketch.image.reference import DEFAULT_TAG, parse_layout_arg


def _warn(msg: str) -> None:
    click.echo(f"ketch-image: warning: {msg}", err=True)


@click.command()
@click.argument("bundle", type=click.Path())
@click.argument("layout")
@click.option("--history.created_by", "created_by", metavar="TEXT",
              help="created_by of the new history entry (default: 'ketch-image repack').")
@click.option("--history.comment", "comment", metavar="TEXT", help="comment of the history entry.")
@click.option("--no-refresh", is_flag=True,
              help="Keep the bundle's record of its base image (the next repack diffs "
                   "against the same base again, as umoci does without --refresh-bundle).")
def repack(bundle: str, layout: str, created_by: str | None, comment: str | None,
           no_refresh: bool) -> None:
    """Add BUNDLE's rootfs changes since unpack as one new layer and tag it LAYOUT[:TAG]."""
    from ketch.image.repack import repack as do_repack

    path, tag = parse_layout_arg(layout)
    result = do_repack(bundle, path, tag or DEFAULT_TAG, created_by=created_by, comment=comment,
                       refresh=not no_refresh, warn=_warn)
    if result.layer is None:
        _warn("no changes in the rootfs: no layer added (history entry marked empty_layer)")
    click.echo(result.descriptor["digest"])

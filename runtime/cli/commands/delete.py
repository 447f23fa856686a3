"""``ketch delete [--force|-f] <container-id>``: runtime-spec ``delete``.

The library applies runc's status rules (a stopped container is destroyed, a
created one is killed first, a running one only with ``--force``; else
``cannot delete container X that is not stopped: running``). As in runc,
``delete --force`` of a container that does not exist succeeds silently.
"""

from __future__ import annotations

from ketch.runtime.cli import backend
from ketch.runtime.cli.commands.create import container_id
from ketch.runtime.errors import ContainerNotExistError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ketch.runtime.cli.app import Context


def run(ctx: Context) -> int:
    force = bool(ctx.opts["force"])
    try:
        container = backend.get().Container.load(ctx.root, container_id(ctx))
    except ContainerNotExistError:
        # An aborted create can leave <root>/<id> without state.json: remove it
        # (as runc does), then still report the container as missing unless forced.
        backend.get().remove_stale_state(ctx.root, container_id(ctx))
        if force:
            return 0
        raise
    container.delete(force=force)
    return 0

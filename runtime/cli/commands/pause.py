"""``ketch pause <container-id>``: runc's ``pause`` (freeze every process of the container)."""

from __future__ import annotations

from ketch.runtime.cli import backend
from ketch.runtime.cli.commands.create import container_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ketch.runtime.cli.app import Context


def run(ctx: Context) -> int:
    backend.get().Container.load(ctx.root, container_id(ctx)).pause()
    return 0

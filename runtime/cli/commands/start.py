"""``ketch start <container-id>``: runtime-spec ``start`` (run the user
process of a *created* container; the library refuses other states with
runc's messages, e.g. ``cannot start an already running container``)."""

from __future__ import annotations

from ketch.runtime.cli import backend
from ketch.runtime.cli.commands.create import container_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ketch.runtime.cli.app import Context


def run(ctx: Context) -> int:
    backend.get().Container.load(ctx.root, container_id(ctx)).start()
    return 0

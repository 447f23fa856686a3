"""``ketch run [options] <container-id>``: runc's ``run`` = create + start
(+ wait + delete).

Flags as ``create`` plus ``--detach/-d`` (return 0 once started), ``--keep``
(do not delete the container after it exits or when starting it failed) and
``--no-subreaper`` (accepted; the library decides about reaping). In the
foreground ketch waits for the container's process (the library forwards
signals) and exits with its status (128+N when killed by signal N), like
runc's ``os.Exit(status)``. A console socket without ``--detach`` is refused
as runc refuses it. Errors are reported as ``ketch run failed: ...``; a
failure to delete after the process exited is only logged, as runc does.
"""

from __future__ import annotations

import contextlib

from ketch.runtime.cli import backend, log
from ketch.runtime.cli.commands.create import container_id, create_options
from ketch.runtime.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ketch.runtime.cli.app import Context


def run(ctx: Context) -> int:
    cid = container_id(ctx)
    bundle, kwargs = create_options(ctx)
    detach = bool(ctx.opts["detach"])
    keep = bool(ctx.opts["keep"])
    if kwargs["console_socket"] and not detach:
        # runc's text, "runc" included: callers match these messages
        raise UsageError("cannot use console socket if runc will not detach or allocate tty")
    # In the foreground a terminal is proxied through this process (no console socket).
    container = backend.get().Container.create(ctx.root, cid, bundle, detach=detach, **kwargs)
    try:
        container.start()
        if detach:
            return 0
        status = int(container.wait_foreground())
    except BaseException:
        if not keep:
            with contextlib.suppress(Exception):
                container.delete(force=True)
        raise
    if not keep:
        try:
            container.delete(force=True)
        except Exception as e:
            from ketch.runtime.cli.app import error_message

            log.error(error_message(e))
    return status

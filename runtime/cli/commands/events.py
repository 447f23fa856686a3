"""``ketch events [--stats] [--interval D] <container-id>``: runc's ``events``.

Prints one JSON object per line, runc's ``types.Event``: ``{"type":"stats",
"id":ID,"data":STATS}`` (``ketch.runtime.cgroups.stats``) every ``--interval``
(a Go duration, default 5s) and ``{"type":"oom","id":ID}`` as soon as the
kernel reports an OOM in the container's memory cgroup. ``--stats`` prints
the stats once and exits. A stopped container is an error (runc's text);
unlike runc, which keeps logging stats errors, the stream ends (exit 0) once
the container has stopped.
"""

from __future__ import annotations

import json
import time

from ketch.runtime.cli import backend, output
from ketch.runtime.cli.commands.create import container_id
from ketch.runtime.errors import InvalidStateError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ketch.runtime.cli.app import Context

def _emit(kind: str, cid: str, data: dict | None = None) -> None:
    event: dict = {"type": kind, "id": cid}
    if data is not None:
        event["data"] = data
    output.write(json.dumps(event, separators=(",", ":")) + "\n")


def run(ctx: Context) -> int:
    cid = container_id(ctx)
    container = backend.get().Container.load(ctx.root, cid)
    interval = float(ctx.opts["interval"])  # type: ignore[arg-type]
    if interval <= 0:
        raise UsageError("duration interval must be greater than 0")
    if ctx.opts["stats"]:
        _emit("stats", cid, container.stats())
        return 0
    if container.status() == "stopped":
        raise InvalidStateError(f"container with id {cid} is not running")
    try:
        watcher = container.oom_watcher()
    except OSError:
        watcher = None  # no memory cgroup: stats only
    next_tick = time.monotonic() + interval
    try:
        while True:
            wait = max(0.0, next_tick - time.monotonic())
            if watcher is not None:
                count = watcher.wait(wait)
                if count > 0:
                    _emit("oom", cid)
                elif count < 0:  # the cgroup is gone
                    watcher.close()
                    watcher = None
            else:
                time.sleep(wait)
            if time.monotonic() >= next_tick:
                try:
                    stats = container.stats()
                except InvalidStateError:
                    return 0
                _emit("stats", cid, stats)
                next_tick += interval
    finally:
        if watcher is not None:
            watcher.close()

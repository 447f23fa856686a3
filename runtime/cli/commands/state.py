"""``ketch state <container-id>``: runtime-spec ``state``.

Prints the state the way runc does: ``json.MarshalIndent(state, "", "  ")``
of runc's ``containerState`` (field order ociVersion, id, pid, status,
bundle, rootfs, created, owner, annotations; annotations omitted when empty
and, being a Go map, sorted by key; ``created`` in RFC 3339 with nanoseconds
and trailing zeros dropped), with no newline after the closing brace.
"""

from __future__ import annotations

from ketch.runtime.cli import backend, gofmt, output
from ketch.runtime.cli.commands.create import container_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ketch.runtime.cli.app import Context

FIELDS = ("ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "annotations", "owner")


def ordered_state(state: dict) -> dict:
    """``state`` in runc's field order with runc's omissions and time format."""
    out: dict = {}
    for key in FIELDS:
        if key == "annotations":
            ann = state.get("annotations")
            if ann:
                out["annotations"] = {k: ann[k] for k in sorted(ann)}
        elif key == "created":
            out["created"] = gofmt.rfc3339nano(str(state.get("created", "")))
        else:
            out[key] = state.get(key, 0 if key == "pid" else "")
    for key, value in state.items():
        if key not in out and key not in FIELDS:
            out[key] = value
    return out


def run(ctx: Context) -> int:
    container = backend.get().Container.load(ctx.root, container_id(ctx))
    output.write(gofmt.dumps(ordered_state(container.state()), "  "))
    return 0

"""``ketch list [--format|-f table|json] [--quiet|-q]``: runc's ``list``.

Containers under ``--root`` sorted by ID (runc reads the directory in name
order). ``--quiet`` prints the IDs only (and wins over ``--format``). The
table is Go's ``tabwriter.NewWriter(out, 12, 1, 3, ' ', 0)`` over
``ID PID STATUS BUNDLE CREATED OWNER``: each column as wide as its widest
cell plus 3, at least 12; the last column unpadded. ``--format json`` is one
line, ``json.NewEncoder`` of the same records (``null`` when there are
none). CREATED is ``time.RFC3339Nano`` of the stored creation time (runc
stores it in UTC, so it reads ``...Z``). OWNER is the user owning the
container's state directory (``#UID`` when the uid has no name), as runc
computes it for ``list`` only. Any other format: ``invalid format option``.
"""

from __future__ import annotations

import os

from ketch.runtime.cli import backend, gofmt, output
from ketch.runtime.cli.commands.state import ordered_state
from ketch.runtime.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ketch.runtime.cli.app import Context


def owner_of(root: str, container_id: str) -> str:
    """runc: the name of the uid owning ``<root>/<id>``, or ``#uid``."""
    try:
        uid = os.stat(os.path.join(root, container_id)).st_uid
    except OSError:
        return ""
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"#{uid}"


def records(root: str) -> list[dict]:
    out = []
    for container in backend.get().list_containers(root):
        st = ordered_state(container.state())
        if not st.get("owner"):
            st["owner"] = owner_of(root, str(st.get("id", "")))
        out.append(st)
    out.sort(key=lambda s: str(s.get("id", "")))
    return out


def table(rows: list[list[str]], minwidth: int = 12, padding: int = 3) -> str:
    """Go's tabwriter for rows of cells: every cell but a row's last is padded
    to its column's width (widest cell + padding, at least minwidth)."""
    ncols = max((len(r) for r in rows), default=0)
    widths = [max([minwidth] + [len(r[c]) + padding for r in rows if c < len(r) - 1])
              for c in range(max(ncols - 1, 0))]
    return "".join("".join(cell.ljust(widths[c]) if c < len(r) - 1 else cell
                           for c, cell in enumerate(r)) + "\n" for r in rows)


def run(ctx: Context) -> int:
    items = records(ctx.root)
    if ctx.opts["quiet"]:
        output.write("".join(f"{s['id']}\n" for s in items))
        return 0
    fmt = ctx.opts["format"]
    if fmt == "table":
        rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
        rows += [[str(s["id"]), str(s["pid"]), str(s["status"]), str(s["bundle"]),
                  str(s["created"]), str(s["owner"])] for s in items]
        output.write(table(rows))
    elif fmt == "json":
        output.write(gofmt.dumps(items or None) + "\n")
    else:
        raise UsageError("invalid format option")
    return 0

"""``ketch ps [--format table|json] <container-id> [ps options]``: runc's ``ps``.

The processes are those of the container's cgroup. ``json`` prints their host
pids as a JSON array; ``table`` runs the host's ``ps`` (``-ef`` unless other
options follow the ID) and keeps the header and the lines whose PID column is
one of them.
"""

from __future__ import annotations

import json

from ketch.runtime.cli import backend
from ketch.runtime.cli.commands.create import container_id
from ketch.runtime.errors import KetchError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ketch.runtime.cli.app import Context


def run(ctx: Context) -> int:
    from ketch.runtime.cli import output

    container = backend.get().Container.load(ctx.root, container_id(ctx))
    pids = container.pids()
    fmt = str(ctx.opts["format"])
    if fmt == "json":
        output.write(json.dumps(pids, separators=(",", ":")) + "\n")
        return 0
    if fmt != "table":
        raise UsageError("invalid format option")
    import subprocess

    ps_args = list(ctx.args[1:]) or ["-ef"]
    try:
        result = subprocess.run(["ps", *ps_args], capture_output=True, check=False)
    except OSError as e:
        raise KetchError(f"exec: \"ps\": {e.strerror}") from None
    if result.returncode != 0:
        raise KetchError(f"{result.stderr.decode(errors='replace').strip()}: exit status "
                         f"{result.returncode}")
    lines = result.stdout.decode(errors="replace").splitlines()
    if not lines:
        return 0
    header = lines[0].split()
    if "PID" not in header:
        raise KetchError("couldn't find PID field in ps output")
    column = header.index("PID")
    wanted = {str(p) for p in pids}
    kept = [lines[0]] + [line for line in lines[1:]
                         if len(line.split()) > column and line.split()[column] in wanted]
    output.write("\n".join(kept) + "\n")
    return 0

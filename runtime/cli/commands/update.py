"""``ketch update [options] <container-id>``: runc's ``update``.

Changes the resource limits of a running container (runtime-spec
config-linux.md "Control groups" values, applied by
``ketch.runtime.cgroups.resources.update_resources``). ``--resources/-r
FILE`` (``-`` for stdin) gives a LinuxResources JSON object and then every
other option is ignored, as in runc; otherwise each flag sets one value:
``--memory``, ``--memory-swap`` (memory+swap, ``-1`` unlimited),
``--memory-reservation`` take sizes with binary suffixes like Docker's
``units.RAMInBytes`` (``64m``, ``1.5g``); ``--cpu-share``, ``--cpu-period``,
``--cpu-rt-period`` unsigned, ``--cpu-quota``, ``--cpu-rt-runtime`` signed
integers; ``--cpuset-cpus``/``--cpuset-mems`` lists; ``--pids-limit`` and
``--blkio-weight`` (0 leaves them alone). Errors use runc's texts
(``invalid value for memory: invalid size: '1x'``).
"""

from __future__ import annotations

import json
import re
import sys

from ketch.runtime.cli import backend
from ketch.runtime.cli.commands.create import container_id
from ketch.runtime.errors import KetchError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ketch.runtime.cli.app import Context

_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_UINT64_MAX = (1 << 64) - 1
_INT64_MAX = (1 << 63) - 1


def ram_in_bytes(text: str) -> int:
    """Docker's ``units.RAMInBytes``: ``512``, ``64m``, ``1.5GiB`` (binary units).
    Raises ``ValueError("invalid size: 'x'")``."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"invalid size: '{text}'")
    try:
        number = float(m.group(1))
    except ValueError:
        raise ValueError(f"invalid size: '{text}'") from None
    return int(number * _UNITS.get((m.group(2) or "").lower(), 1))


def _parse_int(opt: str, text: str, unsigned: bool) -> int:
    func = "ParseUint" if unsigned else "ParseInt"
    body = text[1:] if text[:1] in ("+", "-") and not unsigned else text
    if not body or not body.isascii() or not body.isdigit():
        raise UsageError(f'invalid value for {opt}: strconv.{func}: parsing "{text}": '
                         "invalid syntax")
    value = int(text)
    if (unsigned and value > _UINT64_MAX) or (not unsigned and not
                                               -_INT64_MAX - 1 <= value <= _INT64_MAX):
        raise UsageError(f'invalid value for {opt}: strconv.{func}: parsing "{text}": '
                         "value out of range")
    return value


def resources_from_flags(ctx: Context) -> dict:
    """The LinuxResources object the per-field flags ask for (only the given values)."""
    o = ctx.opts
    cpu: dict = {}
    memory: dict = {}
    for opt, key, unsigned in (("cpu-period", "period", True), ("cpu-rt-period", "realtimePeriod", True),
                               ("cpu-share", "shares", True), ("cpu-quota", "quota", False),
                               ("cpu-rt-runtime", "realtimeRuntime", False)):
        if o[opt]:
            cpu[key] = _parse_int(opt, str(o[opt]), unsigned)
    for opt, key in (("cpuset-cpus", "cpus"), ("cpuset-mems", "mems")):
        if o[opt]:
            cpu[key] = str(o[opt])
    for opt, key in (("memory", "limit"), ("memory-swap", "swap"),
                     ("memory-reservation", "reservation")):
        text = str(o[opt])
        if text:
            try:
                memory[key] = -1 if text == "-1" else ram_in_bytes(text)
            except ValueError as e:
                raise UsageError(f"invalid value for {opt}: {e}") from None
    if memory.get("limit") == -1 and "swap" not in memory:
        memory["swap"] = -1  # "unlimited" memory cannot keep a finite memory+swap
    resources: dict = {}
    if memory:
        resources["memory"] = memory
    if cpu:
        resources["cpu"] = cpu
    if o["pids-limit"]:
        resources["pids"] = {"limit": int(o["pids-limit"])}  # type: ignore[call-overload]
    if o["blkio-weight"]:
        resources["blockIO"] = {"weight": int(o["blkio-weight"])}  # type: ignore[call-overload]
    return resources


def _read_resources(source: str) -> dict:
    try:
        if source == "-":
            data = sys.stdin.read()
        else:
            with open(source) as f:
                data = f.read()
    except OSError as e:
        raise KetchError(f"open {source}: {(e.strerror or str(e)).lower()}") from None
    try:
        resources = json.loads(data)
    except ValueError as e:
        raise UsageError(f"invalid LinuxResources JSON in {source}: {e}") from None
    if not isinstance(resources, dict):
        raise UsageError(f"invalid LinuxResources JSON in {source}: not an object")
    return resources


def run(ctx: Context) -> int:
    container = backend.get().Container.load(ctx.root, container_id(ctx))
    if ctx.opts["resources"]:
        resources = _read_resources(str(ctx.opts["resources"]))
    else:
        if ctx.opts["l3-cache-schema"] or ctx.opts["mem-bw-schema"]:
            raise KetchError("Intel RDT is not supported by ketch")
        resources = resources_from_flags(ctx)
    container.update(resources)
    return 0

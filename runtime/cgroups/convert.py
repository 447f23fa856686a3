"""Value conversions between cgroup v1 and cgroup v2 (runc's formulas).

runtime-spec config-linux.md "Control groups" expresses resources in v1
terms (``cpu.shares``, ``blockIO.weight``, ``memory.swap`` = memory+swap);
a cgroup v2 host needs ``cpu.weight``, ``io.weight`` and ``memory.swap.max``
(swap alone). The mappings are those runc and crun document.
"""

from __future__ import annotations

import math

from ketch.runtime.errors import KetchError


class ConversionError(KetchError):
    """A v1 value has no v2 equivalent (e.g. a swap limit without a memory limit)."""


def cpu_weight(shares: int) -> int:
    """cgroup v2 ``cpu.weight`` (1..10000) for v1 ``cpu.shares`` (2..262144): the
    log-quadratic mapping runc and crun use (2 -> 1, 1024 -> 100, 262144 -> 10000).
    ``0`` (unset) stays 0."""
    if shares <= 0:
        return 0
    log = math.log2(shares)
    return min(10000, max(1, math.ceil(10 ** ((log * log + 125 * log) / 612.0 - 7.0 / 34.0))))


def io_weight(blkio_weight: int) -> int:
    """cgroup v2 ``io.weight`` (1..10000) for v1 ``blkio.weight`` (10..1000),
    linear like runc: 10 -> 1, 1000 -> 10000. ``0`` (unset) stays 0."""
    if blkio_weight <= 0:
        return 0
    return 1 + (blkio_weight - 10) * 9999 // 990


def swap_v2(swap: int, limit: int) -> int:
    """cgroup v2 ``memory.swap.max`` (swap alone) for the spec's ``memory.swap``
    (memory+swap, v1 ``memory.memsw.limit_in_bytes``) and ``memory.limit``.

    Returns -1 for "max" and 0 for "leave unset" (both inputs in bytes, 0 =
    unset, -1 = unlimited). Raises ``ConversionError`` as runc does for a swap
    limit without a memory limit or below it.
    """
    if limit == -1 and swap == 0:
        return -1  # v1 compatibility: unlimited memory with unset swap means both unlimited
    if swap in (-1, 0):
        return swap
    if limit == 0:
        raise ConversionError("unable to set swap limit without memory limit")
    if limit < 0:
        raise ConversionError(f"invalid memory value: {limit}")
    if swap < limit:
        raise ConversionError("memory+swap limit should be >= memory limit")
    return swap - limit


def max_or_number(value: int) -> str:
    """A v2 limit file's text: ``max`` for a negative value, else the number."""
    return "max" if value < 0 else str(value)

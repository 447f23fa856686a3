"""The container's resource statistics in runc's ``events --stats`` shape, and
OOM notifications.

runc's ``types.Stats`` (runc 1.1: cpu, cpuset, memory, pids, blkio, hugetlb,
intel_rdt, network_interfaces), filled by each hierarchy's driver from the
kernel's files (cgroup-v1 ``cpuacct``/``memory``/..., cgroup-v2 ``cpu.stat``,
``memory.current``, ...). Keys runc leaves out when zero (Go ``omitempty``)
are left out here too, so that both runtimes print the same key set.

``OomWatcher``: v1 ``memory.oom_control`` notifications through an eventfd
registered in ``cgroup.event_control``; v2 ``memory.events`` (``oom_kill``)
woken by poll(2)'s POLLPRI.
"""

from __future__ import annotations

import contextlib
import os
import select

from ketch.runtime.cgroups.fs import CgroupManager
from ketch.runtime.cgroups.resources import drivers
from ketch.runtime.cgroups.v1 import V1Driver
from ketch.runtime.cgroups.v2 import V2Driver


def empty_stats() -> dict:
    """runc's Stats with nothing measured: the keys Go always prints."""
    entry = {"limit": 0, "failcnt": 0}
    return {
        "cpu": {"usage": {"kernel": 0, "user": 0}, "throttling": {}},
        "cpuset": {"cpu_exclusive": 0, "mem_hardwall": 0, "mem_exclusive": 0,
                   "memory_migrate": 0, "memory_spread_page": 0, "memory_spread_slab": 0,
                   "memory_pressure": 0, "sched_load_balance": 0, "sched_relax_domain_level": 0},
        "memory": {"usage": dict(entry), "swap": dict(entry), "kernel": dict(entry),
                   "kernelTCP": dict(entry)},
        "pids": {},
        "blkio": {},
        "hugetlb": {},
        "intel_rdt": {},
        "network_interfaces": None,
    }


def collect(cgroup: CgroupManager) -> dict:
    """runc's Stats object for ``cgroup`` (v2 first, so that a v1 hierarchy of
    the same controller on a hybrid host has the last word)."""
    out = empty_stats()
    for d in sorted(drivers(cgroup), key=lambda d: -d.version):
        d.stats(out)
    # Go prints struct fields in declaration order
    out["cpu"]["usage"] = _ordered(out["cpu"]["usage"], _USAGE_ORDER)
    out["cpuset"] = _ordered(out["cpuset"], _CPUSET_ORDER)
    out["memory"] = _ordered(out["memory"], _MEMORY_ORDER)
    return out


_USAGE_ORDER = ("total", "percpu", "percpu_kernel", "percpu_user", "kernel", "user")
_CPUSET_ORDER = ("cpus", "cpu_exclusive", "mems", "mem_hardwall", "mem_exclusive",
                 "memory_migrate", "memory_spread_page", "memory_spread_slab", "memory_pressure",
                 "sched_load_balance", "sched_relax_domain_level")
_MEMORY_ORDER = ("cache", "usage", "swap", "kernel", "kernelTCP", "raw")


def _ordered(d: dict, order: tuple[str, ...]) -> dict:
    return {k: d[k] for k in order if k in d} | {k: v for k, v in d.items() if k not in order}


class OomWatcher:
    """Counts the OOM events of the container's memory cgroup; ``fileno`` is
    readable (select/poll: POLLIN on v1, POLLPRI on v2) when one may have happened.

    Raises ``OSError`` when the cgroup has no memory controller.
    """

    version = 0  # of the hierarchy watched

    def __init__(self, cgroup: CgroupManager) -> None:
        self._fd = -1
        self._v2_seen = 0
        self._path = ""
        for d in drivers(cgroup):
            if isinstance(d, V1Driver) and "memory" in d.controllers():
                self._path = d.path
                self._fd = os.eventfd(0, os.EFD_CLOEXEC)
                control = os.open(d.file("memory.oom_control"), os.O_RDONLY | os.O_CLOEXEC)
                try:
                    with open(d.file("cgroup.event_control"), "w") as f:
                        f.write(f"{self._fd} {control}")
                finally:
                    os.close(control)
                self.version = 1
                return
            if isinstance(d, V2Driver) and d.exists("memory.events"):
                self._path = d.path
                self._fd = os.open(d.file("memory.events"), os.O_RDONLY | os.O_CLOEXEC)
                self._v2_seen = self._oom_kills()
                self.version = 2
                return
        raise OSError("no memory cgroup to watch for OOM events")

    def fileno(self) -> int:
        return self._fd

    def _oom_kills(self) -> int:
        data = os.pread(self._fd, 4096, 0).decode()
        for line in data.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def wait(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds; return how many OOM events happened
        (-1 once the cgroup is gone)."""
        poller = select.poll()
        poller.register(self._fd, select.POLLIN if self.version == 1 else select.POLLPRI)
        ready = poller.poll(max(0, int(timeout * 1000)))
        if self.version == 1:
            if not ready:
                return 0
            count = int.from_bytes(os.read(self._fd, 8), "little")
            # the eventfd is also signalled when the cgroup is removed
            return count if os.path.exists(os.path.join(self._path, "cgroup.event_control")) else -1
        if not os.path.isdir(self._path):
            return -1
        # read on every wake-up or timeout: a missed POLLPRI costs one interval, not the event
        kills = self._oom_kills()
        new, self._v2_seen = kills - self._v2_seen, kills
        return max(new, 0)

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1

"""cgroup v2 driver: the unified hierarchy (Linux Documentation/admin-guide/cgroup-v2).

runtime-spec config-linux.md "Control groups" values are v1-shaped; this
driver converts them as runc's ``libcontainer/cgroups/fs2`` does
(``ketch.runtime.cgroups.convert``): shares -> ``cpu.weight``, blkio weight ->
``io.weight`` (or ``io.bfq.weight`` unchanged when BFQ is there), memory+swap
-> ``memory.swap.max``, throttles -> ``io.max``; ``unified`` key/value pairs
are written as given. A controller is enabled in ``cgroup.subtree_control``
of every ancestor only when the config asks for it. Device rules need an eBPF
program on v2, which this driver does not build yet: it warns instead.
"""

from __future__ import annotations

import contextlib
import errno
import os

from ketch.runtime.cgroups.convert import (
    ConversionError,
    cpu_weight,
    io_weight,
    max_or_number,
    swap_v2,
)
from ketch.runtime.cgroups.driver import Driver, ResourceError, Warn, hugetlb_sizes, write_file
from ketch.runtime.cgroups.v1 import cpuset_stats, device_rules

_UINT64_MAX = (1 << 64) - 1
# a file prefix that names no controller: core files every v2 cgroup has
_CORE_PREFIXES = ("cgroup",)


class V2Driver(Driver):
    """The container's directory in the unified hierarchy mounted at ``mount_point``."""

    version = 2

    def controllers(self) -> frozenset[str]:
        text = self.read("cgroup.controllers")
        if text is not None:
            return frozenset(text.split())
        # a tree without cgroup.controllers (unit tests): the files tell
        with contextlib.suppress(OSError):
            return frozenset(n.split(".", 1)[0] for n in os.listdir(self.path)
                             if "." in n and not n.startswith(_CORE_PREFIXES))
        return frozenset()

    def _root_controllers(self) -> frozenset[str] | None:
        with contextlib.suppress(OSError), open(os.path.join(self.mount_point,
                                                             "cgroup.controllers")) as f:
            return frozenset(f.read().split())
        return None

    def available(self, controller: str) -> bool:
        if controller in self.controllers():
            return True
        root = self._root_controllers()
        return root is not None and controller in root

    def enable(self, controller: str) -> None:
        """Write ``+controller`` to ``cgroup.subtree_control`` from the hierarchy's
        root down to the container's parent. Raises ``ResourceError``."""
        if controller in self.controllers():
            return
        rel = os.path.relpath(os.path.dirname(self.path), self.mount_point)
        parts = [] if rel == "." else rel.split(os.sep)
        current = self.mount_point
        for part in [None, *parts]:
            if part is not None:
                current = os.path.join(current, part)
            control = os.path.join(current, "cgroup.subtree_control")
            with open(control) as f:
                if controller in f.read().split():
                    continue
            try:
                with open(control, "w") as f:
                    f.write("+" + controller)
            except OSError as e:
                raise ResourceError(f"cannot enable the {controller} controller in {control}: "
                                    f"{e.strerror}") from e

    # -- memory -----------------------------------------------------------------

    def set_memory(self, memory: dict, warn: Warn, update: bool) -> None:
        limit = memory.get("limit") or 0
        swap = memory.get("swap") or 0
        if update and memory.get("checkBeforeUpdate") and limit > 0:
            usage = self.read_int("memory.current")
            if usage is not None and limit < usage:
                raise ResourceError(f"linux.resources.memory.limit: rejecting memory limit "
                                    f"{limit} below the current usage {usage}")
        try:
            swap_only = swap_v2(swap, limit)
        except ConversionError as e:
            raise ResourceError(f"linux.resources.memory.swap: {e}") from None
        text = None
        if swap_only == -1:
            text = "max"
        elif swap_only > 0 or (swap_only == 0 and swap > 0):
            text = str(swap_only)  # memory == memory+swap: no swap at all
        if text is not None:
            if self.exists("memory.swap.max"):
                self.write("memory.swap.max", text, "memory.swap")
            elif text not in ("max", "0"):  # without swap accounting only "no limit" fits
                raise ResourceError("linux.resources.memory.swap: swap accounting is not "
                                    f"enabled (no {self.file('memory.swap.max')})")
        if limit:
            self.write("memory.max", max_or_number(limit), "memory.limit")
        if memory.get("reservation"):
            self.write("memory.low", max_or_number(memory["reservation"]), "memory.reservation")
        for key in ("swappiness", "disableOOMKiller", "kernel", "kernelTCP", "useHierarchy"):
            if memory.get(key) not in (None, False):
                warn(f"linux.resources.memory.{key} has no cgroup v2 equivalent and is ignored")

    # -- cpu --------------------------------------------------------------------

    def set_cpu(self, cpu: dict, warn: Warn) -> None:
        if cpu.get("realtimeRuntime") or cpu.get("realtimePeriod"):
            raise ResourceError("linux.resources.cpu.realtimeRuntime: realtime scheduling is "
                                "not supported on cgroup v2")
        if cpu.get("shares"):
            self.write("cpu.weight", str(cpu_weight(cpu["shares"])), "cpu.shares")
        if cpu.get("quota") or cpu.get("period"):
            quota = cpu.get("quota") or 0
            text = str(quota) if quota > 0 else "max"
            if cpu.get("period"):
                text += f" {cpu['period']}"
            self.write("cpu.max", text, "cpu.quota")
        if cpu.get("burst") is not None:
            self.write("cpu.max.burst", str(cpu["burst"]), "cpu.burst")
        if cpu.get("idle") is not None:
            self.write("cpu.idle", str(cpu["idle"]), "cpu.idle")

    def set_cpuset(self, cpu: dict) -> None:
        for key in ("cpus", "mems"):
            if cpu.get(key):
                self.write(f"cpuset.{key}", cpu[key], f"cpu.{key}")

    # -- io ---------------------------------------------------------------------

    def set_block_io(self, block_io: dict) -> None:
        bfq = self.exists("io.bfq.weight")
        if block_io.get("weight"):
            if bfq:  # BFQ takes the v1 range as is
                self.write("io.bfq.weight", str(block_io["weight"]), "blockIO.weight")
            else:
                self.write("io.weight", str(io_weight(block_io["weight"])), "blockIO.weight")
        for dev in block_io.get("weightDevice") or []:
            if dev.get("weight"):
                if not bfq:
                    raise ResourceError("linux.resources.blockIO.weightDevice: per-device "
                                        "weights need the BFQ I/O scheduler (no io.bfq.weight)")
                self.write("io.bfq.weight", f"{dev['major']}:{dev['minor']} {dev['weight']}",
                           "blockIO.weightDevice")
        if block_io.get("leafWeight"):
            raise ResourceError("linux.resources.blockIO.leafWeight: not supported on cgroup v2")
        for key, name in (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                          ("throttleReadIOPSDevice", "riops"),
                          ("throttleWriteIOPSDevice", "wiops")):
            for dev in block_io.get(key) or []:
                self.write("io.max", f"{dev['major']}:{dev['minor']} {name}={dev['rate']}",
                           f"blockIO.{key}")

    # -- hugetlb, network, devices, unified ---------------------------------------

    def set_hugetlb(self, limits: list[dict]) -> None:
        for entry in limits:
            size = entry["pageSize"]
            if not self.exists(f"hugetlb.{size}.max"):
                raise ResourceError(f"linux.resources.hugepageLimits: page size {size} is not "
                                    f"supported by this host (no {self.file(f'hugetlb.{size}.max')})")
            self.write(f"hugetlb.{size}.max", str(entry["limit"]), f"hugepageLimits.{size}")
            if self.exists(f"hugetlb.{size}.rsvd.max"):
                self.write(f"hugetlb.{size}.rsvd.max", str(entry["limit"]),
                           f"hugepageLimits.{size}")

    def set_network(self, network: dict, controller: str) -> None:
        raise ResourceError("linux.resources.network: net_cls/net_prio do not exist on cgroup v2")

    def set_devices(self, rules: list[dict], devices: list[dict], warn: Warn) -> None:
        """Attach the eBPF device filter for ``device_rules`` to the cgroup."""
        from ketch.runtime.cgroups import devices_bpf

        try:
            devices_bpf.attach(self.path, device_rules(rules, devices))
        except OSError as e:
            raise ResourceError(f"linux.resources.devices: cannot attach the eBPF device "
                                f"filter to {self.path}: {e.strerror}") from e

    def set_unified(self, unified: dict[str, str]) -> None:
        """Write each ``unified`` file as given (runtime-spec: key = file name)."""
        for key, value in sorted(unified.items()):
            if "/" in key or "." not in key or key.startswith("."):
                raise ResourceError(f"linux.resources.unified: invalid key {key!r}")
            controller = key.split(".", 1)[0]
            if controller != "cgroup" and controller in (self._root_controllers() or ()):
                self.enable(controller)
            try:
                write_file(self.file(key), value)
            except OSError as e:
                if e.errno in (errno.ENOENT, errno.EACCES) and controller != "cgroup" \
                        and controller not in self.controllers():
                    raise ResourceError(f"linux.resources.unified.{key}: the {controller} "
                                        "controller is not available") from e
                raise ResourceError(f"linux.resources.unified.{key}: cannot write {value!r} to "
                                    f"{self.file(key)}: {e.strerror}") from e

    # -- statistics -----------------------------------------------------------------

    def stats(self, out: dict) -> None:
        ctrls = self.controllers()
        st = self.read_keyed("cpu.stat")
        if st:  # core file: present in every v2 cgroup
            usage = out["cpu"]["usage"]
            if st.get("usage_usec"):
                usage["total"] = st["usage_usec"] * 1000
            usage["kernel"] = st.get("system_usec", 0) * 1000
            usage["user"] = st.get("user_usec", 0) * 1000
        if "cpu" in ctrls:
            throttling = {"periods": st.get("nr_periods", 0),
                          "throttledPeriods": st.get("nr_throttled", 0),
                          "throttledTime": st.get("throttled_usec", 0) * 1000}
            out["cpu"]["throttling"] = {k: v for k, v in throttling.items() if v}
        if "cpuset" in ctrls:
            cpuset_stats(self, out["cpuset"])
        if "memory" in ctrls:
            self._memory_stats(out["memory"])
        if "pids" in ctrls:
            pids = {"current": self.read_int("pids.current") or 0,
                    "limit": self.read_int("pids.max") or 0}
            out["pids"] = {k: v for k, v in pids.items() if v}
        if "io" in ctrls:
            self._io_stats(out["blkio"])
        if "hugetlb" in ctrls:
            for size in hugetlb_sizes():
                entry = {"usage": self.read_int(f"hugetlb.{size}.current") or 0}
                entry = {k: v for k, v in entry.items() if v}
                entry["failcnt"] = self.read_keyed(f"hugetlb.{size}.events").get("max", 0)
                out["hugetlb"][size] = entry

    def _memory_stats(self, memory: dict) -> None:
        raw = self.read_keyed("memory.stat")
        if raw.get("file"):
            memory["cache"] = raw["file"]
        for key, prefix in (("usage", "memory"), ("swap", "memory.swap")):
            limit = self.read_int(f"{prefix}.max")
            entry = {"limit": _UINT64_MAX if limit is None else limit,
                     "usage": self.read_int(f"{prefix}.current") or 0,
                     "max": self.read_int(f"{prefix}.peak") or 0,
                     "failcnt": self.read_keyed(f"{prefix}.events").get("max", 0)}
            memory[key] = {k: v for k, v in entry.items() if v or k in ("limit", "failcnt")}
        if raw:
            memory["raw"] = raw

    def _io_stats(self, blkio: dict) -> None:
        bytes_, ios = [], []
        for line in (self.read("io.stat") or "").splitlines():
            fields = line.split()
            if not fields:
                continue
            major, _, minor = fields[0].partition(":")
            values = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
            for entries, keys in ((bytes_, ("rbytes", "wbytes")), (ios, ("rios", "wios"))):
                for key, op in zip(keys, ("Read", "Write"), strict=True):
                    with contextlib.suppress(KeyError, ValueError):
                        entry = {"major": int(major), "minor": int(minor), "op": op,
                                 "value": int(values[key])}
                        entries.append({k: v for k, v in entry.items() if v not in (0, "")})
        if bytes_:
            blkio["ioServiceBytesRecursive"] = bytes_
        if ios:
            blkio["ioServicedRecursive"] = ios

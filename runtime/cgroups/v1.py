"""cgroup v1 driver: one hierarchy per controller (set), runc's file names.

Linux Documentation/admin-guide/cgroup-v1 (memory, cpu/cpuacct, cpusets,
blkio, hugetlb, net_cls, net_prio, devices, rdma) for runtime-spec
config-linux.md "Control groups"; write order and accepted values follow
runc's ``libcontainer/cgroups/fs`` (runc 1.1): memory and memsw limits in the
order the kernel accepts, the CFS period before the quota unless the kernel
refuses it, kernel-memory fields accepted and ignored.
"""

from __future__ import annotations

import contextlib
import errno
import os

from ketch.runtime.cgroups.driver import (
    Driver,
    ResourceError,
    Warn,
    blkio_entries,
    hugetlb_sizes,
    page_size_name,
)

# runc's AllowedDevices (libcontainer/specconv): always allowed after the config's rules
_DEFAULT_ALLOW = (
    ("c", None, None, "m"), ("b", None, None, "m"), ("c", 1, 3, "rwm"), ("c", 1, 8, "rwm"),
    ("c", 1, 7, "rwm"), ("c", 5, 0, "rwm"), ("c", 1, 5, "rwm"), ("c", 1, 9, "rwm"),
    ("c", 5, 1, "rwm"), ("c", 136, None, "rwm"), ("c", 5, 2, "rwm"), ("c", 10, 200, "rwm"),
)


def device_rules(rules: list[dict], devices: list[dict]) -> list[dict]:
    """Every device rule of the container in order: the config's
    ``linux.resources.devices``, then an allow rule for each device it creates
    (``linux.devices``, as runc does), then runc's default allowed devices."""
    out = list(rules)
    for dev in devices:
        if dev["type"] == "p":
            continue  # a fifo is no device: the cgroup has no rule for it
        out.append({"allow": True, "type": "c" if dev["type"] == "u" else dev["type"],
                    "major": dev.get("major"), "minor": dev.get("minor"), "access": "rwm"})
    for kind, major, minor, access in _DEFAULT_ALLOW:
        out.append({"allow": True, "type": kind, "major": major, "minor": minor,
                    "access": access})
    return out
_NS_PER_TICK = 10**9 // os.sysconf("SC_CLK_TCK")


def device_rule(rule: dict) -> str:
    """``devices.allow``/``devices.deny`` text for a spec device rule."""
    kind = rule.get("type", "a")
    if kind == "a":
        return "a"
    major = "*" if rule.get("major") in (None, -1) else str(rule["major"])
    minor = "*" if rule.get("minor") in (None, -1) else str(rule["minor"])
    return f"{kind} {major}:{minor} {rule.get('access', 'rwm')}"


class V1Driver(Driver):
    """The container's directory in one v1 hierarchy (``controllers`` from the
    mount point's name, e.g. ``cpu,cpuacct``)."""

    version = 1

    def controllers(self) -> frozenset[str]:
        return frozenset(os.path.basename(self.mount_point).split(","))

    # -- memory -----------------------------------------------------------------

    def set_memory(self, memory: dict, warn: Warn, update: bool) -> None:
        limit = memory.get("limit") or 0
        swap = memory.get("swap") or 0
        if update and memory.get("checkBeforeUpdate") and limit > 0:
            usage = self.read_int("memory.usage_in_bytes")
            if usage is not None and limit < usage:
                raise ResourceError(f"linux.resources.memory.limit: rejecting memory limit "
                                    f"{limit} below the current usage {usage}")
        if limit == -1 and swap == 0:
            swap = -1  # unlimited memory: memsw must not stay below it
        if limit and swap:
            current = self.read_int("memory.limit_in_bytes") or 0
            # memsw must stay >= memory at every step: raise memsw first when growing
            if swap == -1 or current < swap:
                self._set_limit("memory.memsw.limit_in_bytes", swap, "memory.swap")
                self._set_limit("memory.limit_in_bytes", limit, "memory.limit")
            else:
                self._set_limit("memory.limit_in_bytes", limit, "memory.limit")
                self._set_limit("memory.memsw.limit_in_bytes", swap, "memory.swap")
        elif limit:
            self._set_limit("memory.limit_in_bytes", limit, "memory.limit")
        elif swap:
            self._set_limit("memory.memsw.limit_in_bytes", swap, "memory.swap")
        if memory.get("reservation"):
            self.write("memory.soft_limit_in_bytes", str(memory["reservation"]),
                       "memory.reservation")
        if memory.get("disableOOMKiller"):
            self.write("memory.oom_control", "1", "memory.disableOOMKiller")
        swappiness = memory.get("swappiness")
        if swappiness is not None and swappiness != -1:
            if not 0 <= swappiness <= 100:
                raise ResourceError(f"linux.resources.memory.swappiness: invalid value "
                                    f"{swappiness} (valid range is 0-100)")
            self.write("memory.swappiness", str(swappiness), "memory.swappiness")
        if memory.get("useHierarchy") is not None:
            wanted = "1" if memory["useHierarchy"] else "0"
            if self.read("memory.use_hierarchy") not in (wanted, None):
                try:
                    self.write("memory.use_hierarchy", wanted, "memory.useHierarchy")
                except ResourceError as e:
                    # kernels >= 5.x are always hierarchical and refuse 0
                    warn(str(e))
        if memory.get("kernel") is not None or memory.get("kernelTCP") is not None:
            # runc 1.1 accepts kernel memory limits and ignores them (kmem is deprecated)
            warn("linux.resources.memory.kernel and kernelTCP are ignored, as runc does")

    def _set_limit(self, name: str, value: int, resource: str) -> None:
        try:
            self.write(name, str(value), resource)
        except ResourceError as e:
            cause = e.__cause__
            if isinstance(cause, OSError) and cause.errno == errno.EBUSY \
                    and name == "memory.limit_in_bytes":
                # runc's wording: the usage is above the new limit
                raise ResourceError(
                    f"linux.resources.{resource}: unable to set memory limit to {value} "
                    f"(current usage: {self.read_int('memory.usage_in_bytes')}, peak usage: "
                    f"{self.read_int('memory.max_usage_in_bytes')})") from cause
            raise

    # -- cpu --------------------------------------------------------------------

    def set_cpu(self, cpu: dict, warn: Warn) -> None:
        shares = cpu.get("shares")
        if shares:
            self.write("cpu.shares", str(shares), "cpu.shares")
            got = self.read_int("cpu.shares")
            if got is not None and got != shares:
                bound = "maximum" if shares > got else "minimum"
                raise ResourceError(f"linux.resources.cpu.shares: the {bound} allowed "
                                    f"cpu-shares is {got}")
        self._period_then_quota(cpu.get("period"), cpu.get("quota"),
                                "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu")
        if cpu.get("burst") is not None:
            self.write("cpu.cfs_burst_us", str(cpu["burst"]), "cpu.burst")
        self._period_then_quota(cpu.get("realtimePeriod"), cpu.get("realtimeRuntime"),
                                "cpu.rt_period_us", "cpu.rt_runtime_us", "cpu.realtime")
        if cpu.get("idle") is not None:
            self.write("cpu.idle", str(cpu["idle"]), "cpu.idle")

    def _period_then_quota(self, period: int | None, quota: int | None, period_file: str,
                           quota_file: str, resource: str) -> None:
        # The kernel checks quota/period against the parent at each write: a
        # smaller period may only fit once the new quota is in (runc retries).
        retry = False
        if period:
            try:
                self.write(period_file, str(period), f"{resource}.period")
            except ResourceError as e:
                cause = e.__cause__
                if not quota or not isinstance(cause, OSError) or cause.errno != errno.EINVAL:
                    raise
                retry = True
        if quota:
            name = "quota" if resource == "cpu" else "runtime"
            self.write(quota_file, str(quota), f"{resource}.{name}")
            if retry:
                self.write(period_file, str(period), f"{resource}.period")

    def set_cpuset(self, cpu: dict) -> None:
        for key in ("cpus", "mems"):
            if cpu.get(key):
                self.write(f"cpuset.{key}", cpu[key], f"cpu.{key}")

    # -- block I/O ----------------------------------------------------------------

    def set_block_io(self, block_io: dict) -> None:
        # without CFQ the BFQ scheduler's files carry the weights (runc picks them the same way)
        weight_file, device_file = "blkio.weight", "blkio.weight_device"
        if not self.exists(weight_file) and self.exists("blkio.bfq.weight"):
            weight_file, device_file = "blkio.bfq.weight", "blkio.bfq.weight_device"
        if block_io.get("weight"):
            self.write(weight_file, str(block_io["weight"]), "blockIO.weight")
        if block_io.get("leafWeight"):
            self.write("blkio.leaf_weight", str(block_io["leafWeight"]), "blockIO.leafWeight")
        for dev in block_io.get("weightDevice") or []:
            where = f"{dev['major']}:{dev['minor']}"
            if dev.get("weight"):
                self.write(device_file, f"{where} {dev['weight']}", "blockIO.weightDevice")
            if dev.get("leafWeight"):
                self.write("blkio.leaf_weight_device", f"{where} {dev['leafWeight']}",
                           "blockIO.weightDevice")
        for key, name in (("throttleReadBpsDevice", "read_bps_device"),
                          ("throttleWriteBpsDevice", "write_bps_device"),
                          ("throttleReadIOPSDevice", "read_iops_device"),
                          ("throttleWriteIOPSDevice", "write_iops_device")):
            for dev in block_io.get(key) or []:
                self.write(f"blkio.throttle.{name}", f"{dev['major']}:{dev['minor']} {dev['rate']}",
                           f"blockIO.{key}")

    # -- hugetlb, network, devices --------------------------------------------------

    def set_hugetlb(self, limits: list[dict]) -> None:
        for entry in limits:
            size = entry["pageSize"]
            name = f"hugetlb.{size}.limit_in_bytes"
            if not self.exists(name):
                raise ResourceError(f"linux.resources.hugepageLimits: page size {size} is not "
                                    f"supported by this host (no {self.file(name)})")
            self.write(name, str(entry["limit"]), f"hugepageLimits.{size}")
            if self.exists(f"hugetlb.{size}.rsvd.limit_in_bytes"):
                self.write(f"hugetlb.{size}.rsvd.limit_in_bytes", str(entry["limit"]),
                           f"hugepageLimits.{size}")

    def set_network(self, network: dict, controller: str) -> None:
        if controller == "net_cls" and network.get("classID") is not None:
            self.write("net_cls.classid", str(network["classID"]), "network.classID")
        if controller == "net_prio":
            for prio in network.get("priorities") or []:
                self.write("net_prio.ifpriomap", f"{prio['name']} {prio['priority']}",
                           "network.priorities")

    def set_devices(self, rules: list[dict], devices: list[dict], warn: Warn) -> None:
        """``devices.deny``/``devices.allow`` writes in ``device_rules`` order."""
        for rule in device_rules(rules, devices):
            self.write("devices.allow" if rule.get("allow") else "devices.deny",
                       device_rule(rule), "devices")

    # -- statistics -----------------------------------------------------------------

    def stats(self, out: dict) -> None:
        ctrls = self.controllers()
        if "cpuacct" in ctrls:
            self._cpuacct_stats(out["cpu"]["usage"])
        if "cpu" in ctrls:
            st = self.read_keyed("cpu.stat")
            throttling = {"periods": st.get("nr_periods", 0),
                          "throttledPeriods": st.get("nr_throttled", 0),
                          "throttledTime": st.get("throttled_time", 0)}
            out["cpu"]["throttling"] = {k: v for k, v in throttling.items() if v}
        if "cpuset" in ctrls:
            cpuset_stats(self, out["cpuset"])
        if "memory" in ctrls:
            self._memory_stats(out["memory"])
        if "pids" in ctrls:
            pids = {"current": self.read_int("pids.current") or 0,
                    "limit": self.read_int("pids.max") or 0}
            out["pids"] = {k: v for k, v in pids.items() if v}
        if "blkio" in ctrls:
            self._blkio_stats(out["blkio"])
        if "hugetlb" in ctrls:
            for size in hugetlb_sizes():
                entry = {"usage": self.read_int(f"hugetlb.{size}.usage_in_bytes") or 0,
                         "max": self.read_int(f"hugetlb.{size}.max_usage_in_bytes") or 0}
                entry = {k: v for k, v in entry.items() if v}
                entry["failcnt"] = self.read_int(f"hugetlb.{size}.failcnt") or 0
                out["hugetlb"][size] = entry

    def _cpuacct_stats(self, usage: dict) -> None:
        total = self.read_int("cpuacct.usage") or 0
        percpu = [int(x) for x in (self.read("cpuacct.usage_percpu") or "").split()]
        kernel: list[int] = []
        user: list[int] = []
        for line in (self.read("cpuacct.usage_all") or "").splitlines()[1:]:
            fields = line.split()
            if len(fields) == 3:
                user.append(int(fields[1]))
                kernel.append(int(fields[2]))
        st = self.read_keyed("cpuacct.stat")
        for key, value in (("total", total), ("percpu", percpu), ("percpu_kernel", kernel),
                           ("percpu_user", user)):
            if value:
                usage[key] = value
        usage["kernel"] = st.get("system", 0) * _NS_PER_TICK
        usage["user"] = st.get("user", 0) * _NS_PER_TICK

    def _memory_stats(self, memory: dict) -> None:
        raw = self.read_keyed("memory.stat")
        if raw.get("cache"):
            memory["cache"] = raw["cache"]
        for key, prefix in (("usage", "memory"), ("swap", "memory.memsw"),
                            ("kernel", "memory.kmem"), ("kernelTCP", "memory.kmem.tcp")):
            entry = {"limit": self.read_int(f"{prefix}.limit_in_bytes") or 0,
                     "usage": self.read_int(f"{prefix}.usage_in_bytes") or 0,
                     "max": self.read_int(f"{prefix}.max_usage_in_bytes") or 0,
                     "failcnt": self.read_int(f"{prefix}.failcnt") or 0}
            memory[key] = {k: v for k, v in entry.items() if v or k in ("limit", "failcnt")}
        if raw:
            memory["raw"] = raw

    def _blkio_stats(self, blkio: dict) -> None:
        names = {"ioServiceBytesRecursive": "io_service_bytes_recursive",
                 "ioServicedRecursive": "io_serviced_recursive",
                 "ioQueueRecursive": "io_queued_recursive",
                 "ioServiceTimeRecursive": "io_service_time_recursive",
                 "ioWaitTimeRecursive": "io_wait_time_recursive",
                 "ioMergedRecursive": "io_merged_recursive",
                 "ioTimeRecursive": "time_recursive",
                 "sectorsRecursive": "sectors_recursive"}
        # CFQ's files when present, else BFQ's, else the throttling layer's (runc's order)
        for prefix in ("blkio.", "blkio.bfq.", "blkio.throttle."):
            if self.exists(prefix + "io_serviced_recursive"):
                break
        for key, name in names.items():
            entries = blkio_entries(self.read(prefix + name) or "")
            if entries:
                blkio[key] = entries


def cpuset_stats(driver: Driver, cpuset: dict) -> None:
    for key in ("cpus", "mems"):
        text = driver.read(f"cpuset.{key}") or driver.read(f"cpuset.{key}.effective") or ""
        values = parse_list(text)
        if values:
            cpuset[key] = values
    for key in ("cpu_exclusive", "mem_hardwall", "mem_exclusive", "memory_migrate",
                "memory_spread_page", "memory_spread_slab", "memory_pressure",
                "sched_load_balance", "sched_relax_domain_level"):
        value = driver.read_int(f"cpuset.{key}")
        if value is not None:
            cpuset[key] = value


def parse_list(text: str) -> list[int]:
    """A kernel cpu/node list ("0-2,5") as numbers."""
    out: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        with contextlib.suppress(ValueError):
            out.extend(range(int(lo), int(hi or lo) + 1))
    return out


__all__ = ["V1Driver", "cpuset_stats", "device_rule", "device_rules", "page_size_name",
           "parse_list"]

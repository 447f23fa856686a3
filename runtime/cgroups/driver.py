"""The cgroup driver interface: one implementation per cgroup version.

A ``Driver`` owns the container's directory in one mounted hierarchy (a v1
hierarchy with its controllers, or the v2 unified hierarchy) and knows that
version's file names and value formats for each ``linux.resources`` group of
runtime-spec config-linux.md "Control groups", and for the statistics runc's
``events`` reports. ``ketch.runtime.cgroups.resources`` routes every group
the config sets to the driver whose hierarchy has the controller.
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable

from ketch.runtime.errors import KetchError

Warn = Callable[[str], None]


class ResourceError(KetchError):
    """A resource cannot be applied: the kernel refused a value (the message
    names the resource and the file) or the controller it needs is missing."""


class Driver(ABC):
    """The container's cgroup directory ``path`` in the hierarchy mounted at
    ``mount_point``. Each ``set_*`` takes the spec's object for that group
    (e.g. ``linux.resources.memory``) and raises ``ResourceError``."""

    version: int = 0

    def __init__(self, mount_point: str, path: str) -> None:
        self.mount_point = mount_point
        self.path = path

    # -- files ----------------------------------------------------------------

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def exists(self, name: str) -> bool:
        return os.path.exists(self.file(name))

    def write(self, name: str, value: str, resource: str) -> None:
        """Write ``value`` to the cgroup file ``name``; ``resource`` (e.g.
        ``memory.limit``) names the config field in the error."""
        try:
            write_file(self.file(name), value)
        except OSError as e:
            raise ResourceError(f"linux.resources.{resource}: cannot write {value!r} to "
                                f"{self.file(name)}: {e.strerror}") from e

    def read(self, name: str) -> str | None:
        """The file's text without the trailing newline, None when unreadable."""
        with contextlib.suppress(OSError), open(self.file(name)) as f:
            return f.read().rstrip("\n")
        return None

    def read_int(self, name: str) -> int | None:
        """An integer file (``max`` reads as None)."""
        text = self.read(name)
        try:
            return int(text.split()[0]) if text else None
        except ValueError:
            return None

    def read_keyed(self, name: str) -> dict[str, int]:
        """A flat-keyed file (``key value`` per line, e.g. memory.stat)."""
        out: dict[str, int] = {}
        for line in (self.read(name) or "").splitlines():
            key, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                out[key] = int(value)
        return out

    # -- what this hierarchy offers ---------------------------------------------

    @abstractmethod
    def controllers(self) -> frozenset[str]:
        """Controllers usable in this cgroup (v1: the hierarchy's; v2: cgroup.controllers)."""

    def available(self, controller: str) -> bool:
        """True when ``controller`` can be used here, possibly after ``enable``."""
        return controller in self.controllers()

    def enable(self, controller: str) -> None:  # noqa: B027 - v1 has nothing to enable
        """Make ``controller``'s files appear in the cgroup (v2: subtree_control)."""

    # -- resources --------------------------------------------------------------

    @abstractmethod
    def set_memory(self, memory: dict, warn: Warn, update: bool) -> None: ...

    @abstractmethod
    def set_cpu(self, cpu: dict, warn: Warn) -> None:
        """shares/quota/period/burst/realtime*/idle (the ``cpu`` controller)."""

    @abstractmethod
    def set_cpuset(self, cpu: dict) -> None:
        """cpus/mems (the ``cpuset`` controller)."""

    def set_pids(self, pids: dict) -> None:
        limit = pids.get("limit")
        if limit is not None:
            self.write("pids.max", "max" if limit <= 0 else str(limit), "pids.limit")

    @abstractmethod
    def set_block_io(self, block_io: dict) -> None: ...

    @abstractmethod
    def set_hugetlb(self, limits: list[dict]) -> None: ...

    @abstractmethod
    def set_network(self, network: dict, controller: str) -> None: ...

    @abstractmethod
    def set_devices(self, rules: list[dict], devices: list[dict], warn: Warn) -> None: ...

    def set_rdma(self, rdma: dict) -> None:
        """``rdma.max``: one ``<device> hca_handle=N hca_object=M`` line per device
        (the same format on v1 and v2)."""
        for device, limits in sorted(rdma.items()):
            parts = [device]
            for key, name in (("hcaHandles", "hca_handle"), ("hcaObjects", "hca_object")):
                if (limits or {}).get(key) is not None:
                    parts.append(f"{name}={limits[key]}")
            if len(parts) > 1:
                self.write("rdma.max", " ".join(parts), f"rdma.{device}")

    # -- statistics (runc's ``types.Stats``) --------------------------------------

    @abstractmethod
    def stats(self, out: dict) -> None:
        """Fill the parts of runc's stats object this hierarchy has data for."""


def write_file(path: str, value: str) -> None:
    """One write(2) of ``value`` to an existing cgroup file (never created:
    a missing file means a missing controller or kernel feature)."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def hugetlb_sizes() -> list[str]:
    """The host's huge page sizes as cgroup file names use them ("2MB", "1GB")."""
    sizes = []
    with contextlib.suppress(OSError):
        for entry in sorted(os.listdir("/sys/kernel/mm/hugepages")):
            kb = int(entry.removeprefix("hugepages-").removesuffix("kB"))
            sizes.append(page_size_name(kb * 1024))
    return sizes


def page_size_name(size: int) -> str:
    """2097152 -> "2MB" (the kernel's and runc's spelling)."""
    units = ("B", "KB", "MB", "GB", "TB", "PB")
    i = 0
    while size >= 1024 and size % 1024 == 0 and i < len(units) - 1:
        size //= 1024
        i += 1
    return f"{size}{units[i]}"


def blkio_entries(text: str) -> list[dict]:
    """runc's BlkioEntry list from a v1 blkio file (``MAJ:MIN OP VALUE`` or
    ``MAJ:MIN VALUE`` lines; ``Total N`` lines are skipped)."""
    entries = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 2 or fields[0] == "Total":
            continue
        major, _, minor = fields[0].partition(":")
        try:
            entry: dict = {"major": int(major), "minor": int(minor)}
            if len(fields) == 3:
                entry["op"] = fields[1]
            entry["value"] = int(fields[-1])
        except ValueError:
            continue
        entries.append({k: v for k, v in entry.items() if v not in (0, "")})
    return entries

"""Linux namespaces from ``linux.namespaces`` (runtime-spec config-linux.md "Namespaces").

A namespace without ``path`` is created new (unshare); one with ``path`` is
joined (setns). Types not listed are inherited from the runtime. The user
namespace is handled first (it owns the others), and pid/time namespaces only
apply to children, which is why the init is forked after unsharing.
"""

from __future__ import annotations

import os

from ketch.runtime import syscalls as s
from ketch.runtime.syscalls import Syscalls

FLAGS: dict[str, int] = {
    "pid": s.CLONE_NEWPID,
    "network": s.CLONE_NEWNET,
    "mount": s.CLONE_NEWNS,
    "ipc": s.CLONE_NEWIPC,
    "uts": s.CLONE_NEWUTS,
    "user": s.CLONE_NEWUSER,
    "cgroup": s.CLONE_NEWCGROUP,
    "time": s.CLONE_NEWTIME,
}

# /proc/PID/ns/<name> for each spec type
PROC_NAMES: dict[str, str] = {
    "pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
    "user": "user", "cgroup": "cgroup", "time": "time",
}


class NamespacePlan:
    """What to do about namespaces, computed from the config: ``new`` types to
    create, ``join`` (type, path) pairs to enter, the user namespace first."""

    def __init__(self, new: frozenset[str], join: tuple[tuple[str, str], ...]) -> None:
        self.new = new
        self.join = join

    @classmethod
    def from_spec(cls, spec: dict) -> NamespacePlan:
        new: set[str] = set()
        join: list[tuple[str, str]] = []
        for ns in spec.get("linux", {}).get("namespaces", []) or []:
            if ns.get("path"):
                join.append((ns["type"], ns["path"]))
            else:
                new.add(ns["type"])
        # The user namespace is joined first: it governs the rights to join the rest.
        join.sort(key=lambda item: item[0] != "user")
        return cls(frozenset(new), tuple(join))

    def has(self, ns_type: str) -> bool:
        return ns_type in self.new or any(t == ns_type for t, _ in self.join)

    def unshare_flags(self, *, without_user: bool = True) -> int:
        flags = 0
        for t in self.new:
            if without_user and t == "user":
                continue
            flags |= FLAGS[t]
        return flags


def join_namespaces(sc: Syscalls, plan: NamespacePlan, *, only: set[str] | None = None) -> None:
    """setns(2) into each ``(type, path)`` of the plan (restricted to ``only`` if given).

    Raises ``OSError`` naming the path.
    """
    for ns_type, path in plan.join:
        if only is not None and ns_type not in only:
            continue
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            sc.setns(fd, FLAGS[ns_type])
        except OSError as e:
            raise OSError(e.errno, f"failed to join {ns_type} namespace {path}: {e.strerror}") from e
        finally:
            os.close(fd)

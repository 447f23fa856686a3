"""Find the host's cgroup hierarchies and place a container in its own cgroup.

Linux cgroup v1 (one hierarchy per controller set) and v2 (unified), and
"hybrid" hosts with both; runtime-spec config-linux.md "Control groups"
(``cgroupsPath``: absolute = relative to each hierarchy's root, relative =
relative to the runtime's own cgroup, on v2 to its parent as runc does; runc
uses the container ID when unset).
This module only creates, joins, lists and removes cgroups; resource limits
belong to the resource drivers. ``exec --cgroup`` (runc 1.1) places a process
in an existing sub-cgroup of the container's: ``CgroupManager.sub_cgroups``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time

from ketch.runtime.errors import ConfigError, ProcessError


class Hierarchy:
    """One mounted cgroup hierarchy of the host: ``mount_point`` (e.g.
    /sys/fs/cgroup/memory), ``mount_root`` (the hierarchy path seen there,
    mountinfo field 4), ``controllers`` (("memory",), ("name=systemd",), or ()
    for cgroup2)."""

    def __init__(self, mount_point: str, mount_root: str, controllers: tuple[str, ...],
                 unified: bool) -> None:
        self.mount_point = mount_point
        self.mount_root = mount_root
        self.controllers = controllers
        self.unified = unified

    def own_cgroup(self, pid: str = "self") -> str:
        """This process's cgroup path in this hierarchy (from /proc/PID/cgroup)."""
        with open(f"/proc/{pid}/cgroup") as f:
            for line in f:
                _, names, path = line.rstrip("\n").split(":", 2)
                if self.unified and names == "":
                    return path
                if not self.unified and set(names.split(",")) == set(self.controllers):
                    return path
        return "/"

    def host_path(self, cgroup: str) -> str:
        """Host directory of cgroup path ``cgroup`` (absolute within the hierarchy)."""
        rel = os.path.relpath(cgroup, self.mount_root) if cgroup.startswith(self.mount_root) else cgroup
        return os.path.normpath(os.path.join(self.mount_point, rel.lstrip("/")))

    def own_path(self) -> str:
        """Host directory of this process's own cgroup in this hierarchy."""
        return self.host_path(self.own_cgroup())


def _mountinfo() -> list[list[str]]:
    with open("/proc/self/mountinfo") as f:
        return [line.split() for line in f]


def hierarchies() -> list[Hierarchy]:
    """Every cgroup v1 and v2 hierarchy mounted in this mount namespace (first mount wins)."""
    found: dict[tuple[str, ...], Hierarchy] = {}
    for fields in _mountinfo():
        sep = fields.index("-")
        fstype, super_opts = fields[sep + 1], fields[sep + 3]
        if fstype == "cgroup2":
            key: tuple[str, ...] = ("",)
            h = Hierarchy(fields[4], fields[3], (), True)
        elif fstype == "cgroup":
            ctrls = tuple(o for o in super_opts.split(",")
                          if o not in ("rw", "ro") and not o.startswith(("release_agent=", "clone_children"))
                          and o not in ("noprefix", "xattr", "cpuset_v2_mode"))
            key = ctrls
            h = Hierarchy(fields[4], fields[3], ctrls, False)
        else:
            continue
        found.setdefault(key, h)
    return list(found.values())


def v1_hierarchies() -> list[Hierarchy]:
    return [h for h in hierarchies() if not h.unified]


def is_unified() -> bool:
    """True on a pure cgroup v2 host (``/sys/fs/cgroup`` itself is cgroup2)."""
    return _fs_type("/sys/fs/cgroup") == "cgroup2"


def _fs_type(path: str) -> str | None:
    for fields in _mountinfo():
        if fields[4] == path:
            return fields[fields.index("-") + 1]
    return None


class CgroupManager:
    """The container's cgroup in every hierarchy: create, join, list pids, destroy.

    ``cgroup_path``: the config's ``linux.cgroupsPath`` or, when unset, the
    container ID (relative, like runc).
    """

    def __init__(self, cgroup_path: str, paths: dict[str, str] | None = None) -> None:
        self.cgroup_path = cgroup_path
        # hierarchy mount point -> host directory of the container's cgroup
        self.paths: dict[str, str] = dict(paths or {})

    def targets(self) -> dict[str, str]:
        """Hierarchy mount point -> host directory the container's cgroup gets there
        (nothing is created)."""
        out = {}
        for h in hierarchies():
            if os.path.isabs(self.cgroup_path):
                base = "/"
            elif h.unified:
                # runc's rule on v2: our own cgroup has tasks (us), so no controller can
                # be enabled for its children; its parent has none
                base = os.path.dirname(h.own_cgroup())
            else:
                base = h.own_cgroup()
            # As runc's CleanPath: the path is cleaned as if it were absolute, so
            # ".." stops at its start ("../../tmp/x" is "tmp/x" below the base,
            # never a directory outside the cgroup filesystem).
            cleaned = os.path.normpath("/" + self.cgroup_path)
            if cleaned == "/":
                # the base itself: kill --all and delete would act on every
                # process in the root (or the caller's own) cgroup
                which = "the root cgroup" if base == "/" else "the runtime's own cgroup"
                raise ConfigError("linux.cgroupsPath", f"{self.cgroup_path!r} names {which}")
            cgroup = os.path.join(base, cleaned.lstrip("/"))
            out[h.mount_point] = h.host_path(cgroup)
        return out

    def create(self) -> None:
        """mkdir the cgroup in each hierarchy; on v1 cpuset, copy cpus/mems from the parent.

        Raises ``OSError``.
        """
        by_mount = {h.mount_point: h for h in hierarchies()}
        for mount_point, target in self.targets().items():
            h = by_mount[mount_point]
            try:
                os.makedirs(target, exist_ok=True)
            except OSError as e:
                if h.unified and e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                    continue  # a read-only unified mount on a v1 host: nothing to join
                raise
            if "cpuset" in h.controllers:
                _inherit_cpuset(target)
            self.paths[h.mount_point] = target

    def sub_cgroups(self, sub: dict[str, str]) -> SubCgroups:
        """The container's cgroup with existing sub-cgroups in place of it, for an
        ``exec``'d process (runc 1.1 ``exec --cgroup``).

        ``sub``: controller name (``pids``, ``name=systemd``...) -> path below the
        container's cgroup in that controller's hierarchy; the key ``""`` gives one
        path for every hierarchy (the only form on a cgroup v2 host). Nothing is
        created: joining a missing one fails in ``add``. Raises ``ProcessError`` in
        runc's words for a controller the container has no cgroup for, or a path
        that leads out of the container's cgroup.
        """
        paths = dict(self.paths)
        if "" in sub:
            for mount_point, base in self.paths.items():
                paths[mount_point] = _below(base, sub[""])
        else:
            # runc's keys: each v1 controller (co-mounted ones share a directory);
            # a cgroup2 hierarchy has none but "" (v1 names it only through "")
            owner = {c: h.mount_point for h in hierarchies() if h.mount_point in self.paths
                     for c in h.controllers}
            for controller, add in sub.items():
                if controller not in owner:
                    raise ProcessError("unable to create new parent process: unknown controller "
                                       f"{controller} in SubCgroupPaths")
                paths[owner[controller]] = _below(self.paths[owner[controller]], add)
        return SubCgroups(self.cgroup_path, paths)

    def add(self, pid: int) -> None:
        """Move process ``pid`` into the cgroup in every hierarchy. Raises ``OSError``."""
        for path in self.paths.values():
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write(str(pid))

    def pids(self) -> list[int]:
        """Pids in the container's cgroup (from the first hierarchy that has it)."""
        for path in self.paths.values():
            with contextlib.suppress(OSError), open(os.path.join(path, "cgroup.procs")) as f:
                return [int(x) for x in f.read().split()]
        return []

    def _freezer(self) -> tuple[str, str, str, str] | None:
        """(file, frozen value, thawed value, file to poll) of the freezer, v1 first."""
        for mount_point, path in self.paths.items():
            if "freezer" in os.path.basename(mount_point).split(","):
                state = os.path.join(path, "freezer.state")
                return state, "FROZEN", "THAWED", state
        for path in self.paths.values():
            if os.path.exists(os.path.join(path, "cgroup.freeze")):
                return (os.path.join(path, "cgroup.freeze"), "1", "0",
                        os.path.join(path, "cgroup.freeze"))
        return None

    def freeze(self, frozen: bool, timeout: float = 5.0) -> None:
        """Freeze (or thaw) every process in the cgroup and wait until the kernel
        says so. Raises ``OSError`` (ENOTSUP without a freezer)."""
        freezer = self._freezer()
        if freezer is None:
            raise OSError(errno.ENOTSUP, "no freezer cgroup for this container")
        target, on, off, poll = freezer
        value = on if frozen else off
        deadline = time.monotonic() + timeout
        while True:
            with open(target, "w") as f:
                f.write(value)
            with open(poll) as f:
                if f.read().strip() == value:
                    return
            if time.monotonic() > deadline:
                raise OSError(errno.EBUSY, f"{target} did not reach {value}")
            time.sleep(0.005)  # v1 reports FREEZING while tasks are being stopped

    def is_frozen(self) -> bool:
        freezer = self._freezer()
        if freezer is None:
            return False
        try:
            with open(freezer[3]) as f:
                return f.read().strip() == freezer[1]
        except OSError:
            return False

    def destroy(self, timeout: float = 2.0) -> None:
        """rmdir the cgroup everywhere (retrying while exiting tasks linger), child
        cgroups first: a sub-cgroup made inside the container (or for ``exec
        --cgroup``) would otherwise keep the container's cgroup (runc's RemovePath
        removes them too)."""
        deadline = time.monotonic() + timeout
        for path in self.paths.values():
            _remove_tree(path, deadline)


def _remove_tree(path: str, deadline: float) -> None:
    """rmdir the cgroup ``path`` and every cgroup below it, deepest first (cgroupfs
    files go with their directory; symlinks are never followed), retrying on EBUSY
    until ``deadline`` (``time.monotonic()``) while exiting tasks linger."""
    try:
        children = [e.path for e in os.scandir(path) if e.is_dir(follow_symlinks=False)]
    except OSError:
        children = []
    for child in children:
        _remove_tree(child, deadline)
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() > deadline:
                return
            time.sleep(0.01)


class CgroupJoinError(OSError):
    """Joining an ``exec --cgroup`` sub-cgroup failed; ``str`` is runc's message."""

    def __str__(self) -> str:
        return str(self.args[-1])


class SubCgroups(CgroupManager):
    """``CgroupManager.sub_cgroups``: only ``add`` is meant to be used."""

    def add(self, pid: int) -> None:
        """Move process ``pid`` into each sub-cgroup. Raises ``CgroupJoinError`` (an
        ``OSError``) naming the pid and the file, as runc does."""
        for path in self.paths.values():
            procs = os.path.join(path, "cgroup.procs")
            try:
                with open(procs, "w") as f:
                    f.write(str(pid))
            except OSError as e:
                # Go's errno text: the C library's, first letter lowercased
                text = os.strerror(e.errno or 0)
                raise CgroupJoinError(e.errno, f"error adding pid {pid} to cgroups: failed to "
                                      f"write {pid}: openat2 {procs}: "
                                      f"{text[:1].lower() + text[1:]}") from e


def _below(base: str, add: str) -> str:
    """``add`` joined to ``base`` as Go's ``path.Join`` does (an absolute ``add`` is
    still below ``base``); ``ProcessError`` if the result is not ``base`` or below it."""
    joined = os.path.normpath(base + "/" + add)
    if joined != base and not joined.startswith(base.rstrip("/") + "/"):
        raise ProcessError(f"unable to create new parent process: {add} is not a sub cgroup path")
    return joined


def _inherit_cpuset(path: str) -> None:
    # A new v1 cpuset cgroup starts with empty cpus/mems, and joining it fails
    # with ENOSPC until they are filled from the parent.
    parent = os.path.dirname(path)
    for name in ("cpuset.cpus", "cpuset.mems"):
        own = os.path.join(path, name)
        with open(own) as f:
            if f.read().strip():
                continue
        if os.path.dirname(parent) != parent and not _has_value(os.path.join(parent, name)):
            _inherit_cpuset(parent)
        with open(os.path.join(parent, name)) as f:
            value = f.read().strip()
        with open(own, "w") as f:
            f.write(value)


def _has_value(path: str) -> bool:
    try:
        with open(path) as f:
            return bool(f.read().strip())
    except OSError:
        return True

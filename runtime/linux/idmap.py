"""Idmapped bind mounts, prepared by the runtime for the container's init.

runtime-spec config.md "Mounts": a mount's ``uidMappings``/``gidMappings`` and
the ``idmap`` / ``ridmap`` options (config.md "Mount Options"): the mount shows
the source's on-disk ids through the mappings (``idmap``: the top mount only,
``ridmap``: every mount below it too); with the options but no mappings, the
container's own user namespace supplies them. Kernel side: open_tree(2) with
``OPEN_TREE_CLONE`` and mount_setattr(2) with ``MOUNT_ATTR_IDMAP``.

As in runc, the detached, idmapped copy of the source is made by the runtime in
its own mount and user namespace (the init, possibly in a new user namespace,
could not clone the host's mount), passed to the init over the sync socket
(SCM_RIGHTS) and attached there with move_mount(2) (``rootfs.mount_entry``).
"""

from __future__ import annotations

import contextlib
import os

from ketch.runtime import syscalls as s
from ketch.runtime.errors import KetchError
from ketch.runtime.linux.mountopts import parse_options, wants_idmap


class IdmapError(KetchError):
    """An idmapped mount could not be prepared; the message names the mount."""


def mount_indices(spec: dict) -> list[int]:
    """Indices in ``spec["mounts"]`` of the idmapped mounts, in order."""
    return [i for i, m in enumerate(spec.get("mounts") or []) if wants_idmap(m)]


def prepare_mounts(sc: s.Syscalls, spec: dict, bundle: str,
                   container_userns: str | None) -> list[int]:
    """One detached, idmapped mount fd per ``mount_indices(spec)`` entry.

    ``container_userns``: a path to the container's user namespace
    (``/proc/PID/ns/user``), used by mounts that give no mappings of their
    own. Raises ``IdmapError`` (every fd made so far is closed).
    """
    fds: list[int] = []
    try:
        for i in mount_indices(spec):
            fds.append(_prepare(sc, spec["mounts"][i], bundle, container_userns))
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return fds


def _prepare(sc: s.Syscalls, mount: dict, bundle: str, container_userns: str | None) -> int:
    opts = parse_options(mount.get("options"))
    source = mount.get("source", "")
    if not os.path.isabs(source):
        source = os.path.join(bundle, source)
    where = f"idmapped mount of {mount.get('source', '')!r} at {mount['destination']!r}"
    uid_maps, gid_maps = mount.get("uidMappings"), mount.get("gidMappings")
    try:
        if uid_maps or gid_maps:
            userns_fd = userns_with_mappings(uid_maps or [], gid_maps or [])
        elif container_userns:
            userns_fd = os.open(container_userns, os.O_RDONLY | os.O_CLOEXEC)
        else:
            raise IdmapError(f"{where}: no mappings and no user namespace to take them from")
        try:
            # rbind clones the whole tree; only ridmap idmaps the mounts below the top
            tree = sc.open_tree_clone(source, recursive=bool(opts.flags & s.MS_REC))
            try:
                sc.mount_setattr(tree, s.MOUNT_ATTR_IDMAP, 0, recursive=opts.idmap == "ridmap",
                                 userns_fd=userns_fd)
            except BaseException:
                os.close(tree)
                raise
            return tree
        finally:
            os.close(userns_fd)
    except OSError as e:
        raise IdmapError(f"{where}: {e.strerror or e}") from e


def userns_with_mappings(uid_maps: list[dict], gid_maps: list[dict]) -> int:
    """An fd of a new, empty user namespace with these mappings (runtime-spec
    ``LinuxIDMapping`` objects: containerID, hostID, size; written to
    uid_map/gid_map as "containerID hostID size").

    A short-lived child unshares the namespace and waits while we write its
    maps and open ``/proc/CHILD/ns/user``; the namespace outlives the child
    through that fd. Raises ``OSError``.
    """
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    done_r, done_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # the child: unshare, report, wait to be released
        code = 1
        try:
            os.close(ready_r)
            os.close(done_w)
            s.linux().unshare(s.CLONE_NEWUSER)
            os.write(ready_w, b"1")
            os.read(done_r, 1)
            code = 0
        finally:
            os._exit(code)
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise OSError(0, "could not create a user namespace for the mount mappings")
        for name, maps in (("uid_map", uid_maps), ("gid_map", gid_maps)):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write("".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps))
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(done_w)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)

"""Rules of config.json's ``linux`` section that a schema cannot express (runtime-spec ``config-linux.md``).

Mirrors runc's ``libcontainer/configs/validate/validator.go`` and the namespace checks
of ``libcontainer/specconv``:

- ``#namespaces``: known types, no duplicate types, ``path`` absolute;
- ``config.md#hostname`` / ``#domainname``: need a UTS namespace entry (new or
  joined by path, as runc: containers of a pod join the pod's UTS namespace and
  still set ``hostname``);
- ``#user-namespace-mappings``: mappings need a user namespace; a new user
  namespace (no ``path``) needs both ``uidMappings`` and ``gidMappings``;
- ``config.md#linux-mount-options``: ``idmap``/``ridmap`` without mount mappings need
  a user namespace; idmapped mounts are bind mounts with both uid and gid
  mappings; ``tmpcopyup`` (runc's extension) only on a tmpfs;
- ``#offset-for-time-namespace``: offsets need a new time namespace;
- ``#masked-paths`` / ``#readonly-paths``: absolute, and need a mount namespace;
- ``#devices``: ``path`` absolute;
- ``#sysctl``: only namespaced keys, each with its namespace (runc's list);
- ``#network-devices``: need a network namespace, valid interface names;
- ``#intelrdt``: ``closID`` is ``/`` or one directory name;
- ``#seccomp``: ``errnoRet`` only with ``SCMP_ACT_ERRNO`` / ``SCMP_ACT_TRACE``;
- ``#memory-policy``: node list required / forbidden by mode.

Not checked here (they need the host): whether a namespace ``path`` is of the right
type or is the host's own network namespace, rootfs existence, cgroup state.
"""

from __future__ import annotations

from ketch.runtime.errors import ConfigError

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
# sysctls that belong to the IPC namespace (runc validSysctlMap, plus fs.mqueue.*)
IPC_SYSCTLS = frozenset({
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
    "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
})
_ERRNO_ACTIONS = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
_MPOL_NO_NODES = ("MPOL_DEFAULT", "MPOL_LOCAL")
_MPOL_NEED_NODES = ("MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_PREFERRED_MANY",
                    "MPOL_WEIGHTED_INTERLEAVE")
_IFNAMSIZ = 16


def check_linux(doc: dict) -> None:
    """Raise ``ConfigError`` for the first ``config-linux.md`` rule ``doc`` breaks."""
    linux = doc.get("linux") or {}
    ns = namespaces(linux)
    _check_uts(doc, ns)
    _check_user(linux, ns)
    _check_idmapped_mounts(doc.get("mounts") or [], ns)
    _check_time(linux, ns)
    _check_paths(linux, ns)
    _check_sysctl(linux.get("sysctl") or {}, ns)
    _check_net_devices(linux.get("netDevices") or {}, ns)
    _check_intel_rdt(linux.get("intelRdt"))
    _check_seccomp(linux.get("seccomp"))
    _check_memory_policy(linux.get("memoryPolicy"))


def namespaces(linux: dict) -> dict[str, str]:
    """Map namespace type -> path ("" for a new namespace) from ``linux.namespaces``.

    Raises ``ConfigError`` for unknown or duplicate types and non-absolute paths.
    """
    found: dict[str, str] = {}
    for i, entry in enumerate(linux.get("namespaces") or []):
        kind = entry.get("type")
        if kind not in NAMESPACE_TYPES:
            raise ConfigError(f"linux.namespaces[{i}].type", f'unknown namespace type "{kind}"')
        if kind in found:
            raise ConfigError(f"linux.namespaces[{i}].type", f'duplicate namespace type "{kind}"')
        path = entry.get("path", "")
        if path and not path.startswith("/"):
            raise ConfigError(f"linux.namespaces[{i}].path", "must be an absolute path")
        found[kind] = path
    return found


def _check_uts(doc: dict, ns: dict[str, str]) -> None:
    for name in ("hostname", "domainname"):
        if doc.get(name) and "uts" not in ns:
            raise ConfigError(name, "cannot be set without a private UTS namespace")


def _check_user(linux: dict, ns: dict[str, str]) -> None:
    uid, gid = linux.get("uidMappings"), linux.get("gidMappings")
    _check_mapping_sizes(uid, "linux.uidMappings")
    _check_mapping_sizes(gid, "linux.gidMappings")
    if "user" not in ns:
        for name, maps in (("uidMappings", uid), ("gidMappings", gid)):
            if maps:
                raise ConfigError(f"linux.{name}", "cannot be used without a user namespace")
    elif not ns["user"]:
        for name, maps in (("uidMappings", uid), ("gidMappings", gid)):
            if not maps:
                raise ConfigError(f"linux.{name}", "is required for a new user namespace")


def _check_mapping_sizes(maps: list | None, field: str) -> None:
    # the kernel refuses an empty range in uid_map/gid_map with a bare EINVAL
    for j, m in enumerate(maps or []):
        if isinstance(m, dict) and m.get("size") == 0:
            raise ConfigError(f"{field}[{j}].size", "must be at least 1")


def _check_idmapped_mounts(mounts: list, ns: dict[str, str]) -> None:
    for i, mount in enumerate(mounts):
        for name in ("uidMappings", "gidMappings"):
            _check_mapping_sizes(mount.get(name), f"mounts[{i}].{name}")
        options = mount.get("options") or []
        opts = [o for o in options if o in ("idmap", "ridmap")]
        uid, gid = mount.get("uidMappings"), mount.get("gidMappings")
        if bool(uid) != bool(gid):
            missing = "gidMappings" if uid else "uidMappings"
            raise ConfigError(f"mounts[{i}].{missing}",
                              "is required with the other idmapped-mount mappings")
        if not (opts or uid):
            continue
        if opts and not uid and "user" not in ns:
            raise ConfigError(f"mounts[{i}].options",
                              f"{opts[0]} needs uidMappings/gidMappings or a user namespace")
        if mount.get("type") != "bind" and not {"bind", "rbind"} & set(options):
            raise ConfigError(f"mounts[{i}].options",
                              "idmapped mounts are only supported for bind mounts")
    for i, mount in enumerate(mounts):
        if "tmpcopyup" in (mount.get("options") or []) and mount.get("type") != "tmpfs":
            raise ConfigError(f"mounts[{i}].options", "tmpcopyup needs a tmpfs mount")


def _check_time(linux: dict, ns: dict[str, str]) -> None:
    if linux.get("timeOffsets") is None:
        return
    if "time" not in ns:
        raise ConfigError("linux.timeOffsets", "cannot be used without a time namespace")
    if ns["time"]:
        raise ConfigError("linux.timeOffsets", "cannot be used when joining a time namespace")


def _check_paths(linux: dict, ns: dict[str, str]) -> None:
    for name in ("maskedPaths", "readonlyPaths"):
        paths = linux.get(name) or []
        for i, path in enumerate(paths):
            if not path.startswith("/"):
                raise ConfigError(f"linux.{name}[{i}]", "must be an absolute path")
        if paths and "mount" not in ns:
            raise ConfigError(f"linux.{name}", "cannot be used without a mount namespace")
    for i, dev in enumerate(linux.get("devices") or []):
        if not dev["path"].startswith("/"):
            raise ConfigError(f"linux.devices[{i}].path", "must be an absolute path")


def _sysctl_key(key: str) -> str:
    """``net/ipv4/ip_forward`` -> ``net.ipv4.ip_forward`` (sysctl(8) accepts both forms)."""
    first = min((i for i in (key.find("."), key.find("/")) if i >= 0), default=-1)
    if first == -1 or key[first] == ".":
        return key
    return key.translate(str.maketrans("./", "/."))


def _check_sysctl(sysctl: dict, ns: dict[str, str]) -> None:
    for raw in sysctl:
        key = _sysctl_key(raw)
        field = f'linux.sysctl["{raw}"]'
        if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
            if "ipc" not in ns:
                raise ConfigError(field, "cannot be set without a private IPC namespace")
        elif key.startswith("net."):
            if "network" not in ns:
                raise ConfigError(field, "cannot be set in the host network namespace")
        elif key in ("kernel.hostname", "kernel.domainname"):
            if "uts" not in ns:
                raise ConfigError(field, "cannot be set without a private UTS namespace")
            if key == "kernel.hostname":
                raise ConfigError(field, "conflicts with the hostname field; set hostname instead")
        elif key.startswith("user."):
            if "user" not in ns:
                raise ConfigError(field, "cannot be set without a user namespace")
        else:
            raise ConfigError(field, "is not namespaced, so a container cannot set it")


def _valid_ifname(name: str) -> bool:
    return 0 < len(name) <= _IFNAMSIZ and name not in (".", "..") and \
        not any(c in name for c in "/: ")


def _check_net_devices(devices: dict, ns: dict[str, str]) -> None:
    if not devices:
        return
    if "network" not in ns:
        raise ConfigError("linux.netDevices", "cannot be used without a network namespace")
    for host_name, dev in devices.items():
        if not _valid_ifname(host_name):
            raise ConfigError(f'linux.netDevices["{host_name}"]', "is not a valid interface name")
        if dev.get("name") and not _valid_ifname(dev["name"]):
            raise ConfigError(f'linux.netDevices["{host_name}"].name',
                              "is not a valid interface name")


def _check_intel_rdt(rdt: dict | None) -> None:
    clos = (rdt or {}).get("closID", "")
    if clos in (".", "..") or (len(clos) > 1 and "/" in clos):
        raise ConfigError("linux.intelRdt.closID", 'must be "/" or a single directory name')


def _check_seccomp(seccomp: dict | None) -> None:
    if not seccomp:
        return
    if "defaultErrnoRet" in seccomp and seccomp["defaultAction"] not in _ERRNO_ACTIONS:
        raise ConfigError("linux.seccomp.defaultErrnoRet",
                          "can only be set with SCMP_ACT_ERRNO or SCMP_ACT_TRACE")
    for i, rule in enumerate(seccomp.get("syscalls") or []):
        if "errnoRet" in rule and rule["action"] not in _ERRNO_ACTIONS:
            raise ConfigError(f"linux.seccomp.syscalls[{i}].errnoRet",
                              "can only be set with SCMP_ACT_ERRNO or SCMP_ACT_TRACE")


def _check_memory_policy(policy: dict | None) -> None:
    if not policy:
        return
    mode, nodes = policy["mode"], policy.get("nodes", "")
    if mode in _MPOL_NO_NODES and nodes:
        raise ConfigError("linux.memoryPolicy.nodes", f"must be empty for {mode}")
    if mode in _MPOL_NEED_NODES and not nodes:
        raise ConfigError("linux.memoryPolicy.nodes", f"is required for {mode}")

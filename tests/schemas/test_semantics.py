"""Semantic rules of config.json (runtime-spec config.md, config-linux.md; runc's validator).

Each case mutates a valid config and checks the exact ``str(ConfigError)`` that
``validate_config`` raises; the mutated documents are all schema-valid, so the
message comes from ``semantics`` / ``semantics_linux``.
"""

from __future__ import annotations

import pytest

import ketch.schemas
from ketch.runtime.errors import ConfigError
from ketch.runtime.spec.default import default_spec
from ketch.runtime.spec.semantics import check_env, check_process
from ketch.runtime.spec.semantics_linux import namespaces
from ketch.runtime.spec.validate import validate_config

from . import samples


def _ns(doc: dict, *types: str) -> None:
    doc["linux"]["namespaces"] = [{"type": t} for t in types]


CASES = [
    # config.md
    ("version-major", lambda d: d.update(ociVersion="2.0.0"),
     "ociVersion: unsupported major version 2 (Ketch implements 1.x)"),
    ("root-path-empty", lambda d: d["root"].update(path=""), "root.path: must not be empty"),
    ("args0-empty", lambda d: d["process"].update(args=[""]), "process.args[0]: must not be empty"),
    ("cwd-relative", lambda d: d["process"].update(cwd="home"),
     "process.cwd: must be an absolute path"),
    ("env-no-equals", lambda d: d["process"]["env"].append("FOO"),
     "process.env[2]: 'FOO' must have the form NAME=VALUE"),
    ("env-empty-name", lambda d: d["process"]["env"].insert(0, "=x"),
     "process.env[0]: must have a non-empty NAME before '='"),
    ("env-nul", lambda d: d["process"]["env"].append("A=b\0c"),
     "process.env[2]: must not contain a NUL byte"),
    ("rlimit-duplicate", lambda d: d["process"]["rlimits"].append(
        {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}),
     "process.rlimits[1].type: duplicate rlimit RLIMIT_NOFILE (also in process.rlimits[0])"),
    ("sched-nice", lambda d: d["process"].update(scheduler={"policy": "SCHED_OTHER", "nice": 20}),
     "process.scheduler.nice: must be between -20 and 19 for SCHED_OTHER"),
    ("sched-priority", lambda d: d["process"].update(
        scheduler={"policy": "SCHED_BATCH", "priority": 5}),
     "process.scheduler.priority: can only be set for SCHED_FIFO or SCHED_RR"),
    ("sched-deadline", lambda d: d["process"].update(
        scheduler={"policy": "SCHED_RR", "runtime": 5}),
     "process.scheduler.runtime: can only be set for SCHED_DEADLINE"),
    ("mount-nul", lambda d: d["mounts"][0].update(source="pro\0c"),
     "mounts[0].source: must not contain a NUL byte"),
    ("hook-relative", lambda d: d.update(hooks={"createRuntime": [{"path": "bin/hook"}]}),
     "hooks.createRuntime[0].path: must be an absolute path"),
    ("hook-env", lambda d: d.update(hooks={"poststop": [{"path": "/h", "env": ["A=1", "B"]}]}),
     "hooks.poststop[0].env[1]: 'B' must have the form NAME=VALUE"),
    # config-linux.md
    ("ns-duplicate", lambda d: d["linux"]["namespaces"].append({"type": "pid"}),
     'linux.namespaces[5].type: duplicate namespace type "pid"'),
    ("mount-mapping-size-zero", lambda d: d["mounts"][0].update(
        options=["bind", "idmap"], uidMappings=[{"containerID": 0, "hostID": 1, "size": 0}],
        gidMappings=[{"containerID": 0, "hostID": 1, "size": 1}]),
     "mounts[0].uidMappings[0].size: must be at least 1"),
    ("ns-path-relative", lambda d: d["linux"]["namespaces"][1].update(path="netns/a"),
     "linux.namespaces[1].path: must be an absolute path"),
    ("hostname-no-uts", lambda d: _ns(d, "pid", "mount"),
     "hostname: cannot be set without a private UTS namespace"),
    ("domainname-no-uts", lambda d: (_ns(d, "pid", "mount"), d.update(hostname="", domainname="x")),
     "domainname: cannot be set without a private UTS namespace"),
    ("uidmap-no-userns", lambda d: d["linux"].update(
        uidMappings=[{"containerID": 0, "hostID": 1, "size": 1}]),
     "linux.uidMappings: cannot be used without a user namespace"),
    ("gidmap-no-userns", lambda d: d["linux"].update(
        gidMappings=[{"containerID": 0, "hostID": 1, "size": 1}]),
     "linux.gidMappings: cannot be used without a user namespace"),
    ("userns-no-mappings", lambda d: d["linux"]["namespaces"].append({"type": "user"}),
     "linux.uidMappings: is required for a new user namespace"),
    ("userns-no-gidmap", lambda d: (d["linux"]["namespaces"].append({"type": "user"}),
                                    d["linux"].update(uidMappings=[{"containerID": 0,
                                                                    "hostID": 1, "size": 1}])),
     "linux.gidMappings: is required for a new user namespace"),
    ("idmap-no-userns", lambda d: d["mounts"][0].update(options=["rbind", "idmap"]),
     "mounts[0].options: idmap needs uidMappings/gidMappings or a user namespace"),
    ("timeoffsets-no-timens", lambda d: d["linux"].update(timeOffsets={"boottime": {"secs": 1}}),
     "linux.timeOffsets: cannot be used without a time namespace"),
    ("timeoffsets-joined", lambda d: (d["linux"]["namespaces"].append(
        {"type": "time", "path": "/proc/1/ns/time"}), d["linux"].update(
        timeOffsets={"boottime": {"secs": 1}})),
     "linux.timeOffsets: cannot be used when joining a time namespace"),
    ("masked-relative", lambda d: d["linux"]["maskedPaths"].append("proc/kcore"),
     "linux.maskedPaths[10]: must be an absolute path"),
    ("readonly-no-mountns", lambda d: (_ns(d, "pid", "uts"), d["linux"].pop("maskedPaths")),
     "linux.readonlyPaths: cannot be used without a mount namespace"),
    ("device-relative", lambda d: d["linux"].update(devices=[{"type": "p", "path": "fifo"}]),
     "linux.devices[0].path: must be an absolute path"),
    ("sysctl-net-hostns", lambda d: (_ns(d, "pid", "uts", "mount"),
                                     d["linux"].update(sysctl={"net.core.somaxconn": "1"})),
     'linux.sysctl["net.core.somaxconn"]: cannot be set in the host network namespace'),
    ("sysctl-slash-form", lambda d: (_ns(d, "pid", "uts", "mount"),
                                     d["linux"].update(sysctl={"net/ipv4/ip_forward": "1"})),
     'linux.sysctl["net/ipv4/ip_forward"]: cannot be set in the host network namespace'),
    ("sysctl-ipc", lambda d: (_ns(d, "pid", "uts", "mount"),
                              d["linux"].update(sysctl={"kernel.shmmax": "1"})),
     'linux.sysctl["kernel.shmmax"]: cannot be set without a private IPC namespace'),
    ("sysctl-mqueue", lambda d: (_ns(d, "uts", "mount"),
                                 d["linux"].update(sysctl={"fs.mqueue.msg_max": "1"})),
     'linux.sysctl["fs.mqueue.msg_max"]: cannot be set without a private IPC namespace'),
    ("sysctl-hostname", lambda d: d["linux"].update(sysctl={"kernel.hostname": "x"}),
     'linux.sysctl["kernel.hostname"]: conflicts with the hostname field; set hostname instead'),
    ("sysctl-domainname-no-uts", lambda d: (_ns(d, "mount"), d.pop("hostname"),
                                            d["linux"].update(sysctl={"kernel.domainname": "x"})),
     'linux.sysctl["kernel.domainname"]: cannot be set without a private UTS namespace'),
    ("sysctl-user", lambda d: d["linux"].update(sysctl={"user.max_user_namespaces": "0"}),
     'linux.sysctl["user.max_user_namespaces"]: cannot be set without a user namespace'),
    ("sysctl-not-namespaced", lambda d: d["linux"].update(sysctl={"vm.swappiness": "10"}),
     'linux.sysctl["vm.swappiness"]: is not namespaced, so a container cannot set it'),
    ("netdevices-no-netns", lambda d: (_ns(d, "pid", "uts", "mount"),
                                       d["linux"].update(netDevices={"eth0": {}})),
     "linux.netDevices: cannot be used without a network namespace"),
    ("netdevice-bad-name", lambda d: d["linux"].update(netDevices={"eth0": {"name": "a/b"}}),
     'linux.netDevices["eth0"].name: is not a valid interface name'),
    ("netdevice-too-long", lambda d: d["linux"].update(netDevices={"x" * 17: {}}),
     f'linux.netDevices["{"x" * 17}"]: is not a valid interface name'),
    ("closid-dotdot", lambda d: d["linux"].update(intelRdt={"closID": ".."}),
     'linux.intelRdt.closID: must be "/" or a single directory name'),
    ("closid-nested", lambda d: d["linux"].update(intelRdt={"closID": "a/b"}),
     'linux.intelRdt.closID: must be "/" or a single directory name'),
    ("seccomp-default-errno", lambda d: d["linux"].update(
        seccomp={"defaultAction": "SCMP_ACT_KILL", "defaultErrnoRet": 1}),
     "linux.seccomp.defaultErrnoRet: can only be set with SCMP_ACT_ERRNO or SCMP_ACT_TRACE"),
    ("seccomp-rule-errno", lambda d: d["linux"].update(seccomp={
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_LOG", "errnoRet": 1}]}),
     "linux.seccomp.syscalls[0].errnoRet: can only be set with SCMP_ACT_ERRNO or SCMP_ACT_TRACE"),
    ("mpol-default-nodes", lambda d: d["linux"].update(
        memoryPolicy={"mode": "MPOL_DEFAULT", "nodes": "0"}),
     "linux.memoryPolicy.nodes: must be empty for MPOL_DEFAULT"),
    ("mpol-bind-no-nodes", lambda d: d["linux"].update(memoryPolicy={"mode": "MPOL_BIND"}),
     "linux.memoryPolicy.nodes: is required for MPOL_BIND"),
]


@pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_semantic_rule(mutate, expected):
    doc = default_spec()
    mutate(doc)
    assert ketch.schemas.errors("runtime", "config", doc) == []  # schema-valid on purpose
    with pytest.raises(ConfigError) as info:
        validate_config(doc)
    assert str(info.value) == expected


@pytest.mark.parametrize("name", sorted(samples.VALID_CONFIGS))
def test_valid_samples_pass_semantics(name):
    validate_config(samples.VALID_CONFIGS[name]())


def test_runc_specs_pass(runc_spec, runc_spec_rootless):
    validate_config(runc_spec)
    validate_config(runc_spec_rootless)


def test_error_has_field_and_message():
    doc = default_spec()
    doc["process"]["cwd"] = "tmp"
    with pytest.raises(ConfigError) as info:
        validate_config(doc)
    assert (info.value.field, info.value.message) == ("process.cwd", "must be an absolute path")


def test_schema_errors_come_before_semantic_ones():
    doc = default_spec()
    doc["process"]["cwd"] = 5  # schema error
    doc["linux"]["namespaces"] = []  # would be a semantic error (hostname)
    with pytest.raises(ConfigError, match=r"^process\.cwd: must be a string$"):
        validate_config(doc)


def test_user_namespace_joined_by_path_needs_no_mappings():
    doc = default_spec()
    doc["linux"]["namespaces"].append({"type": "user", "path": "/proc/1/ns/user"})
    validate_config(doc)


def test_empty_mapping_lists_count_as_absent():
    doc = default_spec()
    doc["linux"]["uidMappings"] = []
    doc["linux"]["gidMappings"] = []
    validate_config(doc)


def test_unknown_namespace_type_is_caught_without_the_schema():
    # the schema's enum catches it first in validate_config; the rule stands on its own
    with pytest.raises(ConfigError, match=r'^linux\.namespaces\[1\]\.type: unknown namespace type "net"$'):
        namespaces({"namespaces": [{"type": "pid"}, {"type": "net"}]})


def test_check_process_for_exec_documents():
    with pytest.raises(ConfigError, match=r"^exec\.args: must be a non-empty array$"):
        check_process({"args": [], "cwd": "/"}, "exec")
    check_env(["A=", "B=c=d", "_x=1"], "env")


def test_relative_mount_destination_is_accepted_with_runcs_warning():
    """config.md deprecates it; runc 1.1 warns and mounts it below the container's /."""
    from ketch.runtime.spec.semantics import absolute_mount_destinations

    doc = default_spec()
    doc["mounts"][3]["destination"] = "dev/shm"
    doc["mounts"].append({"destination": "a/../b", "type": "tmpfs", "source": "tmpfs"})
    validate_config(doc)
    warnings: list[str] = []
    absolute_mount_destinations(doc, warnings.append)
    assert [m["destination"] for m in doc["mounts"]][3] == "/dev/shm"
    assert doc["mounts"][-1]["destination"] == "/a/../b"  # resolved in-root at mount time
    assert warnings == [f"mount destination {d} is not absolute. Support for non-absolute mount "
                        "destinations will be removed in a future release." for d in ("dev/shm", "a/../b")]

"""Hand-written documents for the schema tests (runtime-spec config/state/features, image-spec).

Each ``*_config()`` returns a fresh config.json dict that is valid both for the
schema and for the semantic rules; together they touch every section of
``config.md`` / ``config-linux.md``.
"""

from __future__ import annotations

from ketch.runtime.spec.default import default_spec

SHA_A = "sha256:" + "a" * 64
SHA_B = "sha256:" + "b" * 64
SHA_C = "sha256:" + "c" * 64
SHA_D = "sha256:" + "d" * 64


def minimal_config() -> dict:
    """The smallest valid Linux config: no process (create-only), no linux section."""
    return {"ociVersion": "1.0.0", "root": {"path": "rootfs"}}


def full_config() -> dict:
    """Every config.md / config-linux.md section, with valid values."""
    doc = default_spec()
    doc["ociVersion"] = "1.2.0"
    doc["domainname"] = "example.test"
    doc["annotations"] = {"com.example.key": "value", "org.opencontainers.image.os": "linux"}
    doc["mounts"].append({
        "destination": "/data", "type": "none", "source": "/srv/data",
        "options": ["rbind", "rw", "idmap"],
        "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    })
    proc = doc["process"]
    proc.update({
        "consoleSize": {"height": 25, "width": 80},
        "user": {"uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [5, 6]},
        "apparmorProfile": "acme_secure_profile",
        "selinuxLabel": "system_u:system_r:svirt_lxc_net_t:s0:c124,c675",
        "oomScoreAdj": -500,
        "scheduler": {"policy": "SCHED_FIFO", "priority": 10,
                      "flags": ["SCHED_FLAG_RESET_ON_FORK"]},
        "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
        "execCPUAffinity": {"initial": "7", "final": "0-3,7"},
    })
    proc["capabilities"]["inheritable"] = []
    proc["rlimits"].append({"type": "RLIMIT_CORE", "soft": 0, "hard": 18446744073709551615})
    doc["hooks"] = {
        "prestart": [{"path": "/usr/bin/fix-mounts", "args": ["fix-mounts", "a"],
                      "env": ["key1=value1"]}],
        "createRuntime": [{"path": "/usr/bin/setup-network"}],
        "createContainer": [{"path": "/usr/bin/mount-hook", "timeout": 10}],
        "startContainer": [{"path": "/usr/bin/refresh-ldcache"}],
        "poststart": [{"path": "/usr/bin/notify-start", "timeout": 5}],
        "poststop": [{"path": "/usr/sbin/cleanup.sh", "args": ["cleanup.sh", "-f"]}],
    }
    linux = doc["linux"]
    linux["namespaces"] += [{"type": "user"}, {"type": "cgroup"}, {"type": "time"}]
    linux["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 32000}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 32000}]
    linux["timeOffsets"] = {"monotonic": {"secs": 172800, "nanosecs": 0},
                            "boottime": {"secs": -5, "nanosecs": 999}}
    linux["devices"] = [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438,
         "uid": 0, "gid": 0},
        {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0},
        {"path": "/dev/myfifo", "type": "p"},
    ]
    linux["netDevices"] = {"eth1": {"name": "ctr_eth1"}, "dummy0": {}}
    linux["cgroupsPath"] = "/myRuntime/myContainer"
    linux["resources"] = {
        "devices": [{"allow": False, "access": "rwm"},
                    {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"},
                    {"allow": True, "type": "a", "major": -1, "minor": -1, "access": ""}],
        "memory": {"limit": 536870912, "reservation": 536870912, "swap": -1, "kernel": -1,
                   "kernelTCP": -1, "swappiness": 60, "disableOOMKiller": False,
                   "useHierarchy": True, "checkBeforeUpdate": True},
        "cpu": {"shares": 1024, "quota": 1000000, "burst": 1000, "period": 500000,
                "realtimeRuntime": 950000, "realtimePeriod": 1000000, "cpus": "2-3",
                "mems": "0-7", "idle": 1},
        "blockIO": {
            "weight": 10, "leafWeight": 10,
            "weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 300},
                             {"major": 8, "minor": 16, "leafWeight": 500}],
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
            "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
            "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 60}],
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}],
        },
        "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200},
                           {"pageSize": "64KB", "limit": 1000000}],
        "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
        "pids": {"limit": 32771},
        "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "rxe3": {"hcaObjects": 1}},
        "unified": {"io.max": "259:0 rbps=2097152 wiops=120", "hugetlb.1GB.max": "1073741824"},
    }
    linux["intelRdt"] = {"closID": "guaranteed_group", "l3CacheSchema": "L3:0=7f0;1=1f",
                         "memBwSchema": "MB:0=20;1=70",
                         "schemata": ["L3:0=7f0;1=1f", "MB:0=20;1=70"],
                         "enableMonitoring": True}
    linux["memoryPolicy"] = {"mode": "MPOL_INTERLEAVE", "nodes": "2-3",
                             "flags": ["MPOL_F_STATIC_NODES"]}
    linux["sysctl"] = {"net.ipv4.ip_forward": "1", "net/core/somaxconn": "256",
                       "kernel.shmmax": "68719476736", "fs.mqueue.msg_max": "10",
                       "kernel.domainname": "example.test", "user.max_user_namespaces": "0"}
    linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "listenerPath": "/run/seccomp-agent.socket", "listenerMetadata": "MKNOD=/dev/null",
        "syscalls": [
            {"names": ["getcwd", "chmod"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                      {"index": 0, "value": 8, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["bpf"], "action": "SCMP_ACT_NOTIFY"},
        ],
    }
    linux["rootfsPropagation"] = "rslave"
    linux["mountLabel"] = "system_u:object_r:svirt_sandbox_file_t:s0:c715,c811"
    linux["personality"] = {"domain": "LINUX32", "flags": []}
    return doc


def joined_namespaces_config() -> dict:
    """A pod-style container: joins namespaces by path, still sets hostname (CRI does)."""
    doc = default_spec()
    doc["linux"]["namespaces"] = [
        {"type": "pid"}, {"type": "mount"},
        {"type": "network", "path": "/var/run/netns/pod"},
        {"type": "ipc", "path": "/proc/1234/ns/ipc"},
        {"type": "uts", "path": "/proc/1234/ns/uts"},
        {"type": "user", "path": "/proc/1234/ns/user"},
        {"type": "time", "path": "/proc/1234/ns/time"},
    ]
    doc["hostname"] = "pod-a"
    doc["linux"]["sysctl"] = {"net.ipv4.ping_group_range": "0 2147483647"}
    return doc


def rootless_config() -> dict:
    """What ``runc spec --rootless`` writes (user namespace with one-id mappings)."""
    doc = default_spec()
    doc["process"]["terminal"] = False
    doc["linux"]["namespaces"] = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "user")]
    doc["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    doc["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    doc["linux"]["resources"] = {}
    doc["mounts"] = [m for m in doc["mounts"] if m["type"] != "cgroup"]
    return doc


def spec_example_config() -> dict:
    """The full example at the end of runtime-spec config.md (Linux parts)."""
    doc = full_config()
    doc["ociVersion"] = "1.0.1"
    doc["process"]["scheduler"] = {"policy": "SCHED_OTHER", "nice": -5}
    doc["linux"]["rootfsPropagation"] = "slave"
    doc["linux"]["resources"]["hugepageLimits"] = [
        {"pageSize": "2MB", "limit": 9223372036854772000}]
    return doc


VALID_CONFIGS = {
    "default": default_spec,
    "minimal": minimal_config,
    "full": full_config,
    "joined-namespaces": joined_namespaces_config,
    "rootless": rootless_config,
    "spec-example": spec_example_config,
}


# --- image-spec documents, as umoci and skopeo write them ---------------------------

def umoci_manifest() -> dict:
    return {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": SHA_A, "size": 1470},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": SHA_B, "size": 1048576}],
        "annotations": {"org.opencontainers.image.created": "2026-11-29T11:48:03Z"},
    }


def skopeo_manifest() -> dict:
    """skopeo copy to an oci: layout (no top-level annotations, zstd layer)."""
    return {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": SHA_A, "size": 581},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": SHA_B,
             "size": 2811478},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": SHA_C,
             "size": 32, "annotations": {"io.github.containers.zstd-chunked.manifest-position":
                                         "1:2:3:4"}},
        ],
    }


def artifact_manifest() -> dict:
    """manifest.md guidance: an artifact with the empty config descriptor."""
    return {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example+type",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                   "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
                   "size": 2, "data": "e30="},
        "layers": [{"mediaType": "application/vnd.oci.empty.v1+json",
                    "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
                    "size": 2}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": SHA_D, "size": 1234},
    }


def multiarch_index() -> dict:
    return {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": SHA_A,
             "size": 7143, "platform": {"architecture": "ppc64le", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": SHA_B,
             "size": 7682, "platform": {"architecture": "arm64", "os": "linux", "variant": "v8",
                                        "os.features": ["x"], "os.version": "5.10"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": "sha512:" + "e" * 128, "size": 1,
             "platform": {"architecture": "amd64", "os": "windows",
                          "os.version": "10.0.14393.1066", "os.features": ["win32k"]},
             "urls": ["https://example.com/manifest"]},
        ],
        "annotations": {"com.example.key1": "value1"},
    }


def layout_index() -> dict:
    """index.json of an image layout as umoci writes it (ref name annotation)."""
    return {
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": SHA_A,
             "size": 349, "annotations": {"org.opencontainers.image.ref.name": "v1"}},
            {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": SHA_B,
             "size": 7143, "annotations": {"org.opencontainers.image.ref.name": "stable-release"}},
            {"mediaType": "application/xml", "digest": SHA_C, "size": 7143},
        ],
    }


def image_config() -> dict:
    return {
        "created": "2015-10-31T22:22:56.015925234Z",
        "author": "Alyssa P. Hacker <alyspdev@example.com>",
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": "alice", "ExposedPorts": {"8080/tcp": {}},
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "FOO=oci_is_a", "EMPTY="],
            "Entrypoint": ["/bin/my-app-binary"], "Cmd": ["--foreground"],
            "Volumes": {"/var/job-result-data": {}}, "WorkingDir": "/home/alice",
            "Labels": {"com.example.project.git.url": "https://example.com/project.git"},
            "StopSignal": "SIGRTMIN+3", "ArgsEscaped": True,
        },
        "rootfs": {"diff_ids": [SHA_C, SHA_D], "type": "layers"},
        "history": [
            {"created": "2015-10-31T22:22:54.690851953Z", "created_by": "/bin/sh -c #(nop) ADD"},
            {"created": "2015-10-31T22:22:55+01:00", "created_by": "CMD [\"sh\"]",
             "empty_layer": True},
        ],
    }


def docker_style_image_config() -> dict:
    """Nulls for OPTIONAL fields and Docker's extra keys are allowed (config.md)."""
    doc = image_config()
    doc["config"].update({"Entrypoint": None, "Cmd": None, "Volumes": None, "OnBuild": None,
                          "Hostname": "", "Domainname": ""})
    doc["container_config"] = {"Hostname": "abc"}
    doc["docker_version"] = "20.10.7"
    doc["history"][0]["comment"] = None
    return doc


def umoci_empty_config() -> dict:
    return {"created": "2026-11-29T11:48:03.181723501Z", "architecture": "amd64", "os": "linux",
            "config": {}, "rootfs": {"type": "layers", "diff_ids": []}}


VALID_IMAGE_DOCS = {
    ("manifest", "umoci"): umoci_manifest,
    ("manifest", "skopeo"): skopeo_manifest,
    ("manifest", "artifact"): artifact_manifest,
    ("index", "multiarch"): multiarch_index,
    ("index", "layout"): layout_index,
    ("layout-index", "umoci"): layout_index,
    ("config", "spec-example"): image_config,
    ("config", "docker-style"): docker_style_image_config,
    ("config", "umoci-empty"): umoci_empty_config,
    ("oci-layout", "1.0.0"): lambda: {"imageLayoutVersion": "1.0.0"},
    ("descriptor", "spec-example"): lambda: {
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 7682,
        "digest": "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
        "urls": ["https://example.com/example-manifest"],
        "artifactType": "application/vnd.example.sbom.v1"},
    ("descriptor", "unregistered-algorithm"): lambda: {
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1,
        "digest": "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8"},
}


def sections(doc: dict) -> dict[str, dict]:
    """Split a config into small valid configs, one per top-level / ``linux`` member.

    The schema relates no two sections, so mutating each small document covers the
    same ground as mutating ``doc`` itself, at a fraction of jsonschema's cost.
    """
    base = {"ociVersion": doc["ociVersion"], "root": doc["root"]}
    out = {"base": dict(base)}
    for key, value in doc.items():
        if key == "linux":
            for sub, item in value.items():
                out[f"linux.{sub}"] = {**base, "linux": {sub: item}}
        elif key not in base:
            out[key] = {**base, key: value}
    return out

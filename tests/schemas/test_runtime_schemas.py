"""runtime-spec state (runtime.md#state) and features (features.md, features-linux.md) schemas."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

import ketch.schemas


def _errors(name: str, doc: object) -> list[str]:
    return ketch.schemas.errors("runtime", name, doc)


def _state(**changes: object) -> dict:
    doc = {"ociVersion": "1.0.2-dev", "id": "oci-container1", "status": "running", "pid": 4422,
           "bundle": "/containers/redis", "annotations": {"myKey": "myValue"},
           "rootfs": "/containers/redis/rootfs", "created": "2026-11-29T11:48:03Z",
           "owner": ""}
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not None}


@pytest.mark.parametrize("doc", [
    _state(),
    _state(status="created"),
    _state(status="stopped", pid=0),
    _state(status="stopped", pid=None),
    _state(status="creating", pid=None),
    _state(status="paused"),
    _state(annotations=None, rootfs=None, created=None, owner=None),
], ids=["running", "created", "stopped-pid0", "stopped-no-pid", "creating", "paused", "bare"])
def test_valid_states(doc):
    assert _errors("state", doc) == []


@pytest.mark.parametrize(("doc", "where"), [
    (_state(status="running", pid=None), "$"),
    (_state(status="created", pid=0), "$.pid"),
    (_state(pid=-1), "$.pid"),
    (_state(bundle="containers/redis"), "$.bundle"),
    (_state(id=""), "$.id"),
    (_state(status=""), "$.status"),
    (_state(ociVersion="1"), "$.ociVersion"),
    (_state(annotations={"a": 1}), "$.annotations.a"),
    ({"ociVersion": "1.0.0", "status": "stopped", "bundle": "/b"}, "$"),
], ids=["running-no-pid", "created-pid0", "negative-pid", "relative-bundle", "empty-id",
        "empty-status", "bad-version", "annotation-value", "no-id"])
def test_invalid_states(doc, where):
    errors = _errors("state", doc)
    assert any(e.startswith(where + ": ") for e in errors), errors


FEATURES = {
    "ociVersionMin": "1.0.0",
    "ociVersionMax": "1.1.0-rc.2",
    "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
              "poststop"],
    "mountOptions": ["async", "bind", "ro", "rro", "idmap"],
    "linux": {
        "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"],
        "capabilities": ["CAP_CHOWN", "CAP_KILL"],
        "cgroup": {"v1": True, "v2": True, "systemd": True, "systemdUser": True, "rdma": False},
        "seccomp": {"enabled": True, "actions": ["SCMP_ACT_ALLOW"], "operators": ["SCMP_CMP_EQ"],
                    "archs": ["SCMP_ARCH_X86_64"], "knownFlags": ["SECCOMP_FILTER_FLAG_LOG"],
                    "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG"]},
        "apparmor": {"enabled": True},
        "selinux": {"enabled": False},
        "intelRdt": {"enabled": True, "schemata": True, "monitoring": False},
        "memoryPolicy": {"modes": ["MPOL_BIND"], "flags": ["MPOL_F_STATIC_NODES"]},
        "mountExtensions": {"idmap": {"enabled": True}},
        "netDevices": {"enabled": True},
    },
    "annotations": {"org.opencontainers.runc.version": "1.1.0"},
    "potentiallyUnsafeConfigAnnotations": ["bundle", "org.systemd.property."],
}


def test_features_example():
    assert _errors("features", FEATURES) == []


def test_features_nulls_are_allowed():
    doc = {"ociVersionMin": "1.0.0", "ociVersionMax": "1.0.2", "hooks": None,
           "mountOptions": None, "annotations": None, "linux": {"cgroup": {"v1": None},
                                                                "seccomp": None}}
    assert _errors("features", doc) == []


@pytest.mark.parametrize(("doc", "where"), [
    ({"ociVersionMin": "1.0.0"}, "$"),
    ({**FEATURES, "ociVersionMax": "latest"}, "$.ociVersionMax"),
    ({**FEATURES, "hooks": "prestart"}, "$.hooks"),
    ({**FEATURES, "linux": {"cgroup": {"v2": "yes"}}}, "$.linux.cgroup.v2"),
    ({**FEATURES, "annotations": {"a": 1}}, "$.annotations"),
], ids=["no-max", "bad-max", "hooks-string", "cgroup-v2-string", "annotation-value"])
def test_invalid_features(doc, where):
    errors = _errors("features", doc)
    assert any(e.startswith(where) for e in errors), errors


def test_runc_features_output():
    if shutil.which("runc") is None:
        pytest.skip("runc is not installed")
    proc = subprocess.run(["runc", "features"], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip("this runc has no features command")
    assert _errors("features", json.loads(proc.stdout)) == []

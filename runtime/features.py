"""What this build of ketch supports, as the runtime-spec ``features`` document.

runtime-spec features.md and features-linux.md. Every entry is what the code
really does today: a feature is listed only once it is implemented (
SELinux labels are reported disabled until they are; SCMP_ACT_NOTIFY is not
listed).
"""

from __future__ import annotations

from ketch.runtime.linux.capabilities import CAPABILITIES, last_cap
from ketch.runtime.linux.hooks import KINDS
from ketch.runtime.linux.lsm import apparmor_enabled
from ketch.runtime.linux.mountopts import known_option_names
from ketch.runtime.linux.namespaces import FLAGS as NAMESPACE_FLAGS
from ketch.runtime.linux.seccomp import ACTIONS, OPERATORS
from ketch.runtime.linux.seccomp import FLAGS as SECCOMP_FLAGS
from ketch.runtime.spec.default import OCI_VERSION

VERSION = "0.1.0"


def features() -> dict:
    """The features document (a dict ready for ``json.dumps``)."""
    limit = last_cap()
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(KINDS),
        "mountOptions": sorted(known_option_names()),
        "linux": {
            "namespaces": sorted(NAMESPACE_FLAGS),
            "capabilities": [name for name, num in CAPABILITIES.items() if num <= limit],
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False,
                       "rdma": True},
            "seccomp": {
                "enabled": True,
                "actions": sorted(ACTIONS),
                "operators": sorted(OPERATORS),
                "archs": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_X32",
                          "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
                "knownFlags": sorted(SECCOMP_FLAGS),
                "supportedFlags": sorted(SECCOMP_FLAGS),
            },
            "apparmor": {"enabled": apparmor_enabled()},
            "mountExtensions": {"idmap": {"enabled": True}},
            "selinux": {"enabled": False},
        },
        "annotations": {"org.opencontainers.ketch.version": VERSION},
    }

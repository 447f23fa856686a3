"""What this build of ketch supports, as the runtime-spec ``features`` document.

runtime-spec features.md and features-linux.md. Every entry is what the code
really does today: a feature is listed only once it is implemented (seccomp,
AppArmor and SELinux are reported disabled until they are).
"""

from __future__ import annotations

from ketch.runtime.linux.capabilities import CAPABILITIES, last_cap
from ketch.runtime.linux.hooks import KINDS
from ketch.runtime.linux.mountopts import PROPAGATION_NAMES, flag_option_names
from ketch.runtime.linux.namespaces import FLAGS
from ketch.runtime.spec.default import OCI_VERSION

VERSION = "0.1.0"


def features() -> dict:
    """The features document (a dict ready for ``json.dumps``)."""
    limit = last_cap()
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(KINDS),
        "mountOptions": sorted(flag_option_names() | PROPAGATION_NAMES),
        "linux": {
            "namespaces": sorted(FLAGS),
            "capabilities": [name for name, num in CAPABILITIES.items() if num <= limit],
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": False},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {"org.opencontainers.ketch.version": VERSION},
    }

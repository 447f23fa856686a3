"""Linux security modules: ``process.apparmorProfile``, ``process.selinuxLabel``,
``linux.mountLabel`` (runtime-spec config.md "Linux Process", config-linux.md
"Mount Label").

AppArmor: a profile requested on a host without AppArmor is an error, as in
runc; with AppArmor the profile is set for the next execve through
``/proc/self/attr/apparmor/exec`` (``/proc/self/attr/exec`` on older kernels),
after checking that the file really lives on procfs. SELinux labels are not
applied yet: on a host without SELinux they are meaningless and reported with a
warning, on a host with SELinux the container is refused rather than run
unlabelled.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ketch.runtime.errors import KetchError


def _is_procfs(dev: int) -> bool:
    """True when device ``dev`` is a mounted proc filesystem (per mountinfo)."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            major, minor = fields[2].split(":")
            if fields[fields.index("-") + 1] == "proc" and \
                    os.makedev(int(major), int(minor)) == dev:
                return True
    return False


def apparmor_enabled() -> bool:
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read().strip() == "Y"
    except OSError:
        return False


def selinux_enabled() -> bool:
    return os.path.exists("/sys/fs/selinux/enforce")


def check_lsm(spec: dict, warn: Callable[[str], None]) -> None:
    """Refuse what cannot be honoured on this host (before anything is created)."""
    process = spec.get("process") or {}
    if process.get("apparmorProfile") and not apparmor_enabled():
        raise KetchError("apparmor profile requested but AppArmor is not enabled on this host")
    labels = [f for f, v in (("process.selinuxLabel", process.get("selinuxLabel")),
                             ("linux.mountLabel", (spec.get("linux") or {}).get("mountLabel")))
              if v]
    if labels and selinux_enabled():
        raise KetchError(f"{', '.join(labels)}: SELinux labels are not supported yet")
    for field in labels:
        warn(f"{field} is ignored: SELinux is not enabled on this host")


def apply_apparmor(profile: str | None) -> None:
    """Ask for ``profile`` at the next execve; raises ``KetchError``."""
    if not profile:
        return
    for path in ("/proc/self/attr/apparmor/exec", "/proc/self/attr/exec"):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            continue
        try:
            # a rootfs-provided /proc could swallow the write: insist on procfs
            if not _is_procfs(os.fstat(fd).st_dev):
                raise KetchError(f"{path} is not on procfs")
            os.write(fd, f"exec {profile}".encode())
            return
        except OSError as e:
            raise KetchError(f"apply apparmor profile {profile!r}: {e.strerror}") from e
        finally:
            os.close(fd)
    raise KetchError("apply apparmor profile: no AppArmor exec attribute in /proc")

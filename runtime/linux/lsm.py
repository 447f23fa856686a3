"""Linux security modules: ``process.apparmorProfile``, ``process.selinuxLabel``,
``linux.mountLabel`` (runtime-spec config.md "Linux Process", config-linux.md
"Mount Label").

AppArmor: a profile requested on a host without AppArmor is an error, as in
runc; with AppArmor the profile is set for the next execve through
``/proc/self/attr/apparmor/exec`` (``/proc/self/attr/exec`` on older kernels),
after checking with fstatfs(2) that the file really lives on procfs. SELinux labels are not
applied yet: on a host without SELinux they are meaningless and reported with a
warning, on a host with SELinux the container is refused rather than run
unlabelled.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ketch.runtime import syscalls as s
from ketch.runtime.errors import KetchError
from ketch.runtime.linux.procfs import ProcfsError, open_procfs
from ketch.runtime.syscalls import Syscalls

# where the profile for the next execve is written (the second on kernels < 5.1)
APPARMOR_EXEC_ATTRS = ("/proc/self/attr/apparmor/exec", "/proc/self/attr/exec")


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


def check_exec_lsm(process: dict, container_label: str | None = None) -> None:
    """Refuse what an ``exec``'d ``process`` asks of an LSM this host cannot honour.

    ``process``: the runtime-spec ``process`` object (``exec --apparmor`` and
    ``--process-label`` set ``apparmorProfile`` and ``selinuxLabel``);
    ``container_label``: the container's own ``process.selinuxLabel``. A profile
    without AppArmor gets ``create``'s error; a new label without SELinux is
    refused in runc's words, as runc's exec refuses it. The container's own
    label passes: ``create`` already reported it (``check_lsm``), and refusing
    it would refuse every exec into that container. Raises ``KetchError``.
    """
    if process.get("apparmorProfile") and not apparmor_enabled():
        raise KetchError("apparmor profile requested but AppArmor is not enabled on this host")
    if process.get("selinuxLabel") and process["selinuxLabel"] != container_label:
        if not selinux_enabled():
            raise KetchError("selinux label is specified in config, but selinux is disabled "
                             "or not supported")
        raise KetchError("process.selinuxLabel: SELinux labels are not supported yet")


def apply_apparmor(profile: str | None, sc: Syscalls | None = None) -> None:
    """Ask for ``profile`` at the next execve; raises ``KetchError``.

    The attribute file is written only once verified to be on procfs
    (``procfs.open_procfs``): a plain file planted at ``/proc/self/attr/...``
    would otherwise swallow the profile and the process would run unconfined.
    """
    if not profile:
        return
    sc = sc or s.linux()
    for path in APPARMOR_EXEC_ATTRS:
        try:
            fd = open_procfs(sc, path, os.O_WRONLY)
        except FileNotFoundError:
            continue
        except ProcfsError as e:
            raise KetchError(f"apply apparmor profile {profile!r}: {e}") from None
        except OSError as e:
            raise KetchError(f"apply apparmor profile {profile!r}: {e.strerror}") from e
        try:
            os.write(fd, f"exec {profile}".encode())
            return
        except OSError as e:
            raise KetchError(f"apply apparmor profile {profile!r}: {e.strerror}") from e
        finally:
            os.close(fd)
    raise KetchError("apply apparmor profile: no AppArmor exec attribute in /proc")

"""Writes into procfs that a fake ``/proc`` cannot swallow or redirect.

The rootfs, or a mount over ``/proc``, can provide plain files at the paths
the runtime writes (``/proc/self/attr/*``, ``/proc/self/oom_score_adj``,
``/proc/sys/...``); a write there would be silently lost, or land in a file
the container controls, while the runtime believes a security setting is in
force. So each such file is opened without following a final symlink and the
open fd is checked with fstatfs(2) to be on procfs (``PROC_SUPER_MAGIC``)
before anything is written (runc does the same through its procfs handle).

Sources: proc(5), statfs(2) (``PROC_SUPER_MAGIC``); runtime-spec config.md
"Linux Process" (``apparmorProfile``, ``oomScoreAdj``), config-linux.md
"Sysctl".
"""

from __future__ import annotations

import os

from ketch.runtime.errors import KetchError
from ketch.runtime.syscalls import Syscalls

PROC_SUPER_MAGIC = 0x9FA0


class ProcfsError(KetchError):
    """A procfs file was missing, not on procfs, or refused the write."""


def open_procfs(sc: Syscalls, path: str, flags: int) -> int:
    """Open ``path`` (under ``/proc``) and return the fd once it is verified to be on
    procfs. ``flags``: os.O_* (O_CLOEXEC and O_NOFOLLOW are added).

    Raises ``ProcfsError`` when the file is not on procfs (the fd is closed),
    ``OSError`` from open(2).
    """
    fd = os.open(path, flags | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        if sc.fstatfs_type(fd) != PROC_SUPER_MAGIC:
            raise ProcfsError(f"{path} is not on procfs (a fake /proc in the rootfs "
                              "or a mount over it?); refusing to write to it")
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_procfs(sc: Syscalls, path: str, data: str, what: str) -> None:
    """Write ``data`` to the procfs file ``path``; ``what`` names the config field.

    Raises ``ProcfsError`` naming ``what`` and ``path`` on any failure.
    """
    try:
        fd = open_procfs(sc, path, os.O_WRONLY)
    except ProcfsError as e:
        raise ProcfsError(f"{what}: {e}") from None
    except OSError as e:
        raise ProcfsError(f"{what}: open {path}: {e.strerror}") from e
    try:
        os.write(fd, data.encode())
    except OSError as e:
        raise ProcfsError(f"{what}: write {path}: {e.strerror}") from e
    finally:
        os.close(fd)

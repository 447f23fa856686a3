"""In-root path resolution: a path looked up as if ``root`` were ``/``.

Used wherever the runtime touches a path inside the container's rootfs from the
host side (mount destinations, devices, masked paths), so that a symlink in the
rootfs can never lead outside it (the CVE-2021-30465 class). ``..`` clamps at
the root and absolute symlink targets are re-rooted, like openat2(2)
``RESOLVE_IN_ROOT``. The walk is fd-based: every component is opened with
``O_NOFOLLOW`` relative to its parent's fd, so nothing is resolved by the host
kernel's path walk.

runtime-spec config.md "Mounts": destinations are paths inside the container.
"""

from __future__ import annotations

import errno
import os
import stat

MAX_SYMLINKS = 255
_O_PATH = os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW


class PathEscapeError(OSError):
    """Raised when a path cannot be resolved inside the root (loops, bad names)."""


def _split(path: str) -> list[str]:
    return [p for p in path.split("/") if p and p != "."]


def open_in_root(root_fd: int, path: str, *, create: str | None = None,
                 mode: int = 0o755) -> int:
    """Open ``path`` inside the tree of ``root_fd`` with ``O_PATH``; return the new fd.

    ``path``: a container path (absolute or relative to the root; ``..`` clamps).
    ``create``: None to only look up; ``"dir"`` to create missing components as
    directories; ``"file"`` to create missing parents as directories and the last
    component as an empty regular file. The last component is never followed if
    it is a symlink when ``create`` is set and it dangles; otherwise symlinks are
    followed, re-rooted.

    Raises ``FileNotFoundError`` (missing, ``create`` unset), ``NotADirectoryError``,
    ``PathEscapeError`` (too many symlinks), or other ``OSError`` from the kernel.
    The caller owns (and must close) the returned fd.
    """
    pending = _split(path)
    stack: list[int] = [os.dup(root_fd)]  # fds of the directories walked so far
    links = 0
    try:
        while pending:
            name = pending.pop(0)
            if name == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            parent = stack[-1]
            is_last = not pending
            try:
                fd = os.open(name, _O_PATH, dir_fd=parent)
            except FileNotFoundError:
                if create is None:
                    raise
                if is_last and create == "file":
                    os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
                                     | os.O_NOFOLLOW, 0o644, dir_fd=parent))
                else:
                    os.mkdir(name, mode, dir_fd=parent)
                fd = os.open(name, _O_PATH, dir_fd=parent)
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_SYMLINKS:
                    os.close(fd)
                    raise PathEscapeError(errno.ELOOP, "too many levels of symbolic links", path)
                target = os.readlink(name, dir_fd=parent)
                os.close(fd)
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                pending = _split(target) + pending
                continue
            if not is_last and not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
            stack.append(fd)
        result = stack.pop()
        return result
    finally:
        for fd in stack:
            os.close(fd)


def resolve_in_root(root: str, path: str) -> str:
    """Host path of container path ``path`` under host directory ``root``.

    Every symlink on the way is resolved in-root; components that do not exist
    are appended lexically (``..`` still clamping). Intended for messages and
    for callers that then re-open the result with ``open_in_root``; use
    ``open_in_root`` + ``fd_path`` where a race matters.
    Raises ``PathEscapeError`` on symlink loops.
    """
    pending = _split(path)
    parts: list[str] = []
    links = 0
    while pending:
        name = pending.pop(0)
        if name == "..":
            if parts:
                parts.pop()
            continue
        candidate = os.path.join(root, *parts, name)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            parts.append(name)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > MAX_SYMLINKS:
                raise PathEscapeError(errno.ELOOP, "too many levels of symbolic links", path)
            target = os.readlink(candidate)
            if target.startswith("/"):
                parts = []
            pending = _split(target) + pending
            continue
        parts.append(name)
    return os.path.join(root, *parts)


def fd_path(fd: int) -> str:
    """The ``/proc/self/fd/N`` magic link for ``fd`` (mount(2) follows it to the object)."""
    return f"/proc/self/fd/{fd}"

"""In-root path resolution: a path looked up as if ``root`` were ``/``.

The one resolver of the project: the runtime uses it wherever it touches a
path inside the container's rootfs from the host side (mount destinations,
devices, masked paths), the image tool for every layer entry it extracts
(``ketch.image.paths``), so that a symlink in the rootfs can never lead outside
it (the CVE-2021-30465 class; image-spec layer.md hardlinks/entries). ``..``
clamps at the root and absolute symlink targets are re-rooted.

:func:`open_in_root` asks the kernel first: openat2(2) with
``RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`` (Linux 5.6) resolves the whole path
in one call, race-free. When the kernel lacks openat2 (ENOSYS, or EPERM from a
seccomp filter), when it reports a rename race (EAGAIN) or a symlink it will
not follow (ELOOP: a loop, or a magic link such as ``/proc/self/fd/N`` under a
mounted proc, whose target the walk reads as text and re-roots) and when
missing components must be created, :func:`walk_in_root` does the same thing by hand:
every component is opened with ``O_NOFOLLOW`` relative to its parent's fd and
symlinks are expanded in-root, so nothing is resolved by the host kernel's
path walk. Both follow at most :data:`MAX_SYMLINKS` symlinks (the kernel's
limit for openat2).

runtime-spec config.md "Mounts": destinations are paths inside the container.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ketch.runtime.syscalls import Syscalls

# Linux's MAXSYMLINKS (fs/namei.c): openat2 gives up after 40 links, and so does the walk.
MAX_SYMLINKS = 40
_O_PATH = os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW

# linux/openat2.h
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

# errnos after which the hand walk takes over (see module docstring)
_FALLBACK_ERRNOS = frozenset({errno.ENOSYS, errno.EPERM, errno.EAGAIN, errno.EINVAL})

_openat2_usable = True


class PathEscapeError(OSError):
    """Raised when a path cannot be resolved inside the root (loops, bad names)."""


def _split(path: str) -> list[str]:
    return [p for p in path.split("/") if p and p != "."]


def _syscalls() -> Syscalls:
    from ketch.runtime.syscalls import linux

    return linux()


def open_in_root(root_fd: int, path: str, *, create: str | None = None,
                 mode: int = 0o755, syscalls: Syscalls | None = None) -> int:
    """Open ``path`` inside the tree of ``root_fd`` with ``O_PATH``; return the new fd.

    ``path``: a container path (absolute or relative to the root; ``..`` clamps).
    ``create``: None to only look up; ``"dir"`` to create missing components as
    directories (``mode``); ``"file"`` to create missing parents as directories
    and the last component as an empty regular file. Symlinks, the last one
    included, are followed, re-rooted; a dangling one is created at its in-root
    target when ``create`` is set. ``syscalls``: the seam to use (default: the
    real kernel).

    Raises ``FileNotFoundError`` (missing, ``create`` unset), ``NotADirectoryError``,
    ``PathEscapeError`` (too many symlinks), or other ``OSError`` from the kernel.
    The caller owns (and must close) the returned fd.
    """
    global _openat2_usable
    if _openat2_usable or syscalls is not None:
        sc = syscalls if syscalls is not None else _syscalls()
        try:
            return sc.openat2(root_fd, path or ".", _O_PATH & ~os.O_NOFOLLOW, 0,
                              RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
        except OSError as e:
            if e.errno == errno.ELOOP:
                # A real loop, or a magic link (/proc/self/fd/N in a mounted proc) that
                # RESOLVE_NO_MAGICLINKS refuses: the walk treats the latter's target as
                # text, re-rooted, as it always has, and raises PathEscapeError for the former.
                return walk_in_root(root_fd, path, create=create, mode=mode)
            if e.errno == errno.ENOENT and create is None:
                raise FileNotFoundError(errno.ENOENT, "no such file or directory",
                                        path) from None
            if e.errno == errno.ENOTDIR:
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", path) from None
            if e.errno == errno.ENOSYS and syscalls is None:
                _openat2_usable = False  # an old kernel stays old
            elif e.errno not in _FALLBACK_ERRNOS | {errno.ENOENT}:
                raise
    return walk_in_root(root_fd, path, create=create, mode=mode)


def open_plain(root_fd: int, path: str) -> int | None:
    """O_PATH fd of ``path`` below ``root_fd`` when no component is a symlink or ``..``.

    One openat2 call with ``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS``: a fast path
    for callers that must know the physical path (it is then ``path`` itself).
    Returns None when that does not resolve it (a symlink on the way, a missing
    component, no openat2): the caller falls back to :func:`open_in_root`.
    """
    if not _openat2_usable:
        return None
    try:
        # no O_NOFOLLOW: a symlink as the last component must fail (ELOOP) too
        return _syscalls().openat2(root_fd, path or ".", _O_PATH & ~os.O_NOFOLLOW, 0,
                                   RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
    except OSError:
        return None


def walk_in_root(root_fd: int, path: str, *, create: str | None = None,
                 mode: int = 0o755) -> int:
    """:func:`open_in_root` without openat2: the component-by-component fd walk.

    Same arguments, result and errors; public so it can be tested on its own.
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

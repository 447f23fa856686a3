"""In-root path resolution: treat a directory as ``/`` and never leave it.

Layer entries, hardlink targets and files the converter reads (``/etc/passwd``)
are names chosen by the image author. image-spec layer.md requires hardlinks to
stay inside the root filesystem and, implicitly, every entry too; this module is
the one place that turns such a name into something to operate on.

Resolution walks component by component from a directory file descriptor of the
root, opening each directory with ``O_NOFOLLOW``: ``..`` is clamped at the root,
a symlink met on the way is expanded *inside* the root (absolute targets are
re-rooted), and at most :data:`MAX_SYMLINKS` links are followed. The caller gets
a directory fd plus a final name and does its operation with ``dir_fd=`` and
no-follow flags, so a symlink can never redirect it outside the root. (An
``openat2(RESOLVE_IN_ROOT)`` fast path can replace the walk later; the contract
stays the same.)
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator

from ketch.image.errors import LayerError, PathNotFound

# Linux's MAXSYMLINKS (fs/namei.c) is 40; a deeper chain is a loop or an attack.
MAX_SYMLINKS = 40

_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def clean_name(name: str) -> list[str]:
    """Lexically clean a layer entry name into path components relative to the root.

    Leading ``/`` and ``./`` are dropped, ``.`` and empty components removed and
    ``..`` applied lexically. Returns ``[]`` for the root itself. Raises
    :class:`LayerError` when ``..`` would climb above the root (``../x``,
    ``a/../../x``) or the name contains a NUL byte.
    """
    if "\0" in name:
        raise LayerError(f"invalid entry name {name!r}: contains NUL")
    out: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not out:
                raise LayerError(f"refusing entry {name!r}: path escapes the root filesystem")
            out.pop()
            continue
        out.append(part)
    return out


class Root:
    """A directory used as ``/`` for in-root resolution.

    Open it with :meth:`open` (or use as a context manager); it holds an
    ``O_PATH`` fd of the root. All methods take names relative to the root
    (absolute names are re-rooted).
    """

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.fd = os.open(self.path, _DIR_FLAGS)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Root:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- resolution ------------------------------------------------------------

    def walk(self, components: list[str], *, follow_final: bool,
             create: bool = False) -> tuple[int, str, list[str]]:
        """Resolve ``components`` inside the root.

        Returns ``(dir_fd, name, parent_path)``: an ``O_PATH`` fd of the
        directory that holds the final component (the caller must close it),
        the final name (``""`` when the path is the root itself) and the
        physical path of that directory relative to the root as components.
        Symlinks in non-final components are always followed in-root; the final
        one only when ``follow_final``. With ``create``, missing intermediate
        directories are made (mode 0755, owned by the caller). Raises
        :class:`LayerError` for a non-directory in the middle of the path, a
        missing intermediate directory without ``create``, or a symlink loop.
        """
        pending = list(reversed(components))
        stack: list[tuple[str, int]] = []  # (name, fd) below the root
        links = 0

        def cur() -> int:
            return stack[-1][1] if stack else self.fd

        def pop() -> None:
            if stack:
                os.close(stack.pop()[1])

        def reset() -> None:
            while stack:
                pop()

        try:
            while pending:
                part = pending.pop()
                if part in ("", "."):
                    continue
                if part == "..":
                    pop()  # clamps at the root: popping an empty stack is a no-op
                    continue
                last = not any(p not in ("", ".") for p in pending)
                try:
                    st = os.stat(part, dir_fd=cur(), follow_symlinks=False)
                except FileNotFoundError:
                    st = None
                if st is not None and stat.S_ISLNK(st.st_mode) and (follow_final or not last):
                    links += 1
                    if links > MAX_SYMLINKS:
                        raise LayerError(
                            f"too many levels of symbolic links resolving {'/'.join(components)!r}")
                    target = os.readlink(part, dir_fd=cur())
                    if target.startswith("/"):
                        reset()
                    pending.extend(reversed(target.split("/")))
                    continue
                if last:
                    fd = os.dup(cur())
                    return fd, part, [n for n, _ in stack]
                if st is None:
                    if not create:
                        raise PathNotFound(
                            f"{'/'.join(components)!r}: parent directory {part!r} missing")
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=cur())
                elif not stat.S_ISDIR(st.st_mode):
                    raise PathNotFound(f"{'/'.join(components)!r}: {part!r} is not a directory")
                try:
                    fd = os.open(part, _DIR_FLAGS, dir_fd=cur())
                except OSError as e:
                    if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
                        raise LayerError(
                            f"{'/'.join(components)!r}: {part!r} changed during resolution") from None
                    raise
                stack.append((part, fd))
            # The path named a directory reached by following (root or symlink target).
            fd = os.dup(cur())
            return fd, "", [n for n, _ in stack]
        finally:
            reset()

    def resolve(self, path: str, *, follow_final: bool = True) -> str:
        """Host path that ``path`` names inside the root (for display and tests).

        The result is always the root or below it. Intermediate symlinks are
        resolved in-root; missing intermediate directories raise LayerError.
        """
        fd, name, parent = self.walk(path.split("/"), follow_final=follow_final)
        os.close(fd)
        return os.path.join(self.path, *parent, name) if (parent or name) else self.path

    @contextlib.contextmanager
    def parent_of(self, components: list[str], *, create: bool = False,
                  follow_final: bool = False) -> Iterator[tuple[int, str, list[str]]]:
        """Context manager around :meth:`walk` that closes the directory fd."""
        fd, name, parent = self.walk(components, follow_final=follow_final, create=create)
        try:
            yield fd, name, parent
        finally:
            os.close(fd)

    def read_file(self, path: str, limit: int = 16 * 1024 * 1024) -> bytes | None:
        """Read a regular file named by ``path`` inside the root (symlinks followed in-root).

        Returns ``None`` if it does not exist; raises :class:`LayerError` if it is
        not a regular file or larger than ``limit`` bytes.
        """
        try:
            fd, name, _ = self.walk(path.split("/"), follow_final=True)
        except PathNotFound:
            return None
        try:
            if not name:
                raise LayerError(f"{path!r} is a directory")
            try:
                ffd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                              dir_fd=fd)
            except FileNotFoundError:
                return None
        finally:
            os.close(fd)
        with os.fdopen(ffd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise LayerError(f"{path!r} in the root filesystem is not a regular file")
            data = f.read(limit + 1)
        if len(data) > limit:
            raise LayerError(f"{path!r} in the root filesystem is too large")
        return data


def chmod_nofollow(dir_fd: int, name: str, mode: int) -> None:
    """chmod ``name`` in ``dir_fd`` without following a symlink (symlinks are skipped).

    Linux has no lchmod; an ``O_PATH|O_NOFOLLOW`` fd plus its ``/proc/self/fd``
    magic link reaches exactly the inode we looked at (glibc does the same).
    """
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        if stat.S_ISLNK(os.fstat(fd).st_mode):
            return
        os.chmod(f"/proc/self/fd/{fd}", mode)
    finally:
        os.close(fd)


def remove_nofollow(dir_fd: int, name: str) -> bool:
    """Remove ``name`` (a whole tree if it is a real directory) without following symlinks.

    Returns False when nothing was there.
    """
    import shutil

    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)
    return True

"""In-root path resolution for the image side: treat a directory as ``/`` and never leave it.

Layer entries, hardlink targets and files the converter reads (``/etc/passwd``)
are names chosen by the image author. image-spec layer.md requires hardlinks to
stay inside the root filesystem and, implicitly, every entry too; this module is
the one place on the image side that turns such a name into something to
operate on.

Resolution itself is the runtime's (``ketch.runtime.linux.paths.open_in_root``:
openat2 ``RESOLVE_IN_ROOT`` with a tested fallback walk), so the unpacker and
the runtime share one resolver: ``..`` clamps at the root, symlinks are
expanded *inside* the root (absolute targets re-rooted), at most 40 are
followed. This module adapts it to what layer application needs: the
directory that holds an entry (its parents resolved in-root, the final name
never followed) plus that directory's physical path, and the image errors
(:class:`~ketch.image.errors.LayerError`, :class:`~ketch.image.errors.PathNotFound`).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator

from ketch.image.errors import LayerError, PathNotFound
from ketch.runtime.linux.paths import PathEscapeError, open_in_root, open_plain

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
    # Most names (after the "./" many tars start with) are clean already.
    parts = (name[2:] if name.startswith("./") else name).split("/")
    if "" not in parts and "." not in parts and ".." not in parts:
        return parts
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
        self._real = os.readlink(f"/proc/self/fd/{self.fd}")
        self._real_prefix = self._real.rstrip("/") + "/"

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Root:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- resolution ------------------------------------------------------------

    def _open(self, components: list[str], create: bool, what: list[str]) -> int:
        """O_PATH fd of ``components`` resolved in-root (every symlink followed)."""
        try:
            return open_in_root(self.fd, "/".join(components), create="dir" if create else None)
        except FileNotFoundError:
            raise PathNotFound(f"{'/'.join(what)!r}: parent directory missing") from None
        except NotADirectoryError:
            raise PathNotFound(f"{'/'.join(what)!r}: a parent is not a directory") from None
        except PathEscapeError:
            raise LayerError(
                f"too many levels of symbolic links resolving {'/'.join(what)!r}") from None

    def _physical(self, fd: int) -> list[str]:
        """Path of ``fd`` relative to the root, as components (``[]`` for the root)."""
        real = os.readlink(f"/proc/self/fd/{fd}")
        if real == self._real:
            return []
        if not real.startswith(self._real_prefix):
            # The resolver guarantees this cannot happen; refuse rather than guess.
            raise LayerError(f"resolved path {real!r} is outside the root filesystem")
        return real[len(self._real_prefix):].split("/")

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
        :class:`PathNotFound` for a non-directory in the middle of the path or
        a missing intermediate directory without ``create`` (and, with
        ``follow_final``, a missing final component), :class:`LayerError` for
        a symlink loop.
        """
        comps = [c for c in components if c not in ("", ".")]
        if follow_final or not comps or comps[-1] == "..":
            fd = self._open(comps, create, comps)
            try:
                phys = self._physical(fd)
            finally:
                os.close(fd)
            if not phys:
                return os.dup(self.fd), "", []
            parent, name = phys[:-1], phys[-1]
            return self._open(parent, False, comps), name, parent
        parent = comps[:-1]
        # Most entries have no symlink and no ".." above them: then one openat2
        # call finds the directory and its physical path is the name itself.
        pfd = open_plain(self.fd, "/".join(parent)) if ".." not in parent else None
        known = pfd is not None
        if pfd is None:
            pfd = self._open(parent, create, comps)
        try:
            if not stat.S_ISDIR(os.fstat(pfd).st_mode):
                raise PathNotFound(f"{'/'.join(comps)!r}: {comps[-2]!r} is not a directory")
            if not known and parent:
                parent = self._physical(pfd)
        except BaseException:
            os.close(pfd)
            raise
        return pfd, comps[-1], parent

    def make_dirs(self, path: str) -> None:
        """Create directory ``path`` (and missing parents, mode 0755) inside the root.

        Symlinks on the way are followed in-root. Raises :class:`PathNotFound`
        when a component exists and is not a directory.
        """
        fd = self._open(path.split("/"), True, path.split("/"))
        try:
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                raise PathNotFound(f"{path!r} exists and is not a directory")
        finally:
            os.close(fd)

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
        try:
            # checked on the fd before fdopen, which refuses a directory with a bare OSError
            if not stat.S_ISREG(os.fstat(ffd).st_mode):
                raise LayerError(f"{path!r} in the root filesystem is not a regular file")
        except BaseException:
            os.close(ffd)
            raise
        with os.fdopen(ffd, "rb") as f:
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

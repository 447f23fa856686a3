"""The state store: one directory per container under the runtime root.

``<root>/<id>/state.json`` holds what the runtime recorded at create (the
runtime-spec "State" fields plus the config snapshot, the init's start time
and the cgroup paths); ``<root>/<id>/exec.fifo`` exists while the container
is ``created``; ``<root>/<id>/lock`` serialises commands on one container.
runtime-spec runtime.md "State"; container IDs as runc accepts them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator

from ketch.runtime.errors import (
    ContainerExistsError,
    ContainerNotExistError,
    InvalidIDError,
    KetchError,
)

STATE_FILE = "state.json"
FIFO_NAME = "exec.fifo"
LOCK_NAME = "lock"

# ASCII only, and fullmatch: \w would take any Unicode letter and $ a final newline
_ID_RE = re.compile(r"[\w+\-.]+", re.ASCII)


def validate_id(container_id: str) -> None:
    """Raise ``InvalidIDError`` unless ``container_id`` is a valid ID (runc's rule:
    letters, digits, ``_ + - .``, not ``.`` or ``..``)."""
    if not container_id or container_id in (".", "..") or not _ID_RE.fullmatch(container_id):
        raise InvalidIDError("invalid container ID format")


class StateDir:
    """The directory of one container: paths, lock, state.json I/O."""

    def __init__(self, root: str, container_id: str) -> None:
        validate_id(container_id)
        check_root(root)
        self.root = os.path.abspath(root)
        self.id = container_id
        self.path = os.path.join(self.root, container_id)
        self._lock_fd: int | None = None

    @property
    def fifo(self) -> str:
        return os.path.join(self.path, FIFO_NAME)

    def exists(self) -> bool:
        return os.path.isfile(os.path.join(self.path, STATE_FILE))

    def create(self) -> None:
        """mkdir the container directory (and the root, mode 0700) and take the lock.

        Raises ``ContainerExistsError`` if the ID is taken.
        """
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        try:
            os.mkdir(self.path, 0o711)
        except FileExistsError:
            raise ContainerExistsError(self.id) from None
        self.lock()

    def lock(self) -> None:
        """Take the container's exclusive lock (blocking). Raises ``ContainerNotExistError``."""
        try:
            fd = os.open(os.path.join(self.path, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            raise ContainerNotExistError(self.id) from None
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._lock_fd = fd

    def try_lock(self) -> bool:
        """Take the lock if it is free (creating the lock file); False if it is held."""
        try:
            fd = os.open(os.path.join(self.path, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.lock()
        try:
            yield
        finally:
            self.unlock()

    def load(self) -> dict:
        """The saved state document. Raises ``ContainerNotExistError``."""
        path = os.path.join(self.path, STATE_FILE)
        try:
            with open(path) as f:
                return json.load(f)
        except (FileNotFoundError, NotADirectoryError):
            raise ContainerNotExistError(self.id) from None
        except ValueError as e:
            raise KetchError(f"load container {self.id}: {path}: {e}") from None

    def save(self, doc: dict) -> None:
        """Write state.json atomically (temp file + rename)."""
        tmp = os.path.join(self.path, f".{STATE_FILE}.tmp")
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.rename(tmp, os.path.join(self.path, STATE_FILE))

    def remove(self) -> None:
        """Delete the whole container directory."""
        self.unlock()
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.path)


def check_root(root: str) -> None:
    """Raise ``KetchError`` (runc's text) when ``--root`` exists but is not a directory."""
    if os.path.exists(root) and not os.path.isdir(root):
        raise KetchError(f"mkdir {root}: not a directory")


def list_ids(root: str) -> list[str]:
    """IDs of the containers under ``root`` (sorted); missing root → empty.

    Raises ``KetchError`` when ``root`` is not a directory."""
    check_root(root)
    try:
        names = os.listdir(root)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return []
        raise
    return sorted(n for n in names if os.path.isfile(os.path.join(root, n, STATE_FILE)))

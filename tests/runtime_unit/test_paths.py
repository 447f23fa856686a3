"""In-root resolution: symlinks and ``..`` never lead outside the root."""

from __future__ import annotations

import os

import pytest

from ketch.runtime.linux.paths import PathEscapeError, open_in_root, resolve_in_root


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("inside\n")
    (root / "abs").symlink_to("/etc")
    (root / "up").symlink_to("../../..")
    (root / "loop").symlink_to("loop")
    (root / "file").write_text("x")
    (tmp_path / "outside").write_text("host\n")
    return root


def _real(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


@pytest.mark.parametrize(("path", "expected"), [
    ("/etc/passwd", "etc/passwd"),
    ("abs/passwd", "etc/passwd"),          # absolute target re-rooted
    ("up/etc/passwd", "etc/passwd"),       # .. clamps at the root
    ("../../etc/passwd", "etc/passwd"),
    ("/etc/../../etc/passwd", "etc/passwd"),
])
def test_resolution_stays_inside(tree, path, expected):
    assert resolve_in_root(str(tree), path) == str(tree / expected)
    root_fd = os.open(tree, os.O_PATH | os.O_DIRECTORY)
    try:
        assert _real(open_in_root(root_fd, path)) == str(tree / expected)
    finally:
        os.close(root_fd)


def test_create_dir_through_escaping_symlink_lands_inside(tree, tmp_path):
    root_fd = os.open(tree, os.O_PATH | os.O_DIRECTORY)
    try:
        fd = open_in_root(root_fd, "up/newdir/sub", create="dir")
        assert _real(fd) == str(tree / "newdir" / "sub")
        fd = open_in_root(root_fd, "abs/newfile", create="file")
        assert _real(fd) == str(tree / "etc" / "newfile")
    finally:
        os.close(root_fd)
    assert not (tmp_path / "newdir").exists()
    assert not os.path.exists("/etc/newfile")


def test_symlink_loop_is_refused(tree):
    root_fd = os.open(tree, os.O_PATH | os.O_DIRECTORY)
    try:
        with pytest.raises(PathEscapeError):
            open_in_root(root_fd, "loop/x")
    finally:
        os.close(root_fd)
    with pytest.raises(PathEscapeError):
        resolve_in_root(str(tree), "loop")


def test_missing_without_create_raises(tree):
    root_fd = os.open(tree, os.O_PATH | os.O_DIRECTORY)
    try:
        with pytest.raises(FileNotFoundError):
            open_in_root(root_fd, "nope/x")
        with pytest.raises(NotADirectoryError):
            open_in_root(root_fd, "file/x")
    finally:
        os.close(root_fd)

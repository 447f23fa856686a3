"""In-root resolution: symlinks and ``..`` never lead outside the root.

Every case runs against both ways ``open_in_root`` can resolve: the kernel's
openat2(RESOLVE_IN_ROOT) and the fallback fd walk on its own."""

from __future__ import annotations

import os

import pytest

from ketch.runtime.linux import paths
from ketch.runtime.linux.paths import PathEscapeError, resolve_in_root, walk_in_root
from ketch.runtime.syscalls.fake import RecordingSyscalls


@pytest.fixture(params=["openat2", "walk"])
def opener(request):
    """``open_in_root`` through openat2, or the fallback walk alone."""
    return paths.open_in_root if request.param == "openat2" else walk_in_root


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
def test_resolution_stays_inside(opener, tree, path, expected):
    assert resolve_in_root(str(tree), path) == str(tree / expected)
    root_fd = os.open(tree, os.O_PATH | os.O_DIRECTORY)
    try:
        assert _real(opener(root_fd, path)) == str(tree / expected)
    finally:
        os.close(root_fd)


def test_create_dir_through_escaping_symlink_lands_inside(opener, tree, tmp_path):
    root_fd = os.open(tree, os.O_PATH | os.O_DIRECTORY)
    try:
        fd = opener(root_fd, "up/newdir/sub", create="dir")
        assert _real(fd) == str(tree / "newdir" / "sub")
        fd = opener(root_fd, "abs/newfile", create="file")
        assert _real(fd) == str(tree / "etc" / "newfile")
    finally:
        os.close(root_fd)
    assert not (tmp_path / "newdir").exists()
    assert not os.path.exists("/etc/newfile")


def test_symlink_loop_is_refused(opener, tree):
    root_fd = os.open(tree, os.O_PATH | os.O_DIRECTORY)
    try:
        with pytest.raises(PathEscapeError):
            opener(root_fd, "loop/x")
    finally:
        os.close(root_fd)
    with pytest.raises(PathEscapeError):
        resolve_in_root(str(tree), "loop")


def test_missing_without_create_raises(opener, tree):
    root_fd = os.open(tree, os.O_PATH | os.O_DIRECTORY)
    try:
        with pytest.raises(FileNotFoundError):
            opener(root_fd, "nope/x")
        with pytest.raises(NotADirectoryError):
            opener(root_fd, "file/x")
    finally:
        os.close(root_fd)


def test_openat2_is_used_first_and_its_absence_falls_back(tree):
    fake = RecordingSyscalls()  # answers ENOSYS, like a kernel before 5.6
    root_fd = os.open(tree, os.O_PATH | os.O_DIRECTORY)
    try:
        fd = paths.open_in_root(root_fd, "abs/passwd", syscalls=fake)
        assert _real(fd) == str(tree / "etc" / "passwd")
    finally:
        os.close(root_fd)
    assert fake.calls == [("openat2", "abs/passwd", os.O_PATH | os.O_CLOEXEC, 0,
                           paths.RESOLVE_IN_ROOT | paths.RESOLVE_NO_MAGICLINKS)]


def test_openat2_real_kernel_resolves_in_root(tree):
    from ketch.runtime.syscalls import linux

    root_fd = os.open(tree, os.O_PATH | os.O_DIRECTORY)
    try:
        fd = linux().openat2(root_fd, "up/abs/passwd", os.O_PATH | os.O_CLOEXEC, 0,
                             paths.RESOLVE_IN_ROOT)
        assert _real(fd) == str(tree / "etc" / "passwd")
    finally:
        os.close(root_fd)


def test_open_plain_only_takes_symlink_free_paths(tree):
    root_fd = os.open(tree, os.O_PATH | os.O_DIRECTORY)
    try:
        assert _real(paths.open_plain(root_fd, "etc/passwd")) == str(tree / "etc" / "passwd")
        assert paths.open_plain(root_fd, "abs") is None         # final symlink
        assert paths.open_plain(root_fd, "abs/passwd") is None  # symlink on the way
        assert paths.open_plain(root_fd, "../etc") is None      # ".." never
        assert paths.open_plain(root_fd, "nope") is None
    finally:
        os.close(root_fd)

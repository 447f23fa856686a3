"""Rootfs logic against the recording syscall fake: no root needed."""

from __future__ import annotations

import os

import pytest

from ketch.runtime import syscalls as s
from ketch.runtime.linux import rootfs
from ketch.runtime.linux.mountopts import parse_options
from ketch.runtime.spec.default import default_spec
from ketch.runtime.syscalls.fake import RecordingSyscalls


def test_parse_options_flags_propagation_and_data():
    opts = parse_options(["nosuid", "ro", "rw", "rbind", "rprivate", "mode=755", "size=1k"])
    assert opts.flags == s.MS_NOSUID | s.MS_BIND | s.MS_REC
    assert opts.propagation == [s.MS_PRIVATE | s.MS_REC]
    assert opts.data_string == "mode=755,size=1k"


def test_parse_recursive_idmap_and_copyup_options():
    opts = parse_options(["rbind", "rro", "rnosuid", "rsuid", "rnoatime", "rstrictatime",
                          "ridmap", "tmpcopyup"])
    assert opts.flags == s.MS_BIND | s.MS_REC  # none of them is a mount(2) flag
    # the last atime mode wins; rsuid undid rnosuid
    assert opts.rec_set == s.MOUNT_ATTR_RDONLY | s.MOUNT_ATTR_STRICTATIME
    assert opts.rec_clear == s.MOUNT_ATTR_NOSUID | s.MOUNT_ATTR__ATIME
    assert (opts.idmap, opts.tmpcopyup, opts.data) == ("ridmap", True, [])


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "rootfs" / "evil").symlink_to("/")
    (tmp_path / "data").mkdir()
    return tmp_path


def _targets(sc: RecordingSyscalls) -> list[str]:
    return [c[2] for c in sc.calls if c[0] == "mount"]


def test_mounts_go_through_fd_paths_and_create_destinations(bundle):
    sc = RecordingSyscalls()
    root_fd = os.open(bundle / "rootfs", os.O_PATH | os.O_DIRECTORY)
    try:
        rootfs.mount_entry(sc, root_fd, {"destination": "/proc", "type": "proc",
                                         "source": "proc"}, str(bundle))
        rootfs.mount_entry(sc, root_fd, {"destination": "/mnt/data", "type": "bind",
                                         "source": "data", "options": ["rbind", "ro"]},
                           str(bundle))
    finally:
        os.close(root_fd)
    assert (bundle / "rootfs" / "proc").is_dir()
    assert (bundle / "rootfs" / "mnt" / "data").is_dir()
    mounts = [c for c in sc.calls if c[0] == "mount"]
    assert mounts[0][1:4] == ("proc", mounts[0][2], "proc")
    assert all(t.startswith("/proc/self/fd/") for t in _targets(sc))
    # bind from an fd of the source (checked and mounted as one object), then a
    # read-only remount of the same destination
    assert mounts[1][1].startswith("/proc/self/fd/") and mounts[1][4] == s.MS_BIND | s.MS_REC
    assert mounts[2][4] & (s.MS_REMOUNT | s.MS_RDONLY | s.MS_BIND) == \
        s.MS_REMOUNT | s.MS_RDONLY | s.MS_BIND


def test_destination_through_symlink_to_host_root_stays_inside(bundle):
    sc = RecordingSyscalls()
    root_fd = os.open(bundle / "rootfs", os.O_PATH | os.O_DIRECTORY)
    try:
        rootfs.mount_entry(sc, root_fd, {"destination": "/evil/ketch-test-escape",
                                         "type": "tmpfs", "source": "tmpfs"}, str(bundle))
    finally:
        os.close(root_fd)
    assert (bundle / "rootfs" / "ketch-test-escape").is_dir()
    assert not os.path.exists("/ketch-test-escape")


def test_bind_mount_with_missing_source_names_destination(bundle):
    sc = RecordingSyscalls()
    root_fd = os.open(bundle / "rootfs", os.O_PATH | os.O_DIRECTORY)
    try:
        with pytest.raises(rootfs.RootfsError, match="/mnt/x"):
            rootfs.mount_entry(sc, root_fd, {"destination": "/mnt/x", "type": "bind",
                                             "source": "/nonexistent-src", "options": ["bind"]},
                               str(bundle))
    finally:
        os.close(root_fd)
    assert sc.calls == []


def test_failed_mount_is_reported_with_destination(bundle):
    sc = RecordingSyscalls(fail={"mount": 1})
    root_fd = os.open(bundle / "rootfs", os.O_PATH | os.O_DIRECTORY)
    try:
        with pytest.raises(rootfs.RootfsError, match="'/proc'"):
            rootfs.mount_entry(sc, root_fd, {"destination": "/proc", "type": "proc",
                                             "source": "proc"}, str(bundle))
    finally:
        os.close(root_fd)


def test_prepare_root_defaults_to_rslave_then_binds_rootfs(bundle):
    sc = RecordingSyscalls()
    spec = default_spec()
    rootfs.prepare_root(sc, spec, str(bundle / "rootfs"))
    assert sc.calls[0] == ("mount", None, "/", None, s.MS_SLAVE | s.MS_REC, None)
    assert sc.calls[-1] == ("mount", str(bundle / "rootfs"), str(bundle / "rootfs"), "bind",
                            s.MS_BIND | s.MS_REC, None)


def test_rootfs_propagation_from_config(bundle):
    sc = RecordingSyscalls()
    spec = default_spec()
    spec["linux"]["rootfsPropagation"] = "private"
    rootfs.prepare_root(sc, spec, str(bundle / "rootfs"))
    assert sc.calls[0][4] == s.MS_PRIVATE


def test_spec_devices_replace_defaults_by_path():
    spec = default_spec()
    spec["linux"]["devices"] = [{"path": "/dev/null", "type": "c", "major": 1, "minor": 3,
                                 "fileMode": 0o600}, {"path": "/dev/fuse", "type": "c",
                                                      "major": 10, "minor": 229}]
    devices = {d.path: d for d in rootfs.spec_devices(spec)}
    assert devices["/dev/null"].file_mode == 0o600
    assert devices["/dev/fuse"].major == 10
    assert "/dev/tty" in devices


def test_pivot_root_sequence(tmp_path, monkeypatch):
    sc = RecordingSyscalls()
    monkeypatch.setattr(os, "fchdir", lambda fd: None)
    monkeypatch.setattr(os, "chdir", lambda path: None)
    rootfs.pivot_root(sc, str(tmp_path))
    assert sc.names() == ["pivot_root", "mount", "umount2"]
    assert sc.calls[1][4] == s.MS_SLAVE | s.MS_REC
    assert sc.calls[2] == ("umount2", ".", s.MNT_DETACH)


@pytest.mark.parametrize("propagation", ["shared", "rshared", "unbindable"])
def test_shared_or_unbindable_root_waits_until_after_pivot(bundle, propagation):
    sc = RecordingSyscalls()
    spec = default_spec()
    spec["linux"]["rootfsPropagation"] = propagation
    rootfs.prepare_root(sc, spec, str(bundle / "rootfs"))
    assert sc.calls[0][4] == s.MS_SLAVE | s.MS_REC


def test_recursive_options_set_attributes_on_the_new_mount(bundle):
    sc = RecordingSyscalls()
    root_fd = os.open(bundle / "rootfs", os.O_PATH | os.O_DIRECTORY)
    try:
        rootfs.mount_entry(sc, root_fd, {"destination": "/mnt", "type": "bind",
                                         "source": "data", "options": ["rbind", "rro"]},
                           str(bundle))
    finally:
        os.close(root_fd)
    assert sc.names() == ["mount", "mount_setattr"]
    assert sc.calls[1][2:] == (s.MOUNT_ATTR_RDONLY, 0, True, None)


def test_detached_idmapped_mount_is_moved_not_bound(bundle):
    sc = RecordingSyscalls()
    detached = os.open("/dev/null", os.O_RDONLY)
    root_fd = os.open(bundle / "rootfs", os.O_PATH | os.O_DIRECTORY)
    try:
        rootfs.mount_entry(sc, root_fd, {"destination": "/mnt", "type": "bind",
                                         "source": "data", "options": ["bind", "idmap", "ro"]},
                           str(bundle), detached)
    finally:
        os.close(root_fd)
    assert sc.names() == ["move_mount", "mount"]  # attached, then the read-only remount
    assert sc.calls[0][1] == detached
    with pytest.raises(OSError):
        os.fstat(detached)  # handed over: mount_entry closed it


def test_bind_source_swapped_between_check_and_mount(bundle, monkeypatch):
    """Escape 3, source side, made deterministic: the source directory is replaced
    by a file at the moment the destination is opened (after the source's type
    was looked at, before the mount). A runtime that checks and mounts by path
    creates a directory mount point and then mounts the file (or whatever the
    swap put there); ketch mounts the fd it checked, so mount point and source
    agree. (tests/runtime/test_escapes.py races the same thing for real.)"""
    import stat

    src = bundle / "vol"
    src.mkdir()
    real_open = rootfs.open_in_root

    def swapping_open(root_fd, path, **kw):
        if path == "/mnt" and src.is_dir():
            src.rmdir()
            src.write_text("swapped in")
        return real_open(root_fd, path, **kw)

    class Checking(RecordingSyscalls):
        def mount(self, source, target, fstype, flags, data):
            super().mount(source, target, fstype, flags, data)
            self.kinds = (stat.S_ISDIR(os.stat(source).st_mode),
                          stat.S_ISDIR(os.stat(target).st_mode))

    monkeypatch.setattr(rootfs, "open_in_root", swapping_open)
    sc = Checking()
    root_fd = os.open(bundle / "rootfs", os.O_PATH | os.O_DIRECTORY)
    try:
        rootfs.mount_entry(sc, root_fd, {"destination": "/mnt", "type": "bind",
                                         "source": "vol", "options": ["bind"]}, str(bundle))
    finally:
        os.close(root_fd)
    assert src.is_file(), "the swap did not happen"
    assert sc.kinds == (True, True), "mounted something other than what was checked"

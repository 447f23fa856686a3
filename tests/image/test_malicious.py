"""Hostile layers: nothing outside BUNDLE/rootfs may be created, changed or linked.

Each test puts sentinel files outside the bundle (and watches the host's
/etc/passwd), unpacks a crafted image with the real CLI, and checks the outcome:
either a clear error (exit 1, bundle removed) or a re-rooted result inside rootfs.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from .helpers import WH, D, Entry, F, H, L, LayoutBuilder, run_ki

HOST_PASSWD = "/etc/passwd"


def _fingerprint(path: str) -> tuple:
    st = os.lstat(path)
    with open(path, "rb") as f:
        return (st.st_ino, st.st_nlink, st.st_mode, st.st_mtime_ns, hashlib.sha256(f.read()).hexdigest())


class Scene:
    """tmp/w1/w2/w3/bundle (so ``rootfs/../../..`` is tmp/w1/w2, still inside tmp) with
    sentinels at every level between the bundle and tmp."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.deep = tmp / "w1" / "w2" / "w3"
        self.deep.mkdir(parents=True)
        self.bundle = self.deep / "bundle"
        self.rootfs = self.bundle / "rootfs"
        self.sentinels = {}
        for d in (tmp, tmp / "w1", tmp / "w1" / "w2", self.deep):
            for name in ("x", "evil", "outside", "passwd", "secret"):
                p = d / name
                p.write_bytes(f"sentinel {p}".encode())
                self.sentinels[str(p)] = _fingerprint(str(p))
        self.host_passwd = _fingerprint(HOST_PASSWD)
        self.before = self._tree()

    def _tree(self) -> set[str]:
        out = set()
        for dirpath, dirnames, filenames in os.walk(self.tmp):
            if os.path.abspath(dirpath).startswith(str(self.bundle)):
                dirnames[:] = []
                continue
            for n in dirnames + filenames:
                p = os.path.join(dirpath, n)
                if not p.startswith(str(self.bundle)):
                    out.add(p)
        return out

    def unpack(self, *layers: list[Entry], expect_ok: bool) -> str:
        b = LayoutBuilder(str(self.tmp / "layout"))
        b.tag("t", b.image(list(layers)))
        p = run_ki("unpack", f"{self.tmp / 'layout'}:t", str(self.bundle), check=False)
        if expect_ok:
            assert p.returncode == 0, p.stderr
        else:
            assert p.returncode == 1, p.stderr
            assert p.stderr.startswith("ketch-image: error: "), p.stderr
            assert len(p.stderr.strip().splitlines()) == 1, p.stderr
            assert not self.bundle.exists(), "a failed unpack must remove the bundle"
        return p.stderr

    def assert_outside_untouched(self) -> None:
        for path, fp in self.sentinels.items():
            assert _fingerprint(path) == fp, f"{path} was touched"
        assert _fingerprint(HOST_PASSWD) == self.host_passwd, "host /etc/passwd was touched"
        after = self._tree() - {str(self.tmp / "layout")}
        after = {p for p in after if not p.startswith(str(self.tmp / "layout"))}
        before = {p for p in self.before if not p.startswith(str(self.tmp / "layout"))}
        assert after == before, f"new files outside the bundle: {after - before}"
        for name in ("x", "evil", "outside", "secret", "passwd"):
            p = self.bundle / name
            assert not p.exists(), f"{p} created outside rootfs"


@pytest.fixture
def scene(tmp_path: Path) -> Scene:
    return Scene(tmp_path)


def test_dotdot_entry_is_refused(scene: Scene) -> None:
    err = scene.unpack([F("../x", b"pwned")], expect_ok=False)
    assert "escapes" in err
    scene.assert_outside_untouched()


def test_nested_dotdot_entry_is_refused(scene: Scene) -> None:
    scene.unpack([D("a"), F("a/../../../../x", b"pwned")], expect_ok=False)
    scene.assert_outside_untouched()


def test_absolute_symlink_parent_is_rerooted(scene: Scene) -> None:
    scene.unpack([D("etc"), L("a", "/etc"), F("a/passwd", b"root:x:0:0::/:/bin/sh\n")],
                 expect_ok=True)
    assert (scene.rootfs / "etc/passwd").read_bytes() == b"root:x:0:0::/:/bin/sh\n"
    assert os.readlink(scene.rootfs / "a") == "/etc"
    scene.assert_outside_untouched()


def test_absolute_symlink_to_missing_dir_is_rerooted(scene: Scene) -> None:
    scene.unpack([L("a", "/etc"), F("a/passwd", b"x")], expect_ok=True)
    assert (scene.rootfs / "etc/passwd").read_bytes() == b"x"
    scene.assert_outside_untouched()


def test_relative_climbing_symlink_is_clamped(scene: Scene) -> None:
    scene.unpack([L("a", "../../.."), F("a/evil", b"pwned")], expect_ok=True)
    assert (scene.rootfs / "evil").read_bytes() == b"pwned"
    scene.assert_outside_untouched()


def test_symlink_chain_escaping(scene: Scene) -> None:
    scene.unpack([D("d"), L("d/up", ".."), L("d/up2", "up/../.."), F("d/up2/outside", b"p")],
                 expect_ok=True)
    assert (scene.rootfs / "outside").read_bytes() == b"p"
    scene.assert_outside_untouched()


def test_symlink_replaced_final_component_not_followed(scene: Scene) -> None:
    # A later entry named like the symlink replaces the link, it does not write through it.
    target = scene.deep / "x"
    scene.unpack([L("x", str(target))], [F("x", b"replaced")], expect_ok=True)
    assert (scene.rootfs / "x").read_bytes() == b"replaced"
    scene.assert_outside_untouched()


def test_symlink_loop_is_refused(scene: Scene) -> None:
    err = scene.unpack([L("a", "b"), L("b", "a"), F("a/x", b"p")], expect_ok=False)
    assert "symbolic links" in err
    scene.assert_outside_untouched()


def test_hardlink_to_dotdot_outside_is_refused(scene: Scene) -> None:
    err = scene.unpack([H("hl", "../outside")], expect_ok=False)
    assert "escapes" in err
    scene.assert_outside_untouched()


def test_hardlink_deep_dotdot_is_refused(scene: Scene) -> None:
    scene.unpack([H("hl", "../../../../../secret")], expect_ok=False)
    scene.assert_outside_untouched()


def test_hardlink_to_absolute_host_file_is_refused(scene: Scene) -> None:
    err = scene.unpack([H("passwd", "/etc/passwd")], expect_ok=False)
    assert "does not exist" in err
    scene.assert_outside_untouched()


def test_hardlink_to_absolute_path_is_rerooted(scene: Scene) -> None:
    scene.unpack([D("etc"), F("etc/passwd", b"image passwd"), H("pw", "/etc/passwd")],
                 expect_ok=True)
    assert os.lstat(scene.rootfs / "pw").st_ino == os.lstat(scene.rootfs / "etc/passwd").st_ino
    scene.assert_outside_untouched()


def test_hardlink_through_escaping_symlink(scene: Scene) -> None:
    # l -> ../../.. ; l/secret resolves to rootfs/secret (absent), never tmp/w1/w2/secret
    err = scene.unpack([L("l", "../../.."), H("hl", "l/secret")], expect_ok=False)
    assert "does not exist" in err
    scene.assert_outside_untouched()


def test_hardlink_through_absolute_symlink(scene: Scene) -> None:
    err = scene.unpack([L("l", "/etc"), H("hl", "l/passwd")], expect_ok=False)
    assert "does not exist" in err
    scene.assert_outside_untouched()


def test_whiteout_dotdot_is_refused(scene: Scene) -> None:
    scene.unpack([F("x", b"in rootfs")], [WH("../.wh.x")], expect_ok=False)
    scene.assert_outside_untouched()


def test_whiteout_through_escaping_symlink(scene: Scene) -> None:
    scene.unpack([F("x", b"in rootfs"), F("keep", b"k"), L("a", "../../..")], [WH("a/.wh.x")],
                 expect_ok=True)
    assert not (scene.rootfs / "x").exists()
    assert (scene.rootfs / "keep").exists()
    scene.assert_outside_untouched()


def test_whiteout_through_absolute_symlink(scene: Scene) -> None:
    scene.unpack([D("etc"), F("etc/passwd", b"p"), F("etc/group", b"g"), L("a", "/etc")],
                 [WH("a/.wh.passwd")], expect_ok=True)
    assert not (scene.rootfs / "etc/passwd").exists()
    assert (scene.rootfs / "etc/group").exists()
    scene.assert_outside_untouched()


def test_opaque_through_escaping_symlink(scene: Scene) -> None:
    scene.unpack([F("x", b"1"), D("d"), F("d/y", b"2"), L("a", "../../..")],
                 [WH("a/.wh..wh..opq")], expect_ok=True)
    assert not (scene.rootfs / "x").exists() and not (scene.rootfs / "d").exists()
    scene.assert_outside_untouched()


def test_whiteout_of_symlink_removes_link_not_target(scene: Scene) -> None:
    scene.unpack([D("etc"), F("etc/passwd", b"p"), L("link", "/etc")], [WH(".wh.link")],
                 expect_ok=True)
    assert not os.path.lexists(scene.rootfs / "link")
    assert (scene.rootfs / "etc/passwd").exists()
    scene.assert_outside_untouched()


def test_root_replaced_by_symlink_is_refused(scene: Scene) -> None:
    scene.unpack([L(".", "/")], expect_ok=False)
    scene.assert_outside_untouched()


def test_symlinked_blob_in_layout_is_refused(tmp_path: Path) -> None:
    b = LayoutBuilder(str(tmp_path / "layout"))
    desc = b.image([[F("f", b"x")]])
    b.tag("t", desc)
    manifest = tmp_path / "layout/blobs/sha256" / desc["digest"][7:]
    real = tmp_path / "elsewhere"
    manifest.rename(real)
    manifest.symlink_to(real)
    p = run_ki("unpack", f"{tmp_path / 'layout'}:t", str(tmp_path / "bundle"), check=False)
    assert p.returncode == 1 and "ketch-image: error:" in p.stderr
    assert not (tmp_path / "bundle").exists()


def test_symlink_metadata_never_reaches_its_target(scene: Scene) -> None:
    # chown/chmod/utime of a symlink entry (and of a hardlink to it) act on the link only,
    # even when the link points at a host file outside the bundle.
    outside = scene.deep / "secret"
    before = os.lstat(outside)
    scene.unpack([L("s", str(outside), uid=4321, gid=4321, mtime=5), H("h", "s"),
                  L("rel", "../../../secret", uid=77, gid=77, mtime=7)],
                 [D("s2"), L("s2/up", "../../../../secret", mtime=9)], expect_ok=True)
    after = os.lstat(outside)
    assert (after.st_uid, after.st_gid, after.st_mode) == (before.st_uid, before.st_gid,
                                                           before.st_mode)
    assert os.lstat(scene.rootfs / "s").st_uid == 4321
    assert os.lstat(scene.rootfs / "h").st_ino == os.lstat(scene.rootfs / "s").st_ino
    assert os.path.islink(scene.rootfs / "h")
    scene.assert_outside_untouched()

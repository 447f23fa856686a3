"""Layer application semantics (image-spec layer.md): whiteouts, opaque whiteouts,
changes over existing files, file attributes."""

from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path

import pytest

from ketch.image.errors import LayerError
from ketch.image.layers.apply import LayerApplier
from ketch.image.paths import Root

from .helpers import CHR, FIFO, MTIME, WH, D, Entry, F, H, L, make_tar


def apply(rootfs: Path, *layers: list[Entry]) -> list[str]:
    rootfs.mkdir(exist_ok=True)
    warnings: list[str] = []
    with Root(str(rootfs)) as root:
        applier = LayerApplier(root, warnings.append)
        for layer in layers:
            applier.apply(io.BytesIO(make_tar(layer)))
    return warnings


def names(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


BASE = [D("a"), D("a/b"), D("a/b/c"), F("a/b/c/bar", b"bar"), F("a/keep", b"k"),
        D("etc"), F("etc/my-app-config", b"cfg"), D("bin"), F("bin/my-app-binary", b"bin"),
        F("bin/my-app-tools", b"t"), D("bin/tools"), F("bin/tools/my-app-tool-one", b"1")]


def test_whiteout_removes_lower_file_and_is_hidden(tmp_path: Path) -> None:
    r = tmp_path / "r"
    apply(r, BASE, [D("etc"), WH("etc/.wh.my-app-config")])
    assert not (r / "etc/my-app-config").exists()
    assert not (r / "etc/.wh.my-app-config").exists()
    assert (r / "etc").is_dir()


def test_whiteout_removes_lower_directory_tree(tmp_path: Path) -> None:
    r = tmp_path / "r"
    apply(r, BASE, [WH("a/.wh.b")])
    assert names(r / "a") == {"keep"}


def test_whiteout_of_missing_path_is_a_noop(tmp_path: Path) -> None:
    r = tmp_path / "r"
    apply(r, BASE)
    before = names(r)
    apply(r, [WH("nope/.wh.x"), WH(".wh.nothing"), WH("a/keep/.wh.x")])
    assert names(r) == before


def test_whiteout_does_not_hide_same_layer_entry(tmp_path: Path) -> None:
    # layer.md: files present in the same layer as a whiteout can only be hidden by later layers
    r = tmp_path / "r"
    apply(r, [D("x"), F("x/file", b"same layer"), WH("x/.wh.file")])
    assert (r / "x/file").read_bytes() == b"same layer"
    apply(r, [WH("x/.wh.file")])
    assert not (r / "x/file").exists()


def test_opaque_whiteout_spec_example(tmp_path: Path) -> None:
    r = tmp_path / "r"
    apply(r, BASE, [D("bin"), WH("bin/.wh..wh..opq")])
    assert names(r / "bin") == set()
    assert (r / "etc/my-app-config").exists()


@pytest.mark.parametrize("opaque_first", [True, False])
def test_opaque_keeps_same_layer_children_in_any_order(tmp_path: Path, opaque_first: bool) -> None:
    # layer.md: a/.wh..wh..opq is applied before a/b regardless of its position in the archive
    r = tmp_path / "r"
    new = [D("a"), D("a/b"), D("a/b/c"), F("a/b/c/foo", b"foo")]
    layer = [new[0], WH("a/.wh..wh..opq"), *new[1:]] if opaque_first else [*new, WH("a/.wh..wh..opq")]
    apply(r, BASE, layer)
    assert names(r / "a") == {"b", "b/c", "b/c/foo"}
    assert not (r / "a/.wh..wh..opq").exists()


def test_opaque_at_root_and_aufs_metadata_ignored(tmp_path: Path) -> None:
    r = tmp_path / "r"
    apply(r, BASE, [WH(".wh..wh..opq"), F("only", b"1"), WH(".wh..wh.plnk")])
    assert names(r) == {"only"}


def test_bare_whiteout_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="invalid whiteout"):
        apply(tmp_path / "r", BASE, [WH("a/.wh.")])


def test_changes_over_existing_files(tmp_path: Path) -> None:
    r = tmp_path / "r"
    target = tmp_path / "target"
    target.mkdir()
    apply(r, [D("d"), F("d/f", b"x"), F("file", b"f"), L("link", "d"), D("dirlink"),
              F("dirlink/inner", b"i")])
    apply(r, [F("d", b"now a file"), D("file"), D("link", 0o700), L("dirlink", "/etc")])
    assert (r / "d").read_bytes() == b"now a file"
    assert (r / "file").is_dir()
    # the symlink was replaced by a directory, not followed into d/
    assert (r / "link").is_dir() and not (r / "link").is_symlink()
    assert stat.S_IMODE((r / "link").stat().st_mode) == 0o700
    assert (r / "d").is_file()
    assert os.readlink(r / "dirlink") == "/etc"


def test_directory_merge_replaces_attributes(tmp_path: Path) -> None:
    r = tmp_path / "r"
    apply(r, [D("d", 0o755), F("d/lower", b"l")], [D("d", 0o710, uid=7, gid=8), F("d/upper", b"u")])
    st = (r / "d").stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o710, 7, 8)
    assert names(r / "d") == {"lower", "upper"}


def test_attributes_preserved(tmp_path: Path) -> None:
    r = tmp_path / "r"
    apply(r, [
        D("./", 0o751, uid=0, gid=0, mtime=MTIME - 5),
        D("bin", 0o755, mtime=MTIME - 10),
        F("bin/suid", b"#!", 0o4755, uid=0, gid=0),
        F("bin/sgid", b"#!", 0o2711, uid=12, gid=34),
        D("tmp", 0o1777, mtime=MTIME - 20),
        F("owned", b"o", 0o640, uid=1234, gid=5678, mtime=MTIME - 30),
        L("sym", "bin/suid", uid=42, gid=43, mtime=MTIME - 40),
        H("hard", "owned"),
        FIFO("fifo", 0o620),
        CHR("null", 1, 3, 0o666),
    ])
    def st(p: str) -> os.stat_result:
        return os.lstat(r / p) if p else os.lstat(r)
    assert stat.S_IMODE(st("").st_mode) == 0o751
    assert stat.S_IMODE(st("bin/suid").st_mode) == 0o4755
    assert (stat.S_IMODE(st("bin/sgid").st_mode), st("bin/sgid").st_uid, st("bin/sgid").st_gid) == (0o2711, 12, 34)
    assert stat.S_IMODE(st("tmp").st_mode) == 0o1777
    assert (st("owned").st_uid, st("owned").st_gid) == (1234, 5678)
    assert st("owned").st_mtime == MTIME - 30
    # directory mtimes survive the creation of their children
    assert st("bin").st_mtime == MTIME - 10
    assert st("tmp").st_mtime == MTIME - 20
    assert st("").st_mtime == MTIME - 5
    assert stat.S_ISLNK(st("sym").st_mode) and os.readlink(r / "sym") == "bin/suid"
    assert (st("sym").st_uid, st("sym").st_gid, st("sym").st_mtime) == (42, 43, MTIME - 40)
    assert st("hard").st_ino == st("owned").st_ino and st("owned").st_nlink == 2
    assert stat.S_ISFIFO(st("fifo").st_mode) and stat.S_IMODE(st("fifo").st_mode) == 0o620
    assert stat.S_ISCHR(st("null").st_mode) and os.major(st("null").st_rdev) == 1
    assert os.minor(st("null").st_rdev) == 3


def test_parent_directory_times_restored_after_later_layer(tmp_path: Path) -> None:
    r = tmp_path / "r"
    apply(r, [D("d", mtime=MTIME - 100)], [F("d/new", b"n")], [WH("d/.wh.new")])
    assert os.lstat(r / "d").st_mtime == MTIME - 100


def test_missing_parents_are_created(tmp_path: Path) -> None:
    r = tmp_path / "r"
    apply(r, [F("x/y/z/file", b"deep")])
    assert (r / "x/y/z/file").read_bytes() == b"deep"
    assert stat.S_IMODE((r / "x/y").stat().st_mode) == 0o755


def test_file_in_the_middle_of_a_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="not a directory"):
        apply(tmp_path / "r", [F("f", b"x"), F("f/g", b"y")])


def test_root_entry_cannot_change_type(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="root"):
        apply(tmp_path / "r", [L("./", "/")])


def test_xattrs(tmp_path: Path) -> None:
    r = tmp_path / "r"
    e = F("f", b"x")
    e.info.pax_headers = {"SCHILY.xattr.user.ketch": "v\udcff"}
    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.test", b"1")
    except OSError as err:
        if err.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            pytest.skip("filesystem has no user xattrs")
        raise
    apply(r, [e])
    assert os.getxattr(r / "f", "user.ketch") == b"v\xff"


def test_corrupt_tar_is_a_layer_error(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    with Root(str(tmp_path / "r")) as root, pytest.raises(LayerError):
        LayerApplier(root).apply(io.BytesIO(b"this is not a tar archive" * 100))


class _Trickle(io.RawIOBase):
    """A stream that hands out at most ``step`` bytes per read, as LayerStream's chunks do."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.pos, self.step = data, 0, step

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        n = self.step if size is None or size < 0 else min(size, self.step)
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out


@pytest.mark.parametrize("step", [1000, 4096, 70_001, 1 << 22])
def test_member_data_of_every_size_survives_partial_reads(tmp_path: Path, step: int) -> None:
    # Member data is copied straight from the archive reader (apply._copy_data): sizes
    # around the block size, 64 KiB and the 1 MiB copy chunk, read in pieces.
    sizes = [0, 1, 511, 512, 513, 65_535, 65_536, 65_537, 70_000, (1 << 20) + 3, 3 << 20]
    layer = [D("d")] + [F(f"d/f{n}", bytes((i * 7 + n) % 251 for i in range(n)))
                        for n in sizes] + [F("d/last", b"end")]
    (tmp_path / "r").mkdir()
    with Root(str(tmp_path / "r")) as root:
        LayerApplier(root).apply(_Trickle(make_tar(layer), step))  # type: ignore[arg-type]
    for n in sizes:
        assert (tmp_path / "r" / "d" / f"f{n}").read_bytes() == bytes(
            (i * 7 + n) % 251 for i in range(n)), n
    assert (tmp_path / "r" / "d" / "last").read_bytes() == b"end"


def test_clean_name_fast_path_agrees_with_the_component_walk() -> None:
    # clean_name returns most names straight from split("/"); every name built from
    # tricky components must give what the component-by-component walk gives.
    import itertools

    from ketch.image.paths import clean_name

    def walk(name: str) -> list[str] | None:
        out: list[str] = []
        for part in name.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not out:
                    return None
                out.pop()
                continue
            out.append(part)
        return out

    parts = ["", ".", "..", "a", "b.", "..c", "..."]
    for n in range(1, 5):
        for combo in itertools.product(parts, repeat=n):
            name = "/".join(combo)
            expected = walk(name)
            if expected is None:
                with pytest.raises(LayerError):
                    clean_name(name)
            else:
                assert clean_name(name) == expected, name

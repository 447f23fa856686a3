"""Layer application fidelity beyond the basics of test_layers.py: every entry type and
header format, sparse files, xattr policy, atime, whiteout corner cases, the tar-bomb
budget, and how a blob is streamed (compression checked against the media type, multiple
gzip members, trailing bytes covered by the digests)."""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import struct
import subprocess
import tarfile
from pathlib import Path

import pytest

from ketch.image.errors import LayerError
from ketch.image.layers.apply import LayerApplier
from ketch.image.paths import Root
from ketch.image.unpack import UnpackOptions, unpack

from .helpers import (
    MTIME,
    OCI_CONFIG,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    WH,
    D,
    Entry,
    F,
    H,
    L,
    LayoutBuilder,
    _info,
    make_tar,
    run_ki,
    sha256,
)


def apply_tar(rootfs: Path, *tars: bytes, **kw) -> list[str]:
    rootfs.mkdir(exist_ok=True)
    warnings: list[str] = []
    with Root(str(rootfs)) as root:
        applier = LayerApplier(root, warnings.append, **kw)
        for t in tars:
            applier.apply(io.BytesIO(t))
        applier.finish()
    return warnings


def tar_of(entries: list[Entry], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for e in entries:
            tf.addfile(e.info, io.BytesIO(e.data) if e.data is not None else None)
    return buf.getvalue()


def BLK(name: str, major: int, minor: int) -> Entry:
    ti = _info(name, tarfile.BLKTYPE, 0o660)
    ti.devmajor, ti.devminor = major, minor
    return Entry(ti)


def test_block_device(tmp_path: Path) -> None:
    apply_tar(tmp_path / "r", make_tar([BLK("loop9", 7, 9)]))
    st = os.lstat(tmp_path / "r/loop9")
    assert stat.S_ISBLK(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (7, 9)
    assert stat.S_IMODE(st.st_mode) == 0o660


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT],
                         ids=["gnu-longname", "pax-path"])
def test_long_names_and_long_link_targets(tmp_path: Path, fmt: int) -> None:
    deep = "/".join(["d" * 90] * 3)          # 272 characters: beyond ustar's 100+155
    name = f"{deep}/{'f' * 150}"
    target = f"/{deep}/{'t' * 120}"           # a symlink target beyond 100 characters
    tar = tar_of([D("d" * 90), D("d" * 90 + "/" + "d" * 90), D(deep), F(name, b"long"),
                  L("sym", target), H("hard", name)], fmt)
    assert (b"././@LongLink" in tar) == (fmt == tarfile.GNU_FORMAT)
    apply_tar(tmp_path / "r", tar)
    r = tmp_path / "r"
    assert (r / name).read_bytes() == b"long"
    assert os.readlink(r / "sym") == target
    assert os.lstat(r / "hard").st_ino == os.lstat(r / name).st_ino


def test_owner_names_are_ignored(tmp_path: Path) -> None:
    e = F("f", b"x", uid=1234, gid=5678)
    e.info.uname, e.info.gname = "root", "root"
    apply_tar(tmp_path / "r", make_tar([e]))
    st = os.lstat(tmp_path / "r/f")
    assert (st.st_uid, st.st_gid) == (1234, 5678)


def test_pax_atime_is_applied(tmp_path: Path) -> None:
    e = F("f", b"x", mtime=MTIME)
    e.info.pax_headers = {"atime": str(MTIME - 3600)}
    apply_tar(tmp_path / "r", make_tar([e]))
    st = os.lstat(tmp_path / "r/f")
    assert (st.st_atime, st.st_mtime) == (MTIME - 3600, MTIME)


@pytest.mark.parametrize("fmt", ["gnu", "posix"])
def test_sparse_file_keeps_content_and_holes(tmp_path: Path, fmt: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "sparse", "wb") as f:
        f.truncate(32 << 20)
        f.seek(1 << 20)
        f.write(b"middle")
        f.seek((32 << 20) - 4)
        f.write(b"tail")
    tar = tmp_path / "s.tar"
    subprocess.run(["tar", f"--format={fmt}", "--sparse", "-cf", str(tar), "-C", str(src),
                    "sparse"], check=True)
    with tarfile.open(tar) as tf:
        assert tf.getmember("sparse").sparse is not None, "tar did not write a sparse member"
    apply_tar(tmp_path / "r", tar.read_bytes())
    out = tmp_path / "r/sparse"
    assert out.read_bytes() == (src / "sparse").read_bytes()
    assert os.lstat(out).st_blocks * 512 < (1 << 20)  # the holes stayed holes


def _capability_v2(permitted: int) -> bytes:
    # struct vfs_cap_data (linux/capability.h): magic_etc | effective flag, then
    # (permitted, inheritable) for the low and high 32 capabilities.
    return struct.pack("<IIIII", 0x02000000 | 0x1, permitted, 0, 0, 0)


@pytest.mark.parametrize("keep", [False, True])
def test_xattrs_kept_and_selinux_dropped_unless_asked(tmp_path: Path, keep: bool) -> None:
    cap = _capability_v2(1 << 10)  # CAP_NET_BIND_SERVICE
    e = F("bin/ping", b"\x7fELF", 0o755)
    e.info.pax_headers = {
        "SCHILY.xattr.security.capability": cap.decode("utf-8", "surrogateescape"),
        "SCHILY.xattr.trusted.overlay.note": "t",
        "SCHILY.xattr.user.mime_type": "application/x-executable",
        "SCHILY.xattr.security.selinux": "system_u:object_r:ping_exec_t:s0",
    }
    warnings = apply_tar(tmp_path / "r", make_tar([D("bin"), e]), keep_selinux=keep)
    p = tmp_path / "r/bin/ping"
    assert os.getxattr(p, "security.capability") == cap
    assert os.getxattr(p, "trusted.overlay.note") == b"t"
    assert os.getxattr(p, "user.mime_type") == b"application/x-executable"
    names = os.listxattr(p)
    if keep:
        # Either the filesystem stored the label or the failure was reported.
        assert "security.selinux" in names or any("security.selinux" in w for w in warnings)
    else:
        assert "security.selinux" not in names and not warnings


def test_directory_deleted_and_readded_comes_back_empty(tmp_path: Path) -> None:
    r = tmp_path / "r"
    lower = make_tar([D("d"), F("d/old", b"o"), D("d/sub"), F("d/sub/x", b"x")])
    apply_tar(r, lower, make_tar([WH(".wh.d")]), make_tar([D("d", 0o700)]))
    assert os.listdir(r / "d") == [] and stat.S_IMODE(os.lstat(r / "d").st_mode) == 0o700
    # the same within one layer: the whiteout hides the lower d, the layer's own d stays
    r2 = tmp_path / "r2"
    apply_tar(r2, lower, make_tar([WH(".wh.d"), D("d"), F("d/new", b"n")]))
    assert os.listdir(r2 / "d") == ["new"]


def test_entry_count_budget(tmp_path: Path) -> None:
    tar = make_tar([F(f"f{i}", b"") for i in range(20)])
    with pytest.raises(LayerError, match="more than 10 entries"):
        apply_tar(tmp_path / "r", tar, max_entries=10)
    apply_tar(tmp_path / "r2", tar, max_entries=20)


def _single(tmp_path: Path, blob: bytes, diff_id: str, media_type: str = OCI_LAYER_GZIP,
            tag: str = "t") -> Path:
    b = LayoutBuilder(str(tmp_path / "layout"))
    layer = b.blob(blob, media_type)
    cfg = b.blob(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": [diff_id]}}).encode(), OCI_CONFIG)
    manifest = b.blob(json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg,
                                  "layers": [layer]}).encode(), OCI_MANIFEST)
    b.tag(tag, manifest)
    return tmp_path / "layout"


def test_byte_budget_stops_a_decompression_bomb(tmp_path: Path) -> None:
    tar = make_tar([F("zeros", bytes(8 << 20))])
    layout = _single(tmp_path, gzip.compress(tar, mtime=0), sha256(tar))
    assert os.path.getsize(layout / "blobs/sha256" / sha256(gzip.compress(tar, mtime=0))[7:]) \
        < 64 << 10
    with pytest.raises(LayerError, match="budget"):
        unpack(str(layout), "t", str(tmp_path / "b"),
               options=UnpackOptions(max_layer_bytes=1 << 20))
    assert not (tmp_path / "b").exists()
    unpack(str(layout), "t", str(tmp_path / "ok"))  # the default budget lets it through
    assert os.path.getsize(tmp_path / "ok/rootfs/zeros") == 8 << 20


def test_multi_member_gzip_and_trailing_zeros(tmp_path: Path) -> None:
    tar = make_tar([F("a", b"a" * 5000), F("b", b"b" * 5000)])
    half = len(tar) // 2
    blob = gzip.compress(tar[:half], mtime=0) + gzip.compress(tar[half:], mtime=0) + bytes(512)
    layout = _single(tmp_path, blob, sha256(tar))
    run_ki("unpack", f"{layout}:t", str(tmp_path / "b"))
    assert (tmp_path / "b/rootfs/b").read_bytes() == b"b" * 5000


def test_trailing_bytes_of_the_tar_are_in_the_diff_id(tmp_path: Path) -> None:
    tar = make_tar([F("a", b"a")])
    padded = tar + bytes(10240)
    layout = _single(tmp_path, padded, sha256(padded), OCI_LAYER, tag="good")
    run_ki("unpack", f"{layout}:good", str(tmp_path / "b"))
    layout = _single(tmp_path / "x", padded, sha256(tar), OCI_LAYER, tag="bad")
    p = run_ki("unpack", f"{layout}:bad", str(tmp_path / "b2"), check=False)
    assert p.returncode == 1 and "does not match diff_id" in p.stderr


def test_truncated_gzip_is_refused(tmp_path: Path) -> None:
    tar = make_tar([F("a", os.urandom(50000))])
    blob = gzip.compress(tar, mtime=0)[:-100]
    layout = _single(tmp_path, blob, sha256(tar))
    p = run_ki("unpack", f"{layout}:t", str(tmp_path / "b"), check=False)
    assert p.returncode == 1 and p.stderr.startswith("ketch-image: error: ")
    assert not (tmp_path / "b").exists()


def test_compression_must_match_the_oci_media_type(tmp_path: Path) -> None:
    tar = make_tar([F("a", b"a")])
    layout = _single(tmp_path, tar, sha256(tar), OCI_LAYER_GZIP)
    p = run_ki("unpack", f"{layout}:t", str(tmp_path / "b"), check=False)
    assert p.returncode == 1 and "media type says gzip" in p.stderr
    # Docker's media type is known to label plain tars "tar.gzip": the magic decides.
    layout = _single(tmp_path / "d", tar, sha256(tar),
                     "application/vnd.docker.image.rootfs.diff.tar.gzip")
    run_ki("unpack", f"{layout}:t", str(tmp_path / "b2"))


def test_zstd_layer(tmp_path: Path) -> None:
    import zstandard

    tar = make_tar([D("etc"), F("etc/zst", b"zstd content")])
    blob = zstandard.ZstdCompressor().compress(tar[:1024]) + \
        zstandard.ZstdCompressor().compress(tar[1024:])   # two frames
    layout = _single(tmp_path, blob, sha256(tar),
                     "application/vnd.oci.image.layer.v1.tar+zstd")
    run_ki("unpack", f"{layout}:t", str(tmp_path / "b"))
    assert (tmp_path / "b/rootfs/etc/zst").read_bytes() == b"zstd content"


def test_entries_after_a_parent_is_replaced_follow_the_new_parent(tmp_path: Path) -> None:
    # The applier keeps the last parent directory open; an entry that replaces that
    # directory (or one above it) must not leave later entries writing into the old one.
    r = tmp_path / "r"
    apply_tar(r, make_tar([D("elsewhere"), D("a"), F("a/f1", b"1"), L("a", "/elsewhere"),
                           F("a/f2", b"2"), D("p"), D("p/q"), F("p/q/f", b"f"), D("p", 0o700),
                           F("p/q/g", b"g")]))
    assert os.readlink(r / "a") == "/elsewhere"
    assert (r / "elsewhere/f2").read_bytes() == b"2"
    assert sorted(os.listdir(r / "p/q")) == ["f", "g"]
    with pytest.raises(LayerError, match="not a directory"):
        apply_tar(tmp_path / "r2", make_tar([D("x"), D("x/y"), F("x/y/f", b"f"),
                                             F("x", b"now a file"), F("x/y/g", b"g")]))


@pytest.mark.parametrize("decoder", ["isal", "zlib"])
def test_both_gzip_decoders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, decoder: str) -> None:
    import sys
    import zlib

    from ketch.image.layers import stream

    if decoder == "zlib":
        monkeypatch.setitem(sys.modules, "isal", None)  # import fails: the zlib fallback
    obj = stream.gzip_decompressobj()
    assert isinstance(obj, type(zlib.decompressobj())) == (decoder == "zlib")
    tar = make_tar([F("a", os.urandom(3000) * 10)])
    layout = _single(tmp_path, gzip.compress(tar, mtime=0), sha256(tar))
    unpack(str(layout), "t", str(tmp_path / "b"))
    assert (tmp_path / "b/rootfs/a").stat().st_size == 30000
    truncated = _single(tmp_path / "t", gzip.compress(tar, mtime=0)[:-50], sha256(tar))
    with pytest.raises(LayerError, match=r"truncated gzip|corrupt gzip"):
        unpack(str(truncated), "t", str(tmp_path / "b2"))
    # trailing bytes that are no gzip member were reported as a truncated stream
    trailing = _single(tmp_path / "g", gzip.compress(tar, mtime=0) + b"garbage!",
                       sha256(tar))
    with pytest.raises(LayerError, match="data after the end of the gzip stream that is not "
                                         "another gzip member"):
        unpack(str(trailing), "t", str(tmp_path / "b3"))


@pytest.mark.parametrize("backlog", [0, 4, 1 << 30])
@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_stream_pieces_stay_small_for_compressible_data(
        kind: str, backlog: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # 40 MiB of zeros inflate from one 256 KiB read: the reader must get it in pieces of
    # at most _PIECE bytes (the queue's memory bound), in order, and the diff_id right
    # whoever hashes the pieces (backlog 0: the worker hashes each at once; huge: the
    # reader hashes them while it waits, the worker the rest at the end).
    import zstandard

    from ketch.image.layers import stream

    monkeypatch.setattr(stream, "_HASH_BACKLOG", backlog)

    tar = make_tar([F("zeros", bytes(40 << 20)), F("tail", b"end")])
    blob = (gzip.compress(tar, mtime=0) if kind == "gzip"
            else zstandard.ZstdCompressor().compress(tar))
    assert len(blob) < stream._CHUNK
    with stream.LayerStream(io.BytesIO(blob), sha256(blob), len(blob)) as s:
        pieces = []
        while piece := s.read_view(1 << 30):
            pieces.append(bytes(piece))
        assert s.finish() == sha256(tar)
    assert b"".join(pieces) == tar
    assert max(map(len, pieces)) <= stream._PIECE


def test_reader_hashes_while_it_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    # A slow blob keeps the reader waiting: it hashes the pieces it has already taken,
    # the worker what is left; the diff_id must come out the same.
    import threading
    import time

    from ketch.image.layers import stream

    class SlowBlob(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            time.sleep(0.002)
            return super().read(size)

    by_reader = []
    original = stream.LayerStream._hash_backlog

    def counting(self, *args, **kwargs):
        before = len(self._unhashed)
        original(self, *args, **kwargs)
        if threading.current_thread() is threading.main_thread():
            by_reader.append(before - len(self._unhashed))

    monkeypatch.setattr(stream.LayerStream, "_hash_backlog", counting)
    monkeypatch.setattr(stream, "_CHUNK", 16 << 10)
    tar = make_tar([F(f"f{i}", os.urandom(50_000)) for i in range(40)])
    blob = gzip.compress(tar, mtime=0)
    with stream.LayerStream(SlowBlob(blob), sha256(blob), len(blob)) as s:
        out = []
        while piece := s.read_view(1 << 20):
            out.append(bytes(piece))
        assert s.finish() == sha256(tar)
    assert b"".join(out) == tar
    assert sum(by_reader) > 0


def test_zstd_layer_starting_with_a_skippable_frame(tmp_path: Path) -> None:
    """RFC 8878 skippable frames may open a zstd stream (zstd -dc and skopeo read it);
    the magic-byte check called it "plain" and refused the +zstd media type."""
    import struct

    import zstandard

    tar = make_tar([D("etc"), F("etc/zst", b"after a skippable frame")])
    skippable = struct.pack("<II", 0x184D2A53, 5) + b"meta!"
    blob = skippable + zstandard.ZstdCompressor().compress(tar)
    layout = _single(tmp_path, blob, sha256(tar), "application/vnd.oci.image.layer.v1.tar+zstd")
    run_ki("unpack", f"{layout}:t", str(tmp_path / "b"))
    assert (tmp_path / "b/rootfs/etc/zst").read_bytes() == b"after a skippable frame"


def test_layer_of_zero_bytes_is_an_empty_changeset(tmp_path: Path) -> None:
    """gzip of nothing (no tar blocks at all) unpacks as an empty layer, as with umoci
    (it was "invalid layer archive: empty file"); a truncated header still fails."""
    import gzip

    layout = _single(tmp_path, gzip.compress(b""), sha256(b""), OCI_LAYER_GZIP)
    run_ki("unpack", f"{layout}:t", str(tmp_path / "b"))
    assert os.listdir(tmp_path / "b/rootfs") == []
    half = make_tar([F("a", b"a")])[:100]
    layout = _single(tmp_path / "h", gzip.compress(half), sha256(half), OCI_LAYER_GZIP)
    p = run_ki("unpack", f"{layout}:t", str(tmp_path / "b2"), check=False)
    assert p.returncode == 1 and "invalid layer archive" in p.stderr, p.stderr

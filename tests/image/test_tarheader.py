"""FastTarInfo (image/layers/tarheader.py) against tarfile's own header parser, entry by
entry: the seeded Debian and 4-layer images, archives in every format tarfile writes
(GNU, ustar, PAX; long names, prefixes, base-256 numbers, devices, links, non-UTF-8
names, GNU sparse), the hostile entries of test_malicious.py, and a few thousand
damaged header blocks (both parsers must refuse the same blocks, with the same error,
and agree on every field of the rest)."""

from __future__ import annotations

import glob
import gzip
import io
import json
import os
import random
import subprocess
import tarfile
from pathlib import Path

import pytest

from ketch.image.layers.tarheader import FastTarInfo

from .helpers import CHR, FIFO, WH, D, Entry, F, H, L, make_tar

SEED = "/work/shared/tools/seed-images.sh"
SEED_CACHE = "/var/cache/ketch-tests/seed"
FIELDS = ("name", "mode", "uid", "gid", "size", "mtime", "chksum", "type", "linkname",
          "uname", "gname", "devmajor", "devminor", "offset", "offset_data", "pax_headers",
          "sparse")


def members(data: bytes, tarinfo: type[tarfile.TarInfo]) -> list[tuple]:
    """Every member's fields and content (stream mode, as the applier reads), or the error."""
    out: list[tuple] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r|", errorlevel=2,
                          tarinfo=tarinfo) as tf:
            for m in tf:
                assert type(m) is tarinfo
                f = tf.extractfile(m) if m.isreg() else None
                out.append((*(getattr(m, k) for k in FIELDS), f.read() if f else None))
    except tarfile.TarError as e:
        out.append((type(e).__name__, str(e)))
    return out


def assert_same(data: bytes) -> int:
    fast, slow = members(data, FastTarInfo), members(data, tarfile.TarInfo)
    assert fast == slow
    return len(slow)


@pytest.fixture(scope="module")
def seeded_layers(ensure_debian_packages, tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """Uncompressed layer tars of the seeded Debian and 4-layer images."""
    if not os.path.exists(SEED):
        pytest.fail(f"{SEED} is missing")
    ensure_debian_packages("debootstrap")
    work = tmp_path_factory.mktemp("seed")
    os.makedirs(SEED_CACHE, exist_ok=True)
    env = {**os.environ, "NO_PUSH": "1", "ONLY": "debian layers", "SEED_CACHE": SEED_CACHE,
           "SEED_WORK": str(work)}
    p = subprocess.run(["bash", SEED], env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    tars = []
    for index in glob.glob(str(work / "layouts" / "*" / "index.json")):
        blobs = Path(index).parent / "blobs" / "sha256"
        for desc in json.loads(Path(index).read_text())["manifests"]:
            manifest = json.loads((blobs / desc["digest"].split(":")[1]).read_text())
            for layer in manifest["layers"]:
                raw = (blobs / layer["digest"].split(":")[1]).read_bytes()
                tars.append(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    assert len(tars) >= 5
    return tars


def test_seeded_images_parse_the_same(seeded_layers: list[bytes]) -> None:
    total = sum(assert_same(t) for t in seeded_layers)
    assert total > 6000  # the Debian layer alone has ~6,700 entries


def _variants() -> list[Entry]:
    long = "d/" + "x" * 120 + "/" + "y" * 130
    big = F("big-ids", b"data", uid=0o7777777 + 5, gid=2**40)
    big.info.mtime = 2**35
    return [D("d"), F("d/f", b"hello"), F("d/" + "p" * 90 + "/" + "q" * 90, b"prefix"),
            F(long, b"long"), H("d/h", "d/f"), L("d/l", "../" + "t" * 150), FIFO("d/fifo"),
            CHR("d/null", 1, 3), CHR("d/huge", 4095, 2**20 - 1), F("d/ünï©ødé", b"u"),
            big, F("setuid", b"s", mode=0o4755), WH("d/.wh.gone"), WH("d/.wh..wh..opq")]


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_every_format_parses_the_same(fmt: int) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for e in _variants():
            try:
                tf.addfile(e.info, io.BytesIO(e.data) if e.data is not None else None)
            except ValueError:  # a field the format cannot hold (ustar: long names, big ids)
                continue
    assert assert_same(buf.getvalue()) >= 9


def test_pax_xattrs_non_utf8_names_and_v7_directory() -> None:
    ti = tarfile.TarInfo("x")
    ti.pax_headers = {"SCHILY.xattr.user.k": "v\udcff", "atime": "1.5"}
    ti.size = 1
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT,
                      encoding="utf-8", errors="surrogateescape") as tf:
        tf.addfile(ti, io.BytesIO(b"1"))
        tf.addfile(tarfile.TarInfo("bad-\udce9-name"))
    data = bytearray(buf.getvalue())
    assert assert_same(bytes(data)) == 2
    # An old V7 directory: a regular-file entry whose name ends in "/", no magic.
    v7 = tarfile.TarInfo("olddir/").tobuf(tarfile.USTAR_FORMAT)
    block = bytearray(v7[:512])
    block[156:157] = tarfile.AREGTYPE
    block[257:265] = b"\0" * 8
    _fix_checksum(block)
    assert assert_same(bytes(block) + b"\0" * 1024) == 1


def test_gnu_sparse_member_parses_the_same() -> None:
    # An old-GNU sparse header ("S"): the fast parser must leave it to tarfile.
    block = bytearray(tarfile.TarInfo("sparse").tobuf(tarfile.GNU_FORMAT)[:512])
    block[156:157] = tarfile.GNUTYPE_SPARSE
    block[124:136] = b"%011o\0" % 512
    block[386:398] = b"%011o\0" % 4096      # one data block at offset 4096 ...
    block[398:410] = b"%011o\0" % 512       # ... of 512 bytes
    block[483:495] = b"%011o\0" % 8192      # real size
    _fix_checksum(block)
    data = bytes(block) + b"z" * 512 + b"\0" * 1024
    rows = members(data, FastTarInfo)
    assert rows[0][FIELDS.index("sparse")][0] == (4096, 512)
    assert assert_same(data) == 1


def test_hostile_entries_parse_the_same() -> None:
    hostile = [F("../escape", b"x"), F("/abs/file", b"x"), F("a/../../b", b"x"),
               L("link", "/etc/passwd"), H("hl", "../../etc/shadow"), WH(".wh...."),
               WH("a/.wh.."), D("./"), F("a//b///c", b"x"), F("a/./b", b"x")]
    assert assert_same(make_tar(hostile)) == len(hostile)


def _fix_checksum(block: bytearray) -> None:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)


def test_damaged_header_blocks_are_judged_the_same() -> None:
    """Random byte damage to real header blocks: same TarInfo fields or the same error."""
    blocks = [e.info.tobuf(fmt)[-512:] for e in _variants()
              for fmt in (tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT)
              if _fits(e, fmt)]
    rng = random.Random(5)
    enc, errs = "utf-8", "surrogateescape"
    checked = 0
    for _ in range(4000):
        block = bytearray(rng.choice(blocks))
        for _ in range(rng.randint(1, 3)):
            pos = rng.randrange(512)
            block[pos] = rng.choice([0, 0x20, 0x30, 0x37, 0x38, 0x2B, 0x5F, 0x80, 0xFF,
                                     0x1C, rng.randrange(256)])
        if rng.random() < 0.7:
            _fix_checksum(block)  # else mostly a bad-checksum case
        results = []
        for cls in (FastTarInfo, tarfile.TarInfo):
            try:
                t = cls.frombuf(bytes(block), enc, errs)
                results.append(tuple(getattr(t, k) for k in FIELDS if k not in
                                     ("offset", "offset_data")))
            except tarfile.HeaderError as e:
                results.append((type(e).__name__, str(e)))
        assert results[0] == results[1], bytes(block)
        checked += 1
    assert checked == 4000


def _fits(e: Entry, fmt: int) -> bool:
    try:
        e.info.tobuf(fmt)
        return True
    except ValueError:
        return False

"""Differential: ``umoci unpack`` and ``ketch-image unpack`` of the same image give the
same root filesystem (type, mode, uid:gid, size, sha256, link target, link count)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .helpers import CHR, FIFO, MTIME, WH, D, F, H, L, LayoutBuilder, listing, run_ki


def unpack_both(layout: str, tag: str, tmp_path: Path) -> tuple[dict, dict]:
    ub, kb = tmp_path / f"umoci-{tag}", tmp_path / f"ketch-{tag}"
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:{tag}", str(ub)], check=True,
                   capture_output=True)
    run_ki("unpack", f"{layout}:{tag}", str(kb))
    return listing(str(ub / "rootfs")), listing(str(kb / "rootfs"))


def assert_same(umoci: dict, ketch: dict) -> None:
    only_u = sorted(set(umoci) - set(ketch))
    only_k = sorted(set(ketch) - set(umoci))
    differ = {p: (umoci[p], ketch[p]) for p in umoci.keys() & ketch.keys() if umoci[p] != ketch[p]}
    assert not only_u and not only_k and not differ, (
        f"only umoci: {only_u}\nonly ketch: {only_k}\ndiffer (umoci, ketch): {differ}")


@pytest.mark.parametrize("tag", ["one", "two"])
def test_busybox_images(debian_tools: None, busybox_layout: str, tmp_path: Path, tag: str) -> None:
    u, k = unpack_both(busybox_layout, tag, tmp_path)
    assert "bin/busybox" in k
    assert_same(u, k)


RICH_BASE = [
    D("./", 0o755),
    D("bin"), F("bin/tool", b"#!/bin/sh\necho tool\n", 0o4755), F("bin/sg", b"x", 0o2750, gid=50),
    L("bin/alias", "tool"), L("abs", "/bin/tool"), L("dangling", "/does/not/exist"),
    D("tmp", 0o1777), D("srv", 0o700, uid=1000, gid=1000),
    F("srv/data", b"d" * 10000, 0o600, uid=1000, gid=1000),
    H("srv/data-link", "srv/data", uid=1000, gid=1000),
    D("dev"), CHR("dev/null", 1, 3), CHR("dev/zero", 1, 5, 0o644), FIFO("dev/pipe", 0o640),
    D("etc"), F("etc/motd", b"hi\n"), F("etc/issue", b"Ketch\n"), D("etc/conf.d"),
    F("etc/conf.d/a", b"a"), F("etc/conf.d/b", b"b"),
    D("var"), D("var/lib"), D("var/lib/app"), F("var/lib/app/state", b"s"),
    D("typechange"), F("typechange/file", b"f"), L("typechange/link", "/etc"),
    D("typechange/dir"), F("typechange/dir/inner", b"i"),
]

RICH_UPPER = [
    D("etc"), WH("etc/.wh.motd"), F("etc/issue", b"Ketch 2\n", 0o640),
    D("etc/conf.d"), WH("etc/conf.d/.wh..wh..opq"), F("etc/conf.d/c", b"c"),
    D("var/lib"), WH("var/lib/.wh.app"),
    D("typechange"), D("typechange/file", 0o711), F("typechange/link", b"now a file"),
    L("typechange/dir", "../etc"),
    F("bin/tool", b"#!/bin/sh\necho tool v2\n", 0o4711),
    H("bin/tool-hard", "bin/tool"),
    D("new", 0o750, uid=7, gid=8, mtime=MTIME - 1), F("new/file", b"n", 0o444, uid=7, gid=8),
]


def test_rich_image(debian_tools: None, tmp_path: Path) -> None:
    b = LayoutBuilder(str(tmp_path / "layout"))
    b.tag("rich", b.image([RICH_BASE, RICH_UPPER]))
    b.tag("uncompressed", b.image([RICH_BASE, RICH_UPPER], compress=False))
    for tag in ("rich", "uncompressed"):
        u, k = unpack_both(str(tmp_path / "layout"), tag, tmp_path)
        assert k["etc/issue"][4] is not None and "etc/motd" not in k
        assert sorted(p for p in k if p.startswith("etc/conf.d/")) == ["etc/conf.d/c"]
        assert_same(u, k)


def test_config_json_agrees_with_umoci_on_converted_fields(busybox_layout: str,
                                                           tmp_path: Path) -> None:
    unpack_both(busybox_layout, "two", tmp_path)
    u = json.loads((tmp_path / "umoci-two/config.json").read_text())
    k = json.loads((tmp_path / "ketch-two/config.json").read_text())
    for field in ("args", "cwd", "user"):
        assert k["process"][field] == u["process"][field], field
    assert sorted(k["process"]["env"]) == sorted(
        set(u["process"]["env"]) | {e for e in k["process"]["env"] if e.startswith("TERM=")})
    for key, value in u.get("annotations", {}).items():
        # umoci 0.4.7 also writes empty values (e.g. author) that carry no information
        if value and key.startswith(("org.opencontainers.image.", "org.example")):
            assert k["annotations"].get(key) == value, key

"""Retries with backoff: a registry that refuses connections for a moment, an upload
whose connection is reset, and blob downloads resumed with ``Range``."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from .conftest import Registry, free_port
from .fakeregistry import FakeRegistry
from .helpers import check_layout, ketch_image_cmd, layout_tags, run_ki
from .tcpproxy import TcpProxy
from .test_faults import _layer_digests, _pull_v1_then, _source, assert_valid


def test_pull_waits_for_a_registry_that_comes_back(tmp_path: Path) -> None:
    src, _, _ = _source(tmp_path)
    port = free_port()
    pull = subprocess.Popen([*ketch_image_cmd(), "pull", f"127.0.0.1:{port}/app:v1",
                             str(tmp_path / "layout")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    fake = None
    try:
        time.sleep(1.0)  # connections are refused meanwhile
        assert pull.poll() is None, pull.communicate()[1]
        fake = FakeRegistry(port)
        fake.load_layout(src, "v1")
        fake.start()
        _out, err = pull.communicate(timeout=60)
        assert pull.returncode == 0, err
    finally:
        if pull.poll() is None:
            pull.kill()
        if fake is not None:
            fake.stop()
    assert set(layout_tags(str(tmp_path / "layout"))) == {"v1"}
    assert_valid(tmp_path / "layout")


def test_push_waits_for_a_registry_that_comes_back(registry: Registry,
                                                   busybox_layout: str) -> None:
    proxy = TcpProxy(int(registry.host.rsplit(":", 1)[1]), free_port(), delay=1.0).start()
    try:
        p = run_ki("push", f"{busybox_layout}:two", f"{proxy.host}/retry/back:v1")
        assert p.stdout.strip().startswith("sha256:")
    finally:
        proxy.stop()
    run_ki("inspect", f"docker://{registry.host}/retry/back:v1")


def test_upload_reset_mid_blob_is_restarted(registry: Registry, tmp_path: Path) -> None:
    src, _, v2 = _source(tmp_path)  # v2 has a 3 MB layer
    proxy = TcpProxy(int(registry.host.rsplit(":", 1)[1]), free_port(),
                     cut_after=1 << 20).start()
    try:
        p = run_ki("push", f"{src}:v2", f"{proxy.host}/retry/reset:v2")
    finally:
        proxy.stop()
    assert proxy.cuts == 1
    assert "Retrying upload of blob" in p.stderr, p.stderr
    assert p.stdout.strip() == v2["digest"]
    run_ki("pull", f"{registry.host}/retry/reset:v2", str(tmp_path / "back"))
    check_layout(str(tmp_path / "back"))


def test_cut_download_resumes_with_range(fake_registry: FakeRegistry, tmp_path: Path) -> None:
    src, _, _ = _source(tmp_path)
    fake_registry.load_layout(src, "v1")
    fake_registry.load_layout(src, "v2")
    layout = _pull_v1_then(fake_registry, tmp_path)
    big = _layer_digests(src, "v2")[1]
    fake_registry.faults[big] = "truncate-once"  # sends half of the 3 MB, then closes
    p = run_ki("pull", f"{fake_registry.host}/app:v2", str(layout))
    half = len(fake_registry.blobs[big]) // 2
    assert fake_registry.ranges == [f"bytes={half}-"]
    assert f"Retrying blob {big} from byte {half}" in p.stderr, p.stderr
    assert set(layout_tags(str(layout))) == {"v1", "v2"}
    assert_valid(layout)


def test_cut_download_without_range_support_starts_over(fake_registry: FakeRegistry,
                                                        tmp_path: Path) -> None:
    src, _, _ = _source(tmp_path)
    fake_registry.load_layout(src, "v2")
    fake_registry.ignore_range = True  # answers 200 with the whole blob
    big = _layer_digests(src, "v2")[1]
    fake_registry.faults[big] = "truncate-once"
    run_ki("pull", f"{fake_registry.host}/app:v2", str(tmp_path / "layout"))
    assert len(fake_registry.ranges) == 1
    assert_valid(tmp_path / "layout")


def test_registry_down_is_one_short_line(tmp_path: Path) -> None:
    port = free_port()
    start = time.monotonic()
    p = run_ki("pull", f"127.0.0.1:{port}/app:v1", str(tmp_path / "l"), check=False)
    assert p.returncode == 1
    assert p.stderr.strip() == (f"ketch-image: error: cannot reach registry 127.0.0.1:{port}: "
                                "connection refused")
    assert time.monotonic() - start >= 3.0, "connection errors were not retried with backoff"
    assert not (tmp_path / "l").exists()

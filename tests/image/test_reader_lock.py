"""Readers of a layout (push, unpack, inspect, copy from oci:) hold its shared lock,
so gc waits for them; read-only layouts stay readable."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import ketch_image_cmd, run_ki

# reads the top document, says so, waits for a line, then reads every blob the tag names
READER = """
import sys
from ketch.image.layout import Layout
from ketch.image.transfer import LayoutSource
from ketch.image import oci
import json
src = LayoutSource(Layout.open(sys.argv[1]), sys.argv[2])
body, _, _ = src.top()
print("reading", flush=True)
sys.stdin.readline()
manifest = json.loads(body)
for desc in [manifest["config"], *manifest["layers"]]:
    for _ in src.blob_chunks(desc):
        pass
print("done", flush=True)
"""


@pytest.fixture
def layout(busybox_layout: str, tmp_path: Path) -> Path:
    dst = tmp_path / "layout"
    shutil.copytree(busybox_layout, dst)
    run_ki("tag", f"{dst}:two", "v1")
    return dst


def test_gc_waits_for_a_reader(layout: Path) -> None:
    reader = subprocess.Popen([sys.executable, "-c", READER, str(layout), "v1"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    gc = None
    try:
        assert reader.stdout is not None and reader.stdin is not None
        assert reader.stdout.readline().strip() == "reading"
        run_ki("untag", f"{layout}:v1")
        run_ki("untag", f"{layout}:two")
        run_ki("untag", f"{layout}:one")
        gc = subprocess.Popen([*ketch_image_cmd(), "gc", str(layout)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        assert gc.poll() is None, "gc did not wait for the reader's lock"
        reader.stdin.write("\n")
        reader.stdin.flush()
        out, err = reader.communicate(timeout=60)
        assert reader.returncode == 0, err
        assert out.strip() == "done"
        gout, gerr = gc.communicate(timeout=60)
        assert gc.returncode == 0, gerr
        assert gout.strip(), "gc removed nothing once the reader was done"
    finally:
        for p in (reader, gc):
            if p is not None and p.poll() is None:
                p.kill()
    assert os.listdir(layout / "blobs/sha256") == []


@pytest.fixture
def readonly_layout(layout: Path, tmp_path: Path):
    mnt = tmp_path / "ro"
    mnt.mkdir()
    subprocess.run(["mount", "--bind", str(layout), str(mnt)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mnt)], check=True)
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts need root (CI runs as root)")
def test_readers_work_on_a_read_only_layout(readonly_layout: Path, tmp_path: Path) -> None:
    run_ki("inspect", f"{readonly_layout}:v1")
    run_ki("validate", str(readonly_layout))
    run_ki("unpack", f"{readonly_layout}:v1", str(tmp_path / "bundle"))
    assert (tmp_path / "bundle/rootfs/bin/busybox").exists()
    run_ki("copy", f"oci:{readonly_layout}:v1", f"oci:{tmp_path / 'copy'}:v1")
    run_ki("validate", str(tmp_path / "copy"))


def test_reader_on_an_unopenable_blobs_dir_goes_on_unlocked(layout: Path) -> None:
    from ketch.image.layout import Layout

    # a layout whose blobs/ cannot be opened is read without the lock, saying why
    store = Layout(str(layout / "nonexistent"))
    store.hold_read_lock()
    assert store.lock_skipped is not None and "does not exist" in store.lock_skipped

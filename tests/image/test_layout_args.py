"""LAYOUT:TAG arguments whose tag contains ``/`` or ``:`` (image-layout.md ref.name,
as skopeo writes them): inspect, unpack, push, untag, copy, and pull destinations."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .conftest import Registry
from .fakeregistry import FakeRegistry
from .helpers import layout_tags, run_ki


@pytest.fixture
def layout(busybox_layout: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    shutil.copytree(busybox_layout, tmp_path / "tl")
    monkeypatch.chdir(tmp_path)
    run_ki("tag", "tl:one", "a:b")
    run_ki("tag", "tl:one", "ta/g")
    return "tl"


def test_tags_with_slash_and_colon_work_everywhere(layout: str, tmp_path: Path) -> None:
    assert set(run_ki("ls", layout).stdout.split()) >= {"a:b", "ta/g"}
    digest = layout_tags(layout)["one"]["digest"]
    for name in ("a:b", "ta/g"):
        assert run_ki("inspect", f"{layout}:{name}").stdout.count(digest) >= 1
    run_ki("unpack", f"{layout}:ta/g", str(tmp_path / "bundle"))
    assert (tmp_path / "bundle/rootfs/bin/busybox").exists()
    run_ki("copy", f"oci:{layout}:a:b", f"oci:{tmp_path / 'copy'}:x/y:z")
    assert set(layout_tags(str(tmp_path / "copy"))) == {"x/y:z"}
    run_ki("untag", f"{layout}:ta/g")
    run_ki("untag", f"{layout}:a:b")
    assert not {"a:b", "ta/g"} & set(layout_tags(layout))
    # LAYOUT alone still means the default tag
    p = run_ki("inspect", layout, check=False)
    assert p.returncode == 1 and "tag 'latest' not found" in p.stderr


def test_push_a_tag_with_a_slash(layout: str, registry: Registry) -> None:
    digest = layout_tags(layout)["ta/g"]["digest"]
    p = run_ki("push", f"{layout}:ta/g", f"{registry.host}/args/slash:v1")
    assert p.stdout.strip() == digest


def test_pull_destination_splits_at_the_first_colon(fake_registry: FakeRegistry,
                                                    busybox_layout: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    fake_registry.load_layout(busybox_layout, "one")
    monkeypatch.chdir(tmp_path)
    run_ki("pull", f"{fake_registry.host}/app:one", "bad1:we/ird")
    assert sorted(os.listdir(tmp_path)) == ["bad1"]
    assert set(layout_tags("bad1")) == {"we/ird"}
    run_ki("pull", f"{fake_registry.host}/app:one", "bad1:x:y")
    assert set(layout_tags("bad1")) == {"we/ird", "x:y"}


@pytest.mark.parametrize("tag", ["../escape", "a/../../b", "/abs", "a//b", "a/"])
def test_tags_are_validated(layout: str, tag: str) -> None:
    before = Path(layout, "index.json").read_bytes()
    p = run_ki("tag", f"{layout}:one", tag, check=False)
    assert p.returncode == 1 and "invalid tag" in p.stderr
    p = run_ki("inspect", f"{layout}:{tag}", check=False)
    assert p.returncode == 1 and "invalid tag" in p.stderr
    assert Path(layout, "index.json").read_bytes() == before


def test_an_empty_tag_is_refused(layout: str, tmp_path: Path) -> None:
    """``LAYOUT:`` names no tag: refused for reading and writing (unpack read "latest"
    and a repack overwrote it); ``LAYOUT`` alone still means the default tag."""
    before = Path(layout, "index.json").read_bytes()
    for args in (["inspect", f"{layout}:"], ["unpack", f"{layout}:", str(tmp_path / "b")]):
        p = run_ki(*args, check=False)
        assert p.returncode == 1, p
        assert p.stderr.strip().endswith("empty tag after ':'"), p.stderr
    assert not (tmp_path / "b").exists()
    assert Path(layout, "index.json").read_bytes() == before

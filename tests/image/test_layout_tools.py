"""validate, gc, tag, untag/rm, ls, inspect --raw/--config, the layout lock, and
interop with skopeo and umoci layouts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from .helpers import (
    F,
    LayoutBuilder,
    busybox_entries,
    check_layout,
    ketch_image_cmd,
    layout_tags,
    run_ki,
)


@pytest.fixture
def layout(busybox_layout: str, tmp_path: Path) -> Path:
    dst = tmp_path / "layout"
    shutil.copytree(busybox_layout, dst)
    return dst


def blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / digest.replace(":", "/")


def doc(layout: Path, digest: str) -> dict:
    return json.loads(blob(layout, digest).read_bytes())


def invalid(layout: Path) -> list[str]:
    p = run_ki("validate", str(layout), check=False)
    assert p.returncode == 1, p.stdout
    lines = p.stderr.strip().splitlines()
    assert lines[-1].startswith("ketch-image: error:") and "not a valid OCI image layout" in \
        lines[-1]
    return [x for x in lines if x.startswith("ketch-image: invalid:")]


def test_validate_good_layout(layout: Path) -> None:
    p = run_ki("validate", str(layout))
    assert "valid OCI image layout (2 tags" in p.stdout and p.stderr == ""
    assert run_ki("validate", "-q", str(layout)).stdout == ""


def test_validate_corrupt_and_missing_blobs(layout: Path) -> None:
    manifest = doc(layout, layout_tags(str(layout))["two"]["digest"])
    layer = blob(layout, manifest["layers"][1]["digest"])
    data = bytearray(layer.read_bytes())
    data[10] ^= 0xFF
    layer.write_bytes(bytes(data))
    blob(layout, manifest["layers"][0]["digest"]).unlink()
    (layout / "blobs/sha256/not-a-digest").write_bytes(b"x")
    problems = invalid(layout)
    text = "\n".join(problems)
    assert "digest mismatch" in text and "not-a-digest" in text
    assert f"blob {manifest['layers'][0]['digest']} is missing" in text


@pytest.mark.parametrize("what", ["index", "manifest", "config"])
def test_validate_schema_violations(layout: Path, what: str) -> None:
    index = json.loads((layout / "index.json").read_text())
    desc = layout_tags(str(layout))["one"]
    if what == "index":
        index["manifests"][0]["annotations"] = {"org.opencontainers.image.ref.name": 7}
        (layout / "index.json").write_text(json.dumps(index))
        expect = "index.json"
    else:
        b = LayoutBuilder.__new__(LayoutBuilder)  # reuse its blob writer on this layout
        b.path = str(layout)
        manifest = doc(layout, desc["digest"])
        if what == "manifest":
            manifest["annotations"] = {"key": ["not", "a", "string"]}
        else:
            config = doc(layout, manifest["config"]["digest"])
            config["architecture"] = 64
            manifest["config"] = b.blob(json.dumps(config).encode(),
                                        manifest["config"]["mediaType"])
        new = b.blob(json.dumps(manifest).encode(), desc["mediaType"])
        for d in index["manifests"]:
            if d["digest"] == desc["digest"]:
                d.update(digest=new["digest"], size=new["size"])
        (layout / "index.json").write_text(json.dumps(index))
        expect = "config" if what == "config" else "manifests[1]"
    problems = invalid(layout)
    assert problems and any(expect in p for p in problems), problems


def test_validate_accepts_unknown_media_type_and_warns_on_leftovers(layout: Path) -> None:
    index = json.loads((layout / "index.json").read_text())
    index["manifests"].append({"mediaType": "application/vnd.example.thing+json",
                               "digest": "sha256:" + "ab" * 32, "size": 3})
    (layout / "index.json").write_text(json.dumps(index))
    (layout / ".ketch-tmp").mkdir()
    (layout / ".ketch-tmp/blob-partial").write_bytes(b"half")
    p = run_ki("validate", str(layout))
    assert "valid OCI image layout" in p.stdout
    assert "ketch-image: warning:" in p.stderr and "unfinished" in p.stderr


def test_tag_untag_ls_inspect(layout: Path) -> None:
    two = layout_tags(str(layout))["two"]
    assert run_ki("tag", f"{layout}:two", "v2.0").stdout.strip() == two["digest"]
    assert run_ki("ls", str(layout)).stdout.split() == ["two", "one", "v2.0"]
    long = run_ki("ls", "-l", str(layout)).stdout.splitlines()[-1].split("\t")
    assert long == ["v2.0", two["digest"], two["mediaType"]]
    assert run_ki("inspect", "--raw", f"{layout}:v2.0").stdout.encode() == \
        blob(layout, two["digest"]).read_bytes()
    config = doc(layout, two["digest"])["config"]
    assert run_ki("inspect", "--config", f"{layout}:v2.0").stdout.encode() == \
        blob(layout, config["digest"]).read_bytes()
    run_ki("untag", f"{layout}:two")
    run_ki("rm", f"{layout}:one")
    assert run_ki("ls", str(layout)).stdout.split() == ["v2.0"]
    for args, message in [(("untag", f"{layout}:gone"), "tag 'gone' not found"),
                          (("tag", f"{layout}:v2.0", "bad tag"), "invalid tag 'bad tag'"),
                          (("tag", f"{layout}:nope", "x"), "tag 'nope' not found"),
                          (("ls", str(layout / "nothing")), "not an OCI image layout")]:
        p = run_ki(*args, check=False)
        assert p.returncode == 1 and message in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1
    check_layout(str(layout))


def test_gc_removes_only_unreferenced_blobs(layout: Path, tmp_path: Path) -> None:
    one, two = (layout_tags(str(layout))[t] for t in ("one", "two"))
    m_two = doc(layout, two["digest"])
    only_two = {two["digest"], m_two["config"]["digest"], m_two["layers"][1]["digest"]}
    (layout / ".ketch-tmp").mkdir()
    (layout / ".ketch-tmp/blob-partial").write_bytes(b"half")
    # every blob is referenced; the interrupted write's temp file is listed, then removed
    assert run_ki("gc", "--dry-run", str(layout)).stdout == ".ketch-tmp/blob-partial\n"
    assert (layout / ".ketch-tmp/blob-partial").exists()
    assert run_ki("gc", str(layout)).stdout == ".ketch-tmp/blob-partial\n"
    assert not (layout / ".ketch-tmp").exists()
    run_ki("untag", f"{layout}:two")
    listed = set(run_ki("gc", "--dry-run", str(layout)).stdout.split())
    assert listed == only_two and all(blob(layout, d).exists() for d in only_two)
    assert set(run_ki("gc", str(layout)).stdout.split()) == only_two
    assert not any(blob(layout, d).exists() for d in only_two)
    run_ki("validate", str(layout))
    run_ki("unpack", f"{layout}:one", str(tmp_path / "bundle"))
    assert (tmp_path / "bundle/rootfs/etc/motd").exists()
    assert layout_tags(str(layout))["one"]["digest"] == one["digest"]


def test_gc_refuses_when_a_manifest_is_unreadable(layout: Path) -> None:
    two = layout_tags(str(layout))["two"]
    blob(layout, two["digest"]).write_bytes(b"{broken")
    before = sorted(os.listdir(layout / "blobs/sha256"))
    p = run_ki("gc", str(layout), check=False)
    assert p.returncode == 1 and "gc refused" in p.stderr
    assert sorted(os.listdir(layout / "blobs/sha256")) == before


WRITER = """
import sys
from ketch.image.layout import Layout
layout = Layout.open(sys.argv[1])
desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
        **layout.write_blob(open(sys.argv[2], "rb").read())}
print("written", flush=True)
sys.stdin.readline()
layout.set_tag("late", desc)
"""


def test_gc_waits_for_a_writer(layout: Path, tmp_path: Path) -> None:
    # a second image's manifest is written, but tagged only after gc has started
    b = LayoutBuilder(str(tmp_path / "other"))
    desc = b.image([[F("late", b"late\n")]])
    for name in os.listdir(tmp_path / "other/blobs/sha256"):
        if f"sha256:{name}" != desc["digest"]:
            shutil.copy(tmp_path / "other/blobs/sha256" / name, layout / "blobs/sha256" / name)
    manifest_file = tmp_path / "other/blobs/sha256" / desc["digest"][7:]
    import sys
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(layout), str(manifest_file)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdin is not None
        assert writer.stdout.readline().strip() == "written"
        gc = subprocess.Popen([*ketch_image_cmd(), "gc", str(layout)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        assert gc.poll() is None, "gc did not wait for the writer's lock"
        writer.stdin.write("\n")
        writer.stdin.flush()
        assert writer.wait(30) == 0
        out, err = gc.communicate(timeout=30)
        assert gc.returncode == 0, err
    finally:
        for p in (writer,):
            if p.poll() is None:
                p.kill()
    assert desc["digest"] not in out
    assert blob(layout, desc["digest"]).exists()
    run_ki("validate", str(layout))
    run_ki("unpack", f"{layout}:late", str(tmp_path / "bundle"))
    assert (tmp_path / "bundle/rootfs/late").read_text() == "late\n"


# -- interop -------------------------------------------------------------------------


def test_skopeo_and_umoci_read_what_ketch_writes(debian_tools: None, layout: Path,
                                                 tmp_path: Path) -> None:
    b = LayoutBuilder(str(tmp_path / "src"))
    entries = []
    for arch in ("amd64", "arm64"):
        d = b.image([[*busybox_entries()[:2], F("platform", arch.encode())]], arch=arch)
        entries.append((d, {"os": "linux", "architecture": arch}))
    b.tag("multi", b.index(entries))
    # ketch-image's own writes: tag, untag, gc
    run_ki("tag", f"{layout}:two", "retagged")
    run_ki("untag", f"{layout}:one")
    run_ki("gc", str(layout))
    sk = tmp_path / "skopeo"
    subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", f"oci:{layout}:retagged",
                    f"oci:{sk}:x"], check=True, capture_output=True, timeout=60)
    assert layout_tags(str(sk))["x"]["digest"] == layout_tags(str(layout))["retagged"]["digest"]
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:retagged", str(tmp_path / "ub")],
                   check=True, capture_output=True, timeout=60)
    assert (tmp_path / "ub/rootfs/opt/app/new.txt").read_text() == "new\n"


def test_ketch_reads_what_skopeo_and_umoci_write(debian_tools: None, busybox_layout: str,
                                                 tmp_path: Path) -> None:
    sk = tmp_path / "skopeo"
    subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", f"oci:{busybox_layout}:two",
                    f"oci:{sk}:copied"], check=True, capture_output=True, timeout=60)
    run_ki("validate", str(sk))
    run_ki("unpack", f"{sk}:copied", str(tmp_path / "b1"))
    assert (tmp_path / "b1/rootfs/opt/app/new.txt").read_text() == "new\n"
    um = tmp_path / "umoci"
    subprocess.run(["umoci", "init", "--layout", str(um)], check=True, capture_output=True)
    subprocess.run(["umoci", "new", "--image", f"{um}:base"], check=True, capture_output=True)
    subprocess.run(["umoci", "unpack", "--image", f"{um}:base", str(tmp_path / "ub")],
                   check=True, capture_output=True)
    (tmp_path / "ub/rootfs/hello").write_text("from umoci\n")
    subprocess.run(["umoci", "repack", "--image", f"{um}:base", str(tmp_path / "ub")],
                   check=True, capture_output=True)
    run_ki("validate", str(um))
    assert run_ki("ls", str(um)).stdout.split() == ["base"]
    run_ki("unpack", f"{um}:base", str(tmp_path / "b2"))
    assert (tmp_path / "b2/rootfs/hello").read_text() == "from umoci\n"


def test_concurrent_writers_lose_no_tag(layout: Path, tmp_path: Path) -> None:
    # eight processes add a tag each, two import into the same layout meanwhile
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc/hostname").write_text("imported\n")
    procs = [subprocess.Popen([*ketch_image_cmd(), "tag", f"{layout}:two", f"t{i}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(8)]
    procs += [subprocess.Popen([*ketch_image_cmd(), "import", str(rootfs), f"{layout}:imp{i}"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    tags = run_ki("ls", str(layout)).stdout.split()
    assert sorted(tags) == sorted(["two", "one", *[f"t{i}" for i in range(8)], "imp0", "imp1"])
    run_ki("validate", str(layout))


def test_write_lock_is_released_with_the_layout(layout: Path) -> None:
    import fcntl

    from ketch.image.layout import Layout

    def gc_could_run() -> bool:
        fd = os.open(layout / "blobs", os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)

    writer = Layout.open(str(layout))
    writer.write_blob(b"some bytes")
    assert not gc_could_run()
    writer.release()
    assert gc_could_run()
    writer = Layout.open(str(layout))
    writer.write_blob(b"other bytes")
    assert not gc_could_run()
    del writer
    assert gc_could_run()


def test_path_digest_in_index_json(layout: Path, tmp_path: Path) -> None:
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0]["digest"] = "sha256:../../../../etc/passwd"
    (layout / "index.json").write_text(json.dumps(index))
    assert any("invalid digest 'sha256:../../../../etc/passwd'" in p for p in invalid(layout))
    p = run_ki("gc", str(layout), check=False)
    assert p.returncode == 1 and "invalid digest" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    p = run_ki("push", f"{layout}:two", "127.0.0.1:1/x:y", check=False)
    assert p.returncode == 1 and "invalid digest" in p.stderr


def test_an_index_of_many_tags_over_4_mib_is_read(layout: Path) -> None:
    """A layout's own index.json with 8,000 long tags (over 4 MiB, as umoci and skopeo
    read): ls, tag, inspect and validate work (it was refused, with a wrong size)."""
    index = json.loads((layout / "index.json").read_text())
    first = index["manifests"][0]
    for i in range(8000):
        d = dict(first)
        d["annotations"] = {"org.opencontainers.image.ref.name": f"tag-{i:05d}-" + "x" * 400}
        index["manifests"].append(d)
    (layout / "index.json").write_text(json.dumps(index))
    assert (layout / "index.json").stat().st_size > 4 * 1024 * 1024
    assert len(run_ki("ls", str(layout)).stdout.split()) >= 8000
    run_ki("tag", f"{layout}:tag-00001-" + "x" * 400, "short")
    run_ki("inspect", f"{layout}:short")
    run_ki("validate", str(layout))


def test_blob_writer_survives_the_temp_dir_vanishing(layout: Path, monkeypatch) -> None:
    """Another process's cleanup may rmdir the empty temp directory between a writer's
    makedirs and its mkstemp (a concurrent import failed with "no such file"): the
    writer makes it again."""
    import tempfile

    from ketch.image.layout import Layout

    real = tempfile.mkstemp
    calls = []

    def vanishing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            shutil.rmtree(layout / ".ketch-tmp")
            raise FileNotFoundError(2, "No such file or directory")
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", vanishing)
    lay = Layout.open(str(layout))
    with lay.blob_writer() as w:
        w.write(b"data")
        desc = w.commit()
    assert len(calls) == 2 and desc["size"] == 4
    assert lay.read_blob(desc["digest"], 4) == b"data"
    # index.json is written the same way (a concurrent `tag` failed like that too)
    calls.clear()
    lay.set_tag("again", lay.lookup("one"))
    assert len(calls) == 2 and "again" in layout_tags(str(layout))
    lay.release()


def _replace_config(layout: Path, tag: str, edit) -> dict:
    """Rewrite the config of ``tag`` through ``edit(config)``; return the manifest."""
    index = json.loads((layout / "index.json").read_text())
    desc = layout_tags(str(layout))[tag]
    b = LayoutBuilder.__new__(LayoutBuilder)  # reuse its blob writer on this layout
    b.path = str(layout)
    manifest = doc(layout, desc["digest"])
    config = doc(layout, manifest["config"]["digest"])
    edit(config)
    manifest["config"] = b.blob(json.dumps(config).encode(), manifest["config"]["mediaType"])
    new = b.blob(json.dumps(manifest).encode(), desc["mediaType"])
    for d in index["manifests"]:
        if d["digest"] == desc["digest"]:
            d.update(digest=new["digest"], size=new["size"])
    (layout / "index.json").write_text(json.dumps(index))
    return manifest


def test_validate_counts_diff_ids_and_verifies_them_on_request(layout: Path) -> None:
    good = run_ki("validate", "--verify-layers", str(layout))
    assert "layers uncompressed" in good.stdout and good.stderr == ""

    def wrong_value(config: dict) -> None:
        config["rootfs"]["diff_ids"][-1] = "sha256:" + "0" * 64

    manifest = _replace_config(layout, "two", wrong_value)
    # blob by blob the layout is fine; only decompressing shows the wrong diff_id
    assert run_ki("validate", str(layout)).returncode == 0
    problems = invalid_with(layout, "--verify-layers")
    last = len(manifest["layers"]) - 1
    assert len(problems) == 1 and f"rootfs.diff_ids[{last}] is sha256:{'0' * 64}" in problems[0] \
        and manifest["layers"][last]["digest"] in problems[0], problems

    _replace_config(layout, "one", lambda c: c["rootfs"]["diff_ids"].append("sha256:" + "1" * 64))
    problems = invalid(layout)
    assert any("rootfs.diff_ids has" in p and "entries for" in p for p in problems), problems


def invalid_with(layout: Path, *flags: str) -> list[str]:
    p = run_ki("validate", *flags, str(layout), check=False)
    assert p.returncode == 1, p.stdout
    return [x for x in p.stderr.splitlines() if x.startswith("ketch-image: invalid:")]


def test_a_malformed_index_entry_is_named_and_can_be_untagged(layout: Path) -> None:
    """One bad index.json entry made every command fail with a bare "invalid digest"
    and nothing could drop it but an editor; validate reported it three times."""
    index = json.loads((layout / "index.json").read_text())
    index["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "digest": "sha256:../../../../etc/passwd", "size": 10,
                               "annotations": {"org.opencontainers.image.ref.name": "evil"}})
    (layout / "index.json").write_text(json.dumps(index))
    n = len(index["manifests"]) - 1
    for command in ("ls", "gc"):
        p = run_ki(command, str(layout), check=False)
        assert p.returncode == 1 and p.stderr == (
            f"ketch-image: error: {layout}: index.json manifests[{n}] (tag 'evil'): invalid "
            f"digest 'sha256:../../../../etc/passwd'; `ketch-image untag {layout}:evil` "
            "removes it\n"), p.stderr
    problems = invalid(layout)
    assert len(problems) == 1 and f"index.json manifests[{n}]" in problems[0] \
        and "invalid digest" in problems[0], problems
    run_ki("untag", f"{layout}:evil")
    assert sorted(layout_tags(str(layout))) == ["one", "two"]
    run_ki("validate", str(layout))


def test_layout_commands_take_the_oci_prefix(layout: Path) -> None:
    """skopeo users type oci:PATH by habit; ls said "oci:L1: not an OCI image layout"."""
    assert sorted(run_ki("ls", f"oci:{layout}").stdout.split()) == ["one", "two"]
    assert "valid OCI image layout" in run_ki("validate", f"oci:{layout}").stdout
    run_ki("gc", "-n", f"oci:{layout}")
    assert json.loads(run_ki("inspect", f"oci:{layout}:one").stdout)["manifest"]


def test_malformed_entry_hint_never_suggests_dropping_a_good_image(layout: Path) -> None:
    """The hint suggested `untag L:one` for a bad entry sharing the tag "one" with a good
    one (untag drops both); an entry without a tag got no hint at all."""
    index = json.loads((layout / "index.json").read_text())
    bad = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": "sha256:../../x", "size": 5}
    for extra, hint in ((bad, "edit index.json to remove it (untag needs a tag)"),
                        ({**bad, "annotations": {"org.opencontainers.image.ref.name": "one"}},
                         "other entries share its tag 'one' (untag would drop them too)"),
                        ("justastring", "is not a JSON object; edit index.json")):
        (layout / "index.json").write_text(json.dumps(
            {**index, "manifests": [*index["manifests"], extra]}))
        p = run_ki("ls", str(layout), check=False)
        assert p.returncode == 1 and hint in p.stderr and "untag " + str(layout) not in \
            p.stderr, p.stderr


def test_untag_hint_is_quoted_and_only_for_tags_untag_takes(layout: Path, tmp_path: Path) -> None:
    """The hint was pasted as is: `untag L:v1;touch X` dropped the good v1 and ran a
    command; a tag untag refuses ('a b') was offered to untag too."""
    import shlex

    spaced = tmp_path / "with space"
    shutil.copytree(layout, spaced)
    index = json.loads((spaced / "index.json").read_text())
    bad = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": "sha256:00", "size": 5}
    for tag in ("one;touch /tmp/ketch-pwned", "a b", ""):
        (spaced / "index.json").write_text(json.dumps({**index, "manifests": [
            *index["manifests"], {**bad, "annotations": {
                "org.opencontainers.image.ref.name": tag}}]}))
        p = run_ki("ls", str(spaced), check=False)
        assert p.returncode == 1 and "its tag is not one untag accepts" in p.stderr, p.stderr
        assert "untag " not in p.stderr.replace("untag accepts", "")
    (spaced / "index.json").write_text(json.dumps({**index, "manifests": [
        *index["manifests"], {**bad, "annotations": {
            "org.opencontainers.image.ref.name": "bad"}}]}))
    p = run_ki("ls", str(spaced), check=False)
    hint = p.stderr.split("`")[1]
    argv = shlex.split(hint)
    assert argv[:2] == ["ketch-image", "untag"], hint
    run_ki(*argv[1:])  # the hint, pasted, does what it says
    assert sorted(layout_tags(str(spaced))) == ["one", "two"]


def test_tag_and_untag_leave_no_temp_directory(layout: Path) -> None:
    """index.json is written through .ketch-tmp; tag/untag left it behind, empty (skopeo
    and umoci leave nothing extra in a layout)."""
    run_ki("tag", f"{layout}:one", "extra")
    run_ki("untag", f"{layout}:extra")
    assert not (layout / ".ketch-tmp").exists()

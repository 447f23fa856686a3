"""ketch-image copy between docker://, oci: and oci-archive:, checked with skopeo."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from ketch.image.errors import DigestError

from .conftest import Registry
from .helpers import (
    F,
    LayoutBuilder,
    busybox_entries,
    check_layout,
    ketch_image_cmd,
    layout_tags,
    run_ki,
)
from .test_push import access_log, read_doc, skopeo_inspect

pytestmark = pytest.mark.registry


def test_copy_round_trip_through_every_transport(registry: Registry, busybox_layout: str,
                                                 tmp_path: Path) -> None:
    digest = layout_tags(busybox_layout)["two"]["digest"]
    archive = tmp_path / "image.tar"
    steps = [(f"oci:{busybox_layout}:two", f"docker://{registry.host}/copy/a:two"),
             (f"docker://{registry.host}/copy/a:two", f"oci:{tmp_path / 'l1'}"),
             (f"oci:{tmp_path / 'l1'}:two", f"oci-archive:{archive}:arch"),
             (f"oci-archive:{archive}:arch", f"docker://{registry.host}/copy/b:two"),
             (f"docker://{registry.host}/copy/b:two", f"oci:{tmp_path / 'l2'}:back")]
    for src, dst in steps:
        assert run_ki("copy", src, dst).stdout.strip() == digest, (src, dst)
    assert skopeo_inspect(f"{registry.host}/copy/b:two")["Digest"] == digest
    assert layout_tags(str(tmp_path / "l1"))["two"]["digest"] == digest
    check_layout(str(tmp_path / "l2"))
    run_ki("validate", str(tmp_path / "l2"))
    # skopeo reads the archive ketch-image wrote, and ketch-image reads skopeo's
    sk = subprocess.run(["skopeo", "inspect", f"oci-archive:{archive}:arch"],
                        capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(sk.stdout)["Digest"] == digest
    theirs = tmp_path / "skopeo.tar"
    subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", f"oci:{busybox_layout}:one",
                    f"oci-archive:{theirs}:sk"], check=True, capture_output=True, timeout=60)
    run_ki("copy", f"oci-archive:{theirs}:sk", f"oci:{tmp_path / 'l3'}")
    assert layout_tags(str(tmp_path / "l3"))["sk"]["digest"] == \
        layout_tags(busybox_layout)["one"]["digest"]
    # a second tag added to an existing archive keeps the first
    run_ki("copy", f"oci:{busybox_layout}:one", f"oci-archive:{archive}:other")
    sk = subprocess.run(["skopeo", "inspect", f"oci-archive:{archive}:arch"],
                        capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(sk.stdout)["Digest"] == digest


def test_copy_within_a_registry_mounts(registry: Registry, busybox_layout: str) -> None:
    run_ki("copy", f"oci:{busybox_layout}:one", f"docker://{registry.host}/copy/src:one")
    before = len(access_log(registry))
    p = run_ki("copy", "-v", f"docker://{registry.host}/copy/src:one",
               f"docker://{registry.host}/copy/dst:one")
    assert "Mounted blob" in p.stderr
    later = access_log(registry)[before:]
    manifest = read_doc(busybox_layout, layout_tags(busybox_layout)["one"]["digest"])
    # only the (small) config is read, to check it; no layer travels
    fetched = {x[1].rsplit("/", 1)[-1] for x in later if x[0] == "GET" and "/blobs/" in x[1]}
    assert fetched == {manifest["config"]["digest"]}
    assert skopeo_inspect(f"{registry.host}/copy/dst:one")["Digest"] == \
        layout_tags(busybox_layout)["one"]["digest"]


def test_copy_all_platforms_through_an_archive(registry: Registry, tmp_path: Path) -> None:
    b = LayoutBuilder(str(tmp_path / "src"))
    entries = []
    for arch in ("amd64", "arm64", "s390x"):
        d = b.image([[*busybox_entries()[:2], F("platform", arch.encode())]], arch=arch)
        entries.append((d, {"os": "linux", "architecture": arch}))
    idx = b.index(entries)
    b.tag("multi", idx)
    archive = tmp_path / "multi.tar"
    run_ki("copy", "--all", f"oci:{tmp_path / 'src'}:multi", f"oci-archive:{archive}:m")
    run_ki("copy", "--all", f"oci-archive:{archive}:m", f"docker://{registry.host}/copy/multi:m")
    assert skopeo_inspect(f"{registry.host}/copy/multi:m", raw=True) == \
        read_doc(str(tmp_path / "src"), idx["digest"])
    # without --all, one platform is picked and tagged
    out = tmp_path / "one"
    run_ki("copy", "--platform", "linux/s390x", f"docker://{registry.host}/copy/multi:m",
           f"oci:{out}:s")
    desc = layout_tags(str(out))["s"]
    assert desc["digest"] == entries[2][0]["digest"] and desc["platform"]["architecture"] == "s390x"


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> None:
    with tarfile.open(path, "w") as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    return ti, data


@pytest.mark.parametrize("member", ["../evil", "/abs", "blobs/sha256/../../../evil", "symlink",
                                    "etc/passwd"])
def test_hostile_archive_is_refused(busybox_layout: str, tmp_path: Path, member: str) -> None:
    archive = tmp_path / "bad.tar"
    if member == "symlink":
        ti = tarfile.TarInfo("blobs/sha256/" + "a" * 64)
        ti.type, ti.linkname = tarfile.SYMTYPE, "/etc/passwd"
        members = [_file("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), (ti, None)]
    else:
        members = [_file("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), _file(member, b"x")]
    _tar(archive, members)
    p = run_ki("copy", f"oci-archive:{archive}:x", f"oci:{tmp_path / 'out'}", check=False)
    assert p.returncode == 1 and "unexpected archive member" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "evil").exists()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["bad.tar"]


def test_failed_copy_leaves_the_archive_untouched(busybox_layout: str, tmp_path: Path) -> None:
    archive = tmp_path / "a.tar"
    run_ki("copy", f"oci:{busybox_layout}:one", f"oci-archive:{archive}:one")
    before = archive.read_bytes()
    p = run_ki("copy", f"oci:{busybox_layout}:missing", f"oci-archive:{archive}:two",
               check=False)
    assert p.returncode == 1 and f"tag 'missing' not found in oci:{busybox_layout}" in p.stderr
    assert archive.read_bytes() == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.tar"]
    for bad, message in [("dir:/x", "unsupported transport 'dir'"),
                         ("docker://Bad/Name", "invalid repository name"),
                         ("bogus://x", "unknown transport 'bogus'"),
                         ("127.0.0.1:5000/app:v1", "looks like a registry reference: write "
                                                   "docker://127.0.0.1:5000/app:v1"),
                         ("docker://localhost:99999/x", "port 99999 out of range 1-65535"),
                         ("[::1]:5000/app:v1", "looks like a registry reference"),
                         ("oci:/x:bad tag", "invalid tag")]:
        p = run_ki("copy", bad, f"oci:{tmp_path / 'o'}", check=False)
        assert p.returncode == 1 and message in p.stderr, p.stderr
    # a pasted registry reference as the destination made the local layout "127.0.0.1"
    p = subprocess.run([*ketch_image_cmd(), "copy", f"oci:{busybox_layout}:one",
                        "127.0.0.1:5000/app:v1"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 1 and "looks like a registry reference" in p.stderr, p.stderr
    assert not (tmp_path / "127.0.0.1").exists()


def test_multi_arch_layouts_between_ketch_skopeo_and_umoci(registry: Registry,
                                                           tmp_path: Path) -> None:
    b = LayoutBuilder(str(tmp_path / "src"))
    entries = []
    for arch in ("amd64", "arm64"):
        d = b.image([[*busybox_entries()[:2], F("platform", arch.encode())]], arch=arch)
        entries.append((d, {"os": "linux", "architecture": arch}))
    idx = b.index(entries)
    b.tag("multi", idx)
    ref = f"{registry.host}/copy/interop:multi"
    run_ki("push", f"{tmp_path / 'src'}:multi", ref)
    # ketch-image writes the index layout; skopeo copies it whole, umoci unpacks a manifest
    ours = tmp_path / "ours"
    run_ki("pull", "--all-platforms", ref, str(ours))
    theirs = tmp_path / "skopeo-from-ours"
    subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", "--all", f"oci:{ours}:multi",
                    f"oci:{theirs}:m"], check=True, capture_output=True, timeout=60)
    assert layout_tags(str(theirs))["m"]["digest"] == idx["digest"]
    run_ki("copy", f"oci:{ours}:multi", f"oci:{tmp_path / 'single'}:amd",
           "--platform", "linux/amd64")
    subprocess.run(["umoci", "unpack", "--image", f"{tmp_path / 'single'}:amd",
                    str(tmp_path / "ub")], check=True, capture_output=True, timeout=60)
    assert (tmp_path / "ub/rootfs/platform").read_text() == "amd64"
    # skopeo writes the index layout; ketch-image validates, unpacks and pushes it
    sk = tmp_path / "skopeo"
    subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", "--all",
                    "--src-tls-verify=false", f"docker://{ref}", f"oci:{sk}:s"],
                   check=True, capture_output=True, timeout=60)
    run_ki("validate", str(sk))
    run_ki("unpack", "--platform", "linux/arm64", f"{sk}:s", str(tmp_path / "kb"))
    assert (tmp_path / "kb/rootfs/platform").read_text() == "arm64"
    assert run_ki("push", f"{sk}:s", f"{registry.host}/copy/interop:again").stdout.strip() == \
        idx["digest"]


def test_archive_temp_files_of_a_killed_copy_are_removed_later(busybox_layout: str,
                                                               tmp_path: Path) -> None:
    """kill -9 during a copy into an oci-archive left a full-size .ketch-archive-* directory
    beside the archive for good; the next archive operation there removes such leftovers,
    but never one a live process holds (flock) or one just made."""
    import fcntl
    import os
    import time

    old = time.time() - 3600
    stale_dir, stale_tar = tmp_path / ".ketch-archive-dead", tmp_path / ".ketch-archive-x.tar"
    held, fresh = tmp_path / ".ketch-archive-held", tmp_path / ".ketch-archive-new"
    for d in (stale_dir, held, fresh):
        (d / "layout" / "blobs").mkdir(parents=True)
    stale_tar.write_bytes(b"partial tar")
    for p in (stale_dir, stale_tar, held):
        os.utime(p, (old, old))
    fd = os.open(held, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        run_ki("copy", f"oci:{busybox_layout}:one", f"oci-archive:{tmp_path / 'a.tar'}:one")
    finally:
        os.close(fd)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [".ketch-archive-held", ".ketch-archive-new", "a.tar"], left



class _FailingSource:
    """A source whose blobs break after their first bytes (a corrupt or cut-off source)."""

    name = "failing"

    def resume_chunks(self, desc: dict, start: int):
        def chunks():
            yield b"abc"
            raise DigestError("blob digest mismatch")
        return 0, chunks()


def test_failed_copy_into_a_new_layout_leaves_no_directory(busybox_layout: str,
                                                           tmp_path: Path) -> None:
    """A copy from a corrupt layout left an empty new layout behind; one that stored
    blobs keeps them (a rerun resumes), and an existing layout is never removed."""
    from ketch.image.transfer import LayoutDestination

    desc = {"digest": "sha256:" + "a" * 64, "size": 10}
    for name, existing in (("new", False), ("old", True)):
        if existing:
            run_ki("copy", f"oci:{busybox_layout}:one", f"oci:{tmp_path / name}:one")
        with pytest.raises(DigestError), LayoutDestination(str(tmp_path / name)) as dst:
            dst.put_blob(desc, _FailingSource(), lambda _msg: None)  # type: ignore[arg-type]
        assert (tmp_path / name).exists() == existing
    kept = tmp_path / "kept"
    with pytest.raises(DigestError), LayoutDestination(str(kept)) as dst:
        dst.layout.write_blob(b"stored")
        dst.put_blob(desc, _FailingSource(), lambda _msg: None)  # type: ignore[arg-type]
    check_layout(str(kept))

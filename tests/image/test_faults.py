"""Registry faults, served by a fake distribution API: corrupt, oversized and truncated
blobs, a tampered manifest, an interrupted pull, Basic auth. The layout must stay valid."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .fakeregistry import FakeRegistry
from .helpers import D, F, LayoutBuilder, check_layout, ketch_image_cmd, layout_tags, run_ki


def _source(tmp_path: Path) -> tuple[str, dict, dict]:
    """A layout with tag v1 (small) and v2 (with a 3 MB layer), returns (path, v1, v2)."""
    b = LayoutBuilder(str(tmp_path / "src"))
    v1 = b.image([[D("etc"), F("etc/hostname", b"v1\n")]])
    big = os.urandom(3 * 1024 * 1024)
    v2 = b.image([[D("etc"), F("etc/hostname", b"v2\n")], [F("big", big)]])
    b.tag("v1", v1)
    b.tag("v2", v2)
    return str(tmp_path / "src"), v1, v2


def _layer_digests(src: str, tag: str) -> list[str]:
    import json
    desc = layout_tags(src)[tag]
    with open(os.path.join(src, "blobs", *desc["digest"].split(":"))) as f:
        return [d["digest"] for d in json.load(f)["layers"]]


@pytest.fixture
def served(fake_registry: FakeRegistry, tmp_path: Path) -> tuple[FakeRegistry, str]:
    src, _, _ = _source(tmp_path)
    fake_registry.load_layout(src, "v1")
    fake_registry.load_layout(src, "v2")
    return fake_registry, src


def _pull_v1_then(fake: FakeRegistry, tmp_path: Path) -> Path:
    layout = tmp_path / "layout"
    run_ki("pull", f"{fake.host}/app:v1", str(layout))
    return layout


@pytest.mark.parametrize("fault,message", [("corrupt", "digest mismatch"),
                                           ("oversize", "more data than the expected size"),
                                           ("truncate", "download interrupted")])
def test_bad_blob_fails_and_keeps_layout_valid(served: tuple[FakeRegistry, str], tmp_path: Path,
                                               fault: str, message: str) -> None:
    fake, src = served
    layout = _pull_v1_then(fake, tmp_path)
    before = (layout / "index.json").read_bytes()
    bad = _layer_digests(src, "v2")[1]
    fake.faults[bad] = fault
    p = run_ki("pull", f"{fake.host}/app:v2", str(layout), check=False)
    assert p.returncode == 1, p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith("ketch-image: error:")
    assert message in p.stderr
    assert (layout / "index.json").read_bytes() == before
    assert not (layout / "blobs/sha256" / bad[7:]).exists()
    check_layout(str(layout))
    assert set(layout_tags(str(layout))) == {"v1"}
    assert not (layout / ".ketch-tmp").exists(), "temporary files left behind"
    # once the registry serves the right bytes, the same pull completes
    del fake.faults[bad]
    run_ki("pull", f"{fake.host}/app:v2", str(layout))
    assert set(layout_tags(str(layout))) == {"v1", "v2"}
    check_layout(str(layout))


def test_corrupt_first_pull_creates_no_tag(served: tuple[FakeRegistry, str], tmp_path: Path) -> None:
    fake, src = served
    fake.faults[_layer_digests(src, "v1")[0]] = "corrupt"
    layout = tmp_path / "layout"
    p = run_ki("pull", f"{fake.host}/app:v1", str(layout), check=False)
    assert p.returncode == 1 and "digest mismatch" in p.stderr
    check_layout(str(layout))
    assert layout_tags(str(layout)) == {}


def test_tampered_manifest_by_digest(served: tuple[FakeRegistry, str], tmp_path: Path) -> None:
    fake, src = served
    digest = layout_tags(src)["v1"]["digest"]
    fake.manifest_faults[digest] = "corrupt"
    p = run_ki("pull", f"{fake.host}/app@{digest}", str(tmp_path / "layout"), check=False)
    assert p.returncode == 1 and "digest mismatch" in p.stderr
    assert not (tmp_path / "layout").exists()


def test_interrupted_pull_leaves_a_valid_layout(served: tuple[FakeRegistry, str],
                                                tmp_path: Path) -> None:
    fake, src = served
    layout = _pull_v1_then(fake, tmp_path)
    before = (layout / "index.json").read_bytes()
    big = _layer_digests(src, "v2")[1]
    fake.faults[big] = "stall"
    proc = subprocess.Popen([*ketch_image_cmd(), "pull", f"{fake.host}/app:v2", str(layout)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert fake.stalled.wait(60), "the pull never reached the big blob"
        time.sleep(0.5)  # the small blobs, downloaded in parallel, are complete
        # the client has half of the blob on disk in a temp file: kill it hard
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        fake.release.set()
    assert proc.returncode == -signal.SIGKILL
    assert (layout / "index.json").read_bytes() == before
    assert set(layout_tags(str(layout))) == {"v1"}
    assert not (layout / "blobs/sha256" / big[7:]).exists()
    check_layout(str(layout))
    run_ki("unpack", f"{layout}:v1", str(tmp_path / "bundle"))
    assert (tmp_path / "bundle/rootfs/etc/hostname").read_text() == "v1\n"
    assert [n for n in os.listdir(layout / ".ketch-tmp") if n.startswith("blob-")], \
        "the killed pull left no partial blob to clean up"
    del fake.faults[big]
    fake.log.clear()
    p = run_ki("pull", "-v", f"{fake.host}/app:v2", str(layout))
    # the resumed pull fetches only what it did not finish, and drops the partial file
    assert [x for x in fake.log if "/blobs/" in x] == [f"/v2/app/blobs/{big}"]
    assert p.stderr.count("already present") == 2
    assert not (layout / ".ketch-tmp").exists()
    check_layout(str(layout))
    run_ki("validate", str(layout))
    run_ki("unpack", f"{layout}:v2", str(tmp_path / "bundle2"))
    assert (tmp_path / "bundle2/rootfs/big").stat().st_size == 3 * 1024 * 1024


def test_basic_auth(served: tuple[FakeRegistry, str], tmp_path: Path) -> None:
    fake, _ = served
    fake.basic = ("bob", "pw:with,comma")
    p = run_ki("pull", f"{fake.host}/app:v1", str(tmp_path / "l1"), check=False)
    assert p.returncode == 1 and "requires credentials" in p.stderr
    p = run_ki("pull", "--creds", "bob:nope", f"{fake.host}/app:v1", str(tmp_path / "l2"),
               check=False)
    assert p.returncode == 1 and \
        f"{fake.host}: credentials from --creds were rejected (HTTP 401)" in p.stderr
    run_ki("pull", "--creds", "bob:pw:with,comma", f"{fake.host}/app:v1", str(tmp_path / "l3"))
    check_layout(str(tmp_path / "l3"))


def test_unknown_manifest(served: tuple[FakeRegistry, str], tmp_path: Path) -> None:
    fake, _ = served
    p = run_ki("pull", f"{fake.host}/app:nope", str(tmp_path / "l"), check=False)
    assert p.returncode == 1 and "MANIFEST_UNKNOWN" in p.stderr


def test_unreachable_registry(tmp_path: Path) -> None:
    from .conftest import free_port
    p = run_ki("pull", f"127.0.0.1:{free_port()}/app:v1", str(tmp_path / "l"), check=False)
    assert p.returncode == 1 and "cannot reach registry" in p.stderr


def test_redirected_blobs_do_not_get_credentials(served: tuple[FakeRegistry, str],
                                                 tmp_path: Path) -> None:
    # distribution-spec: a client MUST NOT forward the registry's credentials to another host
    fake, _ = served
    fake.basic = ("bob", "pw")
    fake.redirect_host = f"localhost:{fake.port}"
    run_ki("pull", "--creds", "bob:pw", f"{fake.host}/app:v1", str(tmp_path / "l"))
    assert fake.storage_auth and all(a is None for a in fake.storage_auth)
    check_layout(str(tmp_path / "l"))


def test_tags_follow_link_pages_on_the_same_host_only(served: tuple[FakeRegistry, str],
                                                     tmp_path: Path) -> None:
    fake, src = served
    for i in range(5):
        fake.load_layout(src, "v1", f"extra{i}")
    fake.log.clear()
    p = run_ki("tags", "--page-size", "2", f"{fake.host}/app")
    assert p.stdout.split() == sorted(["v1", "v2", *[f"extra{i}" for i in range(5)]])
    assert len([x for x in fake.log if "/tags/list" in x]) == 4
    fake.basic = ("bob", "pw")
    fake.tags_link_host = f"localhost:{fake.port}"
    p = run_ki("tags", "--creds", "bob:pw", "--page-size", "2", f"{fake.host}/app", check=False)
    assert p.returncode == 1 and "is on another host" in p.stderr


def test_tags_list_has_no_page_cap_but_stops_a_paging_loop(served: tuple[FakeRegistry, str]
                                                           ) -> None:
    """Listing stopped with an error after 1000 pages, dropping what it had (skopeo lists
    them all); a registry linking back to a page it sent is a loop, not more tags."""
    fake, _ = served
    for i in range(1100):
        fake.manifests[f"t{i:04d}"] = fake.manifests["v1"]
    p = run_ki("tags", "--page-size", "1", f"{fake.host}/app")
    assert len(p.stdout.split()) == len([t for t in fake.manifests if ":" not in t]) > 1100
    fake.tags_loop = True
    p = run_ki("tags", "--page-size", "2", f"{fake.host}/app", check=False)
    assert p.returncode == 1 and "(a paging loop)" in p.stderr, p.stderr


# -- acceptance faults: each ends in success after a retry or one clear line, and the
# -- layout validates afterwards with no partial blob -----------------------------------


def assert_valid(layout: Path) -> None:
    check_layout(str(layout))
    p = run_ki("validate", str(layout))
    assert "valid OCI image layout" in p.stdout and "warning" not in p.stderr, p.stderr
    assert not (layout / ".ketch-tmp").exists(), "temporary files left behind"


def one_line_error(p: subprocess.CompletedProcess) -> str:
    assert p.returncode == 1, p.stderr
    lines = p.stderr.strip().splitlines()
    assert lines[-1].startswith("ketch-image: error:"), p.stderr
    return lines[-1]


def test_connection_cut_mid_blob_is_retried(served: tuple[FakeRegistry, str],
                                            tmp_path: Path) -> None:
    fake, src = served
    layout = _pull_v1_then(fake, tmp_path)
    big = _layer_digests(src, "v2")[1]
    fake.faults[big] = "truncate-once"
    p = run_ki("pull", f"{fake.host}/app:v2", str(layout))
    assert "Retrying blob" in p.stderr and "download interrupted" in p.stderr
    assert set(layout_tags(str(layout))) == {"v1", "v2"}
    assert_valid(layout)


def test_connection_cut_every_time_fails_cleanly(served: tuple[FakeRegistry, str],
                                                 tmp_path: Path) -> None:
    fake, src = served
    layout = _pull_v1_then(fake, tmp_path)
    fake.faults[_layer_digests(src, "v2")[1]] = "truncate"
    assert "download interrupted" in one_line_error(
        run_ki("pull", f"{fake.host}/app:v2", str(layout), check=False))
    assert_valid(layout)


def test_503_then_success(served: tuple[FakeRegistry, str], tmp_path: Path) -> None:
    fake, src = served
    layer = _layer_digests(src, "v1")[0]
    fake.unavailable["/v2/app/manifests/v1"] = 2
    fake.unavailable[f"/v2/app/blobs/{layer}"] = 2
    layout = tmp_path / "layout"
    run_ki("pull", f"{fake.host}/app:v1", str(layout))
    assert fake.unavailable == {"/v2/app/manifests/v1": 0, f"/v2/app/blobs/{layer}": 0}
    assert_valid(layout)
    # Retry-After is honoured
    fake.retry_after = "1"
    fake.unavailable["/v2/app/manifests/v2"] = 1
    started = time.monotonic()
    run_ki("pull", f"{fake.host}/app:v2", str(layout))
    assert time.monotonic() - started >= 1.0
    fake.retry_after = "0"
    fake.unavailable["/v2/app/manifests/v1"] = 10  # more than the retries
    assert "503" in one_line_error(run_ki("pull", f"{fake.host}/app:v1", str(layout),
                                          check=False))
    assert_valid(layout)


def test_content_type_disagreeing_with_body(served: tuple[FakeRegistry, str],
                                            tmp_path: Path) -> None:
    fake, _ = served
    layout = _pull_v1_then(fake, tmp_path)
    before = (layout / "index.json").read_bytes()
    fake.manifest_faults["v2"] = "content-type"
    line = one_line_error(run_ki("pull", f"{fake.host}/app:v2", str(layout), check=False))
    assert "does not match the declared application/vnd.oci.image.index.v1+json" in line
    assert (layout / "index.json").read_bytes() == before
    assert_valid(layout)


def test_redirect_to_a_host_that_rejects_authorization(served: tuple[FakeRegistry, str],
                                                       tmp_path: Path) -> None:
    fake, _ = served
    fake.basic = ("bob", "pw")
    fake.redirect_host = f"localhost:{fake.port}"
    fake.storage_rejects_auth = True
    layout = tmp_path / "layout"
    run_ki("pull", "--creds", "bob:pw", f"{fake.host}/app:v2", str(layout))
    assert len(fake.storage_auth) == 3 and not any(fake.storage_auth)
    assert_valid(layout)


def test_manifest_over_4_mib_is_refused(served: tuple[FakeRegistry, str], tmp_path: Path) -> None:
    fake, _ = served
    body = b'{"schemaVersion": 2, "layers": [], "x": "' + b"a" * (4 * 1024 * 1024) + b'"}'
    fake.manifests["huge"] = (body, "application/vnd.oci.image.manifest.v1+json")
    line = one_line_error(run_ki("pull", f"{fake.host}/app:huge", str(tmp_path / "l"),
                                 check=False))
    assert "larger than 4194304 bytes" in line
    assert not (tmp_path / "l").exists()


def _index(entries: list[dict]) -> bytes:
    import json
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": entries}).encode()


def test_unknown_media_type_in_an_index_is_skipped(served: tuple[FakeRegistry, str],
                                                   tmp_path: Path) -> None:
    fake, src = served
    v1 = layout_tags(src)["v1"]
    amd64 = {"os": "linux", "architecture": "amd64"}
    body = _index([{"mediaType": "application/vnd.example.unknown+json",
                    "digest": "sha256:" + "12" * 32, "size": 10, "platform": amd64},
                   {"mediaType": v1["mediaType"], "digest": v1["digest"], "size": v1["size"],
                    "platform": amd64}])
    fake.manifests["mixed"] = (body, "application/vnd.oci.image.index.v1+json")
    layout = tmp_path / "layout"
    run_ki("pull", "--platform", "linux/amd64", f"{fake.host}/app:mixed", str(layout))
    assert layout_tags(str(layout))["mixed"]["digest"] == v1["digest"]
    assert_valid(layout)


@pytest.mark.parametrize("ref,message", [
    ("127.0.0.1:1/app@sha256:../../../etc/passwd", "invalid"),
    ("127.0.0.1:1/App:v1", "invalid repository name"),
    ("127.0.0.1:1/app:bad/../tag", "invalid"),
    ("127.0.0.1:1/app:-x", "invalid tag"),
    ("127.0.0.1:1/app@md5:" + "0" * 32, "unsupported digest algorithm"),
    ("127.0.0.1:1/app@sha256:" + "A" * 64, "lowercase hex"),
    ("", "empty image reference"),
])
def test_malformed_references(ref: str, message: str, tmp_path: Path) -> None:
    assert message in one_line_error(run_ki("pull", ref, str(tmp_path / "l"), check=False))
    assert not (tmp_path / "l").exists()


def test_index_entry_with_a_path_digest(served: tuple[FakeRegistry, str], tmp_path: Path) -> None:
    fake, _ = served
    body = _index([{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": "sha256:../../../../etc/passwd", "size": 10,
                    "platform": {"os": "linux", "architecture": "amd64"}}])
    fake.manifests["evil"] = (body, "application/vnd.oci.image.index.v1+json")
    line = one_line_error(run_ki("pull", "--platform", "linux/amd64", f"{fake.host}/app:evil",
                                 str(tmp_path / "l"), check=False))
    assert "invalid digest 'sha256:../../../../etc/passwd'" in line
    assert not (tmp_path / "l").exists()


def test_live_progress_on_a_terminal(served: tuple[FakeRegistry, str], tmp_path: Path) -> None:
    import pty
    import select

    fake, src = served
    big = _layer_digests(src, "v2")[1]
    master, slave = pty.openpty()
    proc = subprocess.Popen([*ketch_image_cmd(), "pull", f"{fake.host}/app:v2",
                             str(tmp_path / "layout")], stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    out = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 30)
            if not ready:
                break
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            out += data
        proc.wait(60)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    text = out.decode()
    assert "\x1b[" in text, "no in-place redraw on a terminal"
    assert f"Copying blob {big[:19]} [{'=' * 24}] 3.1 MB / 3.1 MB" in text
    # the result is the last line (finished bars were repainted below it)
    assert "Stored sha256:" in text and "Copying blob" not in text.split("Stored sha256:")[1]
    assert " B / " in text and "0.0 MB" not in text  # a small config in bytes or kB
    check_layout(str(tmp_path / "layout"))


@pytest.mark.parametrize("jobs", ["4", "1"])
def test_layers_download_in_parallel(served: tuple[FakeRegistry, str], tmp_path: Path,
                                     jobs: str) -> None:
    fake, src = served
    first, big = _layer_digests(src, "v2")
    fake.faults[first] = "stall"
    layout = tmp_path / "layout"
    proc = subprocess.Popen([*ketch_image_cmd(), "pull", "-j", jobs, f"{fake.host}/app:v2",
                             str(layout)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert fake.stalled.wait(60), "the pull never reached the first layer"
        deadline = time.monotonic() + (10 if jobs == "4" else 1)
        while time.monotonic() < deadline and f"/v2/app/blobs/{big}" not in fake.log:
            time.sleep(0.05)
        # with 4 jobs the second layer is fetched while the first is stuck; with 1 it waits
        assert (f"/v2/app/blobs/{big}" in fake.log) == (jobs == "4")
        del fake.faults[first]
        fake.release.set()  # the stuck download breaks off and is fetched again
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert b"Retrying blob" in err
    check_layout(str(layout))


def test_foreign_layer_urls_get_no_credentials(fake_registry: FakeRegistry,
                                               tmp_path: Path) -> None:
    import json
    b = LayoutBuilder(str(tmp_path / "src"))
    desc = b.image([[D("etc"), F("etc/hostname", b"foreign\n")]])
    manifest = json.loads((tmp_path / "src/blobs/sha256" / desc["digest"][7:]).read_bytes())
    layer = manifest["layers"][0]
    layer["urls"] = ["http://192.0.2.1/plain-http-to-a-remote-host-is-refused",
                     f"http://localhost:{fake_registry.port}/storage/{layer['digest']}"]
    b.tag("foreign", b.blob(json.dumps(manifest).encode(), desc["mediaType"]))
    fake_registry.load_layout(str(tmp_path / "src"), "foreign")
    fake_registry.foreign[layer["digest"]] = fake_registry.blobs.pop(layer["digest"])
    fake_registry.basic = ("bob", "pw")
    fake_registry.storage_rejects_auth = True
    layout = tmp_path / "layout"
    run_ki("pull", "--creds", "bob:pw", f"{fake_registry.host}/app:foreign", str(layout))
    assert fake_registry.storage_auth == [None]
    assert f"/v2/app/blobs/{layer['digest']}" in fake_registry.log  # the registry first
    assert_valid(layout)
    run_ki("unpack", f"{layout}:foreign", str(tmp_path / "bundle"))
    assert (tmp_path / "bundle/rootfs/etc/hostname").read_text() == "foreign\n"
    # with no usable URL the error names each attempt
    del fake_registry.foreign[layer["digest"]]
    line = one_line_error(run_ki("pull", "--creds", "bob:pw", f"{fake_registry.host}/app:foreign",
                                 str(tmp_path / "l2"), check=False))
    assert "BLOB_UNKNOWN" in line and "refusing plain-http URL" in line and "HTTP 404" in line

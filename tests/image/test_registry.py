"""Pull from a real registry (Debian's docker-registry on 127.0.0.1), then unpack."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ketch.image.platforms import host_platform

from .conftest import TOKEN_PASS, TOKEN_USER, Registry, skopeo_copy
from .helpers import (
    OCI_LAYER,
    F,
    LayoutBuilder,
    busybox_entries,
    check_layout,
    ketch_image_cmd,
    layout_tags,
    push_layout_image,
    push_manifest,
    run_ki,
)

pytestmark = pytest.mark.registry

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def read_blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / digest.replace(":", "/")).read_bytes()


def stored_manifest(layout: Path, tag: str) -> dict:
    return json.loads(read_blob(layout, layout_tags(str(layout))[tag]["digest"]))


def check_busybox_two(bundle: Path) -> None:
    rootfs = bundle / "rootfs"
    assert not (rootfs / "etc/motd").exists(), "whiteout not applied"
    assert (rootfs / "etc/passwd").exists()
    assert sorted(os.listdir(rootfs / "opt/app")) == ["new.txt"], "opaque whiteout not applied"
    assert oct((rootfs / "opt/app").stat().st_mode & 0o7777) == "0o750"
    assert oct((rootfs / "tmp").stat().st_mode & 0o7777) == "0o1777"
    assert os.readlink(rootfs / "bin/sh") == "busybox"
    out = subprocess.run(["chroot", str(rootfs), "/bin/sh", "-c", "cat /opt/app/new.txt; id -u app"],
                         capture_output=True, text=True, check=True).stdout
    assert out == "new\n1000\n"
    spec = json.loads((bundle / "config.json").read_text())
    proc = spec["process"]
    assert proc["args"] == ["/bin/sh", "-c", "echo hello"]
    assert proc["cwd"] == "/opt/app"
    assert proc["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [10, 50]}
    assert "GREETING=hi" in proc["env"] and "PATH=/bin" in proc["env"]
    assert "HOME=/home/app" in proc["env"]
    assert spec["annotations"]["org.example.kind"] == "test"
    assert spec["annotations"]["org.opencontainers.image.architecture"] == "amd64"


def test_pull_oci_manifest(registry: Registry, busybox_layout: str, tmp_path: Path) -> None:
    skopeo_copy(f"oci:{busybox_layout}:two", f"docker://{registry.host}/ketch/busybox:two")
    layout = tmp_path / "layout"
    p = run_ki("pull", "-v", f"{registry.host}/ketch/busybox:two", str(layout))
    assert "Copying blob" in p.stderr
    index = check_layout(str(layout))
    assert list(layout_tags(str(layout))) == ["two"]
    assert index["manifests"][0]["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert index["manifests"][0]["platform"] == {"architecture": "amd64", "os": "linux"}
    assert p.stdout.strip() == index["manifests"][0]["digest"]
    run_ki("unpack", f"{layout}:two", str(tmp_path / "bundle"))
    check_busybox_two(tmp_path / "bundle")
    # a second pull of the same image reuses the stored blobs
    p = run_ki("pull", "-v", f"{registry.host}/ketch/busybox:two", f"{layout}:again")
    assert "already present" in p.stderr and "Copying blob" not in p.stderr
    assert set(layout_tags(str(layout))) == {"two", "again"}


def test_pull_by_digest_and_retag(registry: Registry, busybox_layout: str, tmp_path: Path) -> None:
    skopeo_copy(f"oci:{busybox_layout}:one", f"docker://{registry.host}/ketch/busybox:one")
    skopeo_copy(f"oci:{busybox_layout}:two", f"docker://{registry.host}/ketch/busybox:two")
    layout = tmp_path / "layout"
    digest = run_ki("pull", f"{registry.host}/ketch/busybox:two", f"{layout}:t").stdout.strip()
    run_ki("pull", f"{registry.host}/ketch/busybox@{digest}", f"{layout}:pinned")
    assert layout_tags(str(layout))["pinned"]["digest"] == digest
    # pulling another image under an existing tag replaces the entry
    one = run_ki("pull", f"{registry.host}/ketch/busybox:one", f"{layout}:t").stdout.strip()
    tags = layout_tags(str(layout))
    assert tags["t"]["digest"] == one != digest
    assert len(json.loads((layout / "index.json").read_text())["manifests"]) == 2
    check_layout(str(layout))


def _multiplatform_layout(path: str) -> tuple[LayoutBuilder, dict]:
    b = LayoutBuilder(path)
    entries = []
    for arch, variant in (("amd64", None), ("arm64", "v8"), ("arm", "v7")):
        layer = [*busybox_entries()[:2], F("platform", f"{arch}{variant or ''}\n".encode())]
        desc = b.image([layer], arch=arch, variant=variant)
        plat = {"os": "linux", "architecture": arch, **({"variant": variant} if variant else {})}
        entries.append((desc, plat))
    idx = b.index(entries)
    b.tag("multi", idx)
    return b, idx


@pytest.mark.parametrize("platform,arch,expected", [
    (None, "amd64", "amd64"), ("linux/arm64", "arm64", "arm64v8"), ("linux/arm/v7", "arm", "armv7")])
def test_pull_oci_index_by_platform(registry: Registry, tmp_path: Path, platform: str | None,
                                    arch: str, expected: str) -> None:
    if platform is None and host_platform().architecture != "amd64":
        pytest.skip("the default-platform case expects an amd64 host")
    _multiplatform_layout(str(tmp_path / "src"))
    skopeo_copy(f"oci:{tmp_path / 'src'}:multi", f"docker://{registry.host}/ketch/multi:1", "--all")
    layout = tmp_path / "layout"
    extra = ["--platform", platform] if platform else []
    p = run_ki("pull", *extra, f"{registry.host}/ketch/multi:1", str(layout))
    assert "Resolved" in p.stderr
    check_layout(str(layout))
    desc = layout_tags(str(layout))["1"]
    assert desc["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert desc["platform"]["architecture"] == arch
    run_ki("unpack", f"{layout}:1", str(tmp_path / "bundle"))
    assert (tmp_path / "bundle/rootfs/platform").read_text() == expected + "\n"


def test_pull_index_without_matching_platform(registry: Registry, tmp_path: Path) -> None:
    _multiplatform_layout(str(tmp_path / "src"))
    skopeo_copy(f"oci:{tmp_path / 'src'}:multi", f"docker://{registry.host}/ketch/multi:2", "--all")
    p = run_ki("pull", "--platform", "linux/s390x", f"{registry.host}/ketch/multi:2",
               str(tmp_path / "layout"), check=False)
    assert p.returncode == 1
    assert "no matching manifest for linux/s390x" in p.stderr and "linux/arm64/v8" in p.stderr
    assert not (tmp_path / "layout").exists()


def test_unpack_local_index_by_platform(tmp_path: Path) -> None:
    _multiplatform_layout(str(tmp_path / "src"))
    run_ki("unpack", "--platform", "linux/arm64", f"{tmp_path / 'src'}:multi", str(tmp_path / "b"))
    assert (tmp_path / "b/rootfs/platform").read_text() == "arm64v8\n"
    out = json.loads(run_ki("inspect", "--platform", "linux/arm/v7", f"{tmp_path / 'src'}:multi").stdout)
    assert out["config"]["architecture"] == "arm" and "index" in out


def test_pull_docker_schema2(registry: Registry, busybox_layout: str, tmp_path: Path) -> None:
    skopeo_copy(f"oci:{busybox_layout}:two", f"docker://{registry.host}/ketch/docker:two",
                "--format", "v2s2")
    layout = tmp_path / "layout"
    run_ki("pull", f"{registry.host}/ketch/docker:two", str(layout))
    check_layout(str(layout))
    desc = layout_tags(str(layout))["two"]
    assert desc["mediaType"] == DOCKER_MANIFEST
    manifest = stored_manifest(layout, "two")
    assert manifest["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
    assert {m["mediaType"] for m in manifest["layers"]} == {
        "application/vnd.docker.image.rootfs.diff.tar.gzip"}
    run_ki("unpack", f"{layout}:two", str(tmp_path / "bundle"))
    check_busybox_two(tmp_path / "bundle")


def test_pull_docker_manifest_list(registry: Registry, tmp_path: Path) -> None:
    b, _ = _multiplatform_layout(str(tmp_path / "src"))
    import requests
    entries = []
    for arch, variant, tag in (("amd64", None, "a"), ("arm64", "v8", "b")):
        layer = [*busybox_entries()[:2], F("platform", f"{arch}{variant or ''}\n".encode())]
        b.tag(tag, b.image([layer], arch=arch, variant=variant))
        skopeo_copy(f"oci:{tmp_path / 'src'}:{tag}", f"docker://{registry.host}/ketch/list:{tag}",
                    "--format", "v2s2")
        r = requests.get(f"http://{registry.host}/v2/ketch/list/manifests/{tag}",
                         headers={"Accept": DOCKER_MANIFEST}, timeout=10)
        plat = {"os": "linux", "architecture": arch, **({"variant": variant} if variant else {})}
        entries.append({"mediaType": DOCKER_MANIFEST, "size": len(r.content),
                        "digest": r.headers["Docker-Content-Digest"], "platform": plat})
    body = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": entries}).encode()
    push_manifest(registry.host, "ketch/list", "multi", body, DOCKER_LIST)
    layout = tmp_path / "layout"
    run_ki("pull", "--platform", "linux/arm64", f"{registry.host}/ketch/list:multi", str(layout))
    assert layout_tags(str(layout))["multi"]["mediaType"] == DOCKER_MANIFEST
    run_ki("unpack", f"{layout}:multi", str(tmp_path / "bundle"))
    assert (tmp_path / "bundle/rootfs/platform").read_text() == "arm64v8\n"


def test_pull_uncompressed_layer(registry: Registry, tmp_path: Path) -> None:
    b = LayoutBuilder(str(tmp_path / "src"))
    b.tag("raw", b.image([busybox_entries(), [F("etc/.wh.motd", b""), F("extra", b"plain\n")]],
                         compress=False))
    push_layout_image(registry.host, "ketch/raw", "v1", str(tmp_path / "src"), "raw")
    layout = tmp_path / "layout"
    run_ki("pull", f"{registry.host}/ketch/raw:v1", str(layout))
    check_layout(str(layout))
    assert {m["mediaType"] for m in stored_manifest(layout, "v1")["layers"]} == {OCI_LAYER}
    run_ki("unpack", f"{layout}:v1", str(tmp_path / "bundle"))
    rootfs = tmp_path / "bundle/rootfs"
    assert (rootfs / "extra").read_text() == "plain\n"
    assert not (rootfs / "etc/motd").exists() and (rootfs / "bin/busybox").exists()


def test_pull_missing_tag(registry: Registry, tmp_path: Path) -> None:
    p = run_ki("pull", f"{registry.host}/ketch/nothing:here", str(tmp_path / "l"), check=False)
    assert p.returncode == 1 and "MANIFEST_UNKNOWN" in p.stderr


# -- Bearer token auth -------------------------------------------------------------------


@pytest.fixture(scope="module")
def token_image(token_registry: Registry, busybox_layout: str) -> str:
    ref = f"{token_registry.host}/ketch/private:two"
    skopeo_copy(f"oci:{busybox_layout}:two", f"docker://{ref}",
                "--dest-creds", f"{TOKEN_USER}:{TOKEN_PASS}")
    return ref


def test_bearer_pull_with_credentials(token_registry: Registry, token_image: str,
                                      tmp_path: Path) -> None:
    assert token_registry.token is not None
    token_registry.token.requests.clear()
    layout = tmp_path / "layout"
    run_ki("pull", "--creds", f"{TOKEN_USER}:{TOKEN_PASS}", token_image, str(layout))
    check_layout(str(layout))
    granted = [r for r in token_registry.token.requests if r["ok"]]
    assert granted and all(r["user"] == TOKEN_USER for r in granted)
    assert any("repository:ketch/private:pull" in r["scopes"] for r in granted)
    run_ki("unpack", f"{layout}:two", str(tmp_path / "bundle"))
    check_busybox_two(tmp_path / "bundle")


def test_bearer_refuses_anonymous_and_bad_password(token_registry: Registry, token_image: str,
                                                   tmp_path: Path) -> None:
    p = run_ki("pull", token_image, str(tmp_path / "l1"), check=False)
    # the login hint names the registry with its port (it named 127.0.0.1 alone)
    assert p.returncode == 1 and "refused anonymous access" in p.stderr \
        and f"ketch-image login {token_registry.host}'" in p.stderr, p.stderr
    p = run_ki("pull", "--creds", f"{TOKEN_USER}:wrong", token_image, str(tmp_path / "l2"),
               check=False)
    assert p.returncode == 1 and "credentials from --creds were rejected by token server" \
        in p.stderr and p.stderr.split("error: ")[1].startswith(f"{token_registry.host}:")
    assert not (tmp_path / "l1").exists() and not (tmp_path / "l2").exists()


def test_bearer_anonymous_pull(token_registry: Registry, token_image: str, tmp_path: Path) -> None:
    assert token_registry.token is not None
    token_registry.token.allow_anonymous = True
    try:
        run_ki("pull", token_image, str(tmp_path / "layout"))
    finally:
        token_registry.token.allow_anonymous = False
    check_layout(str(tmp_path / "layout"))


# -- TLS -------------------------------------------------------------------------------------


def test_tls_registry(tls_registry: Registry, busybox_layout: str, tmp_path: Path) -> None:
    skopeo_copy(f"oci:{busybox_layout}:one", f"docker://{tls_registry.host}/ketch/tls:one")
    ref = f"{tls_registry.host}/ketch/tls:one"
    p = run_ki("pull", ref, str(tmp_path / "l1"), check=False)
    assert p.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    run_ki("pull", "--tls-verify=false", ref, str(tmp_path / "l2"))
    check_layout(str(tmp_path / "l2"))
    # verification against a trusted CA bundle (requests honours REQUESTS_CA_BUNDLE)
    env = {**os.environ, "REQUESTS_CA_BUNDLE": os.path.join(tls_registry.state, "tls.crt")}
    subprocess.run([*ketch_image_cmd(), "pull", ref, str(tmp_path / "l3")], env=env, check=True,
                   capture_output=True)
    check_layout(str(tmp_path / "l3"))


def test_pull_without_a_terminal_prints_only_the_result(registry: Registry, busybox_layout: str,
                                                        tmp_path: Path) -> None:
    """No terminal on stderr (a log, CI): one result line, no per-blob chatter;
    ``-q`` prints nothing, ``-v`` every step."""
    skopeo_copy(f"oci:{busybox_layout}:two", f"docker://{registry.host}/ketch/quiet:two")
    ref = f"{registry.host}/ketch/quiet:two"
    p = run_ki("pull", ref, str(tmp_path / "a"))
    assert p.stderr.splitlines() == [f"Stored {p.stdout.strip()} as {tmp_path / 'a'}:two"], p.stderr
    assert run_ki("pull", "-q", ref, str(tmp_path / "b")).stderr == ""
    assert "Copying blob" in run_ki("pull", "-v", ref, str(tmp_path / "c")).stderr

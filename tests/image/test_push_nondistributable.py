"""Push of images with non-distributable layers (image-spec layer.md; Docker's foreign
layers): skipped by default, the manifest pushed as it is (docker and skopeo do the
same), pushed with ``--allow-nondistributable-artifacts`` when the layout holds them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from .conftest import Registry, free_port, skopeo_copy
from .fakeregistry import FakeRegistry
from .helpers import D, F, LayoutBuilder, run_ki

OCI_ND = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
DOCKER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_TYPES = {"manifest": "application/vnd.docker.distribution.manifest.v2+json",
                "config": "application/vnd.docker.container.image.v1+json",
                "layer": "application/vnd.docker.image.rootfs.diff.tar.gzip"}


def _foreign_image(tmp_path: Path, kind: str, *, keep_blob: bool) -> tuple[str, bytes, str]:
    """A layout whose tag ``v1`` has a normal layer and a non-distributable one (with
    ``urls``); returns (layout path, manifest bytes, the foreign layer's digest)."""
    path = str(tmp_path / f"src-{kind}")
    b = LayoutBuilder(path)
    desc = b.image([[D("etc"), F("etc/hostname", b"base\n")],
                    [F("licensed", b"not for redistribution\n")]])
    blobs = Path(path) / "blobs" / "sha256"
    manifest = json.loads((blobs / desc["digest"][7:]).read_bytes())
    foreign = manifest["layers"][1]
    foreign["urls"] = ["https://example.invalid/licensed.tar.gz"]
    if kind == "oci":
        foreign["mediaType"] = OCI_ND
    else:
        manifest["mediaType"] = DOCKER_TYPES["manifest"]
        manifest["config"]["mediaType"] = DOCKER_TYPES["config"]
        manifest["layers"][0]["mediaType"] = DOCKER_TYPES["layer"]
        foreign["mediaType"] = DOCKER_FOREIGN
    body = json.dumps(manifest).encode()
    new = b.blob(body, manifest["mediaType"])
    os.unlink(blobs / desc["digest"][7:])
    if not keep_blob:
        os.unlink(blobs / foreign["digest"][7:])
    b.tag("v1", new)
    return path, body, foreign["digest"]


@pytest.mark.parametrize("kind", ["oci", "docker"])
@pytest.mark.parametrize("flag", [False, True])
def test_absent_nondistributable_layer_is_skipped(fake_registry: FakeRegistry, tmp_path: Path,
                                                  kind: str, flag: bool) -> None:
    src, body, foreign = _foreign_image(tmp_path, kind, keep_blob=False)
    extra = ["--allow-nondistributable-artifacts"] if flag else []
    p = run_ki("push", *extra, f"{src}:v1", f"{fake_registry.host}/nd/app:v1")
    assert fake_registry.manifests["v1"][0] == body  # the manifest as it is
    assert foreign not in fake_registry.blobs
    assert len(fake_registry.blobs) == 2  # the config and the normal layer
    reason = f": not in {src}" if flag else " (not pushed; --allow-nondistributable-artifacts"
    assert f"Skipping non-distributable layer {foreign}{reason}" in p.stderr, p.stderr


def test_present_nondistributable_layer_is_pushed_only_when_allowed(
        fake_registry: FakeRegistry, tmp_path: Path) -> None:
    src, body, foreign = _foreign_image(tmp_path, "oci", keep_blob=True)
    p = run_ki("push", f"{src}:v1", f"{fake_registry.host}/nd/app:v1")
    assert f"Skipping non-distributable layer {foreign}" in p.stderr, p.stderr
    assert foreign not in fake_registry.blobs
    p = run_ki("push", "--allow-nondistributable-artifacts", f"{src}:v1",
               f"{fake_registry.host}/nd/app:v2")
    assert "Skipping" not in p.stderr, p.stderr
    local = (Path(src) / "blobs" / "sha256" / foreign[7:]).read_bytes()
    assert fake_registry.blobs[foreign] == local
    assert fake_registry.manifests["v2"][0] == body


@pytest.fixture(scope="module")
def url_registry(debian_tools: None, tmp_path_factory: pytest.TempPathFactory):
    """docker-registry accepting manifests with foreign-layer ``urls`` (it refuses them
    unless ``validation.manifests.urls.allow`` matches, as the shared fixtures' do)."""
    import time

    import requests

    state = tmp_path_factory.mktemp("url-registry")
    port = free_port()
    config = state / "config.yml"
    config.write_text(f"""version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {state / "storage"}
http:
  addr: 127.0.0.1:{port}
  secret: ketch-test-secret
validation:
  manifests:
    urls:
      allow:
        - ^https://
""")
    with open(state / "registry.log", "wb") as log:
        proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log,
                                stderr=log, stdin=subprocess.DEVNULL)
    reg = Registry(host=f"127.0.0.1:{port}", proc=proc, state=str(state))
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, reg.log()
            try:
                if requests.get(f"http://{reg.host}/v2/", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, reg.log()
            time.sleep(0.05)
        yield reg
    finally:
        reg.stop()


def test_nondistributable_push_matches_skopeo(url_registry: Registry, tmp_path: Path) -> None:
    """The same layout pushed by skopeo and by ketch-image: same manifest digest, and
    neither sends the absent non-distributable layer."""
    src, body, foreign = _foreign_image(tmp_path, "oci", keep_blob=False)
    registry = url_registry
    ours = run_ki("push", f"{src}:v1", f"{registry.host}/nd/ketch:v1").stdout.strip()
    skopeo_copy(f"oci:{src}:v1", f"docker://{registry.host}/nd/skopeo:v1")
    theirs = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                             f"docker://{registry.host}/nd/skopeo:v1"], capture_output=True,
                            check=True, timeout=60).stdout
    assert theirs == body
    import hashlib
    assert ours == "sha256:" + hashlib.sha256(theirs).hexdigest()
    for repo in ("ketch", "skopeo"):
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-I",
                            f"http://{registry.host}/v2/nd/{repo}/blobs/{foreign}"],
                           capture_output=True, text=True, timeout=30)
        assert r.stdout == "404", (repo, r.stdout)


def test_copy_to_registry_follows_the_same_rule(fake_registry: FakeRegistry,
                                                tmp_path: Path) -> None:
    src, body, foreign = _foreign_image(tmp_path, "docker", keep_blob=True)
    p = run_ki("copy", f"oci:{src}:v1", f"docker://{fake_registry.host}/nd/copy:v1")
    assert f"Skipping non-distributable layer {foreign}" in p.stderr, p.stderr
    assert foreign not in fake_registry.blobs
    run_ki("copy", "--allow-nondistributable-artifacts", f"oci:{src}:v1",
           f"docker://{fake_registry.host}/nd/copy:v2")
    assert foreign in fake_registry.blobs
    assert fake_registry.manifests["v2"][0] == body

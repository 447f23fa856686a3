"""ketch-image push against the real docker-registry: skopeo sees the same digests,
blobs already there are skipped, cross-repository mounts, chunked uploads, an index
with its children, token auth, TLS with --cert-dir, and bad input."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import TOKEN_PASS, TOKEN_USER, Registry
from .helpers import (
    F,
    LayoutBuilder,
    busybox_entries,
    check_layout,
    ketch_image_cmd,
    layout_tags,
    run_ki,
)

pytestmark = pytest.mark.registry

_ACCESS_RE = re.compile(r'"([A-Z]+) (\S+) HTTP/1\.1" (\d+)')


def access_log(reg: Registry) -> list[tuple[str, str, int]]:
    """(method, uri, status) of every request the registry answered so far."""
    return [(m, u, int(c)) for m, u, c in _ACCESS_RE.findall(reg.log())]


def skopeo_inspect(ref: str, *extra: str, raw: bool = False) -> dict:
    args = ["skopeo", "inspect", "--tls-verify=false", *extra]
    if raw:
        args.append("--raw")
    p = subprocess.run([*args, f"docker://{ref}"], capture_output=True, text=True, check=True,
                       timeout=60)
    return json.loads(p.stdout)


def read_doc(layout: str, digest: str) -> dict:
    with open(os.path.join(layout, "blobs", *digest.split(":"))) as f:
        return json.load(f)


def test_push_round_trip_same_digests(registry: Registry, busybox_layout: str,
                                      tmp_path: Path) -> None:
    ref = f"{registry.host}/push/busybox:two"
    desc = layout_tags(busybox_layout)["two"]
    manifest = read_doc(busybox_layout, desc["digest"])
    p = run_ki("push", f"{busybox_layout}:two", ref)
    assert p.stdout.strip() == desc["digest"]
    info = skopeo_inspect(ref)
    assert info["Digest"] == desc["digest"]
    assert info["Layers"] == [d["digest"] for d in manifest["layers"]]
    assert skopeo_inspect(ref, raw=True) == manifest
    # the registry serves it with the manifest's own media type
    import requests
    r = requests.get(f"http://{registry.host}/v2/push/busybox/manifests/two", timeout=10,
                     headers={"Accept": desc["mediaType"]})
    assert r.headers["Content-Type"] == desc["mediaType"]
    assert r.headers["Docker-Content-Digest"] == desc["digest"]
    # a second push only HEADs the blobs
    before = len(access_log(registry))
    p = run_ki("push", "-v", f"{busybox_layout}:two", f"{registry.host}/push/busybox:again")
    assert "Copying blob" not in p.stderr and "already present" in p.stderr
    later = access_log(registry)[before:]
    assert not [x for x in later if "/blobs/uploads/" in x[1]]
    # and ketch-image pulls back exactly what it pushed
    run_ki("pull", ref, str(tmp_path / "back"))
    assert layout_tags(str(tmp_path / "back"))["two"]["digest"] == desc["digest"]
    check_layout(str(tmp_path / "back"))


def test_push_mounts_from_another_repository(registry: Registry, busybox_layout: str) -> None:
    run_ki("push", f"{busybox_layout}:one", f"{registry.host}/push/mount-src:one")
    before = len(access_log(registry))
    p = run_ki("push", "-v", "--mount-from", "push/mount-src", f"{busybox_layout}:one",
               f"{registry.host}/push/mount-dst:one")
    assert "Mounted blob" in p.stderr and "Copying blob" not in p.stderr
    later = access_log(registry)[before:]
    mounts = [x for x in later if x[0] == "POST" and "mount=" in x[1]]
    assert mounts and all(status == 201 for _, _, status in mounts)
    assert not [x for x in later if x[0] in ("PUT", "PATCH") and "/blobs/uploads/" in x[1]]
    assert skopeo_inspect(f"{registry.host}/push/mount-dst:one")["Digest"] == \
        layout_tags(busybox_layout)["one"]["digest"]


def test_push_mount_falls_back_to_upload(registry: Registry, busybox_layout: str) -> None:
    # the source repository does not exist: the registry opens an upload instead (202)
    p = run_ki("push", "-v", "--mount-from", "push/nowhere", f"{busybox_layout}:one",
               f"{registry.host}/push/fallback:one")
    assert "Copying blob" in p.stderr and "Mounted" not in p.stderr
    assert skopeo_inspect(f"{registry.host}/push/fallback:one")["Digest"] == \
        layout_tags(busybox_layout)["one"]["digest"]


def test_push_chunked(registry: Registry, busybox_layout: str, tmp_path: Path) -> None:
    before = len(access_log(registry))
    run_ki("push", "--chunk-size", "300000", f"{busybox_layout}:two",
           f"{registry.host}/push/chunked:two")
    patches = [x for x in access_log(registry)[before:] if x[0] == "PATCH"]
    assert len(patches) >= 2 and all(s == 202 for _, _, s in patches)
    desc = layout_tags(busybox_layout)["two"]
    assert skopeo_inspect(f"{registry.host}/push/chunked:two")["Digest"] == desc["digest"]
    run_ki("pull", f"{registry.host}/push/chunked:two", str(tmp_path / "back"))
    check_layout(str(tmp_path / "back"))


def _multi(path: str) -> dict:
    b = LayoutBuilder(path)
    entries = []
    for arch, variant in (("amd64", None), ("arm64", "v8"), ("ppc64le", None)):
        layer = [*busybox_entries()[:2], F("platform", f"{arch}\n".encode())]
        plat = {"os": "linux", "architecture": arch, **({"variant": variant} if variant else {})}
        entries.append((b.image([layer], arch=arch, variant=variant), plat))
    idx = b.index(entries)
    b.tag("multi", idx)
    return idx


def test_index_round_trip_all_platforms(registry: Registry, tmp_path: Path) -> None:
    src = str(tmp_path / "src")
    idx = _multi(src)
    ref = f"{registry.host}/push/multi:1"
    assert run_ki("push", f"{src}:multi", ref).stdout.strip() == idx["digest"]
    raw = skopeo_inspect(ref, raw=True)
    assert raw == read_doc(src, idx["digest"])
    for m in raw["manifests"]:
        arch = m["platform"]["architecture"]
        info = skopeo_inspect(f"{registry.host}/push/multi@{m['digest']}")
        assert info["Digest"] == m["digest"] and info["Architecture"] == arch
    back = str(tmp_path / "back")
    run_ki("pull", "--all-platforms", ref, back)
    index = check_layout(back)
    assert layout_tags(back)["1"]["digest"] == idx["digest"]
    assert layout_tags(back)["1"]["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert len(index["manifests"]) == 1
    # the pulled index unpacks per platform, and pushes back to the same digest
    run_ki("unpack", "--platform", "linux/ppc64le", f"{back}:1", str(tmp_path / "bundle"))
    assert (tmp_path / "bundle/rootfs/platform").read_text() == "ppc64le\n"
    assert run_ki("push", f"{back}:1", f"{registry.host}/push/multi:2").stdout.strip() == \
        idx["digest"]


def test_push_with_bearer_token(token_registry: Registry, busybox_layout: str) -> None:
    assert token_registry.token is not None
    token_registry.token.requests.clear()
    ref = f"{token_registry.host}/push/private:one"
    p = run_ki("push", f"{busybox_layout}:one", ref, check=False)
    assert p.returncode == 1 and "refused anonymous access" in p.stderr
    run_ki("push", "--creds", f"{TOKEN_USER}:{TOKEN_PASS}", f"{busybox_layout}:one", ref)
    granted = [r for r in token_registry.token.requests if r["ok"]]
    assert any("repository:push/private:pull,push" in r["scopes"] for r in granted)
    info = skopeo_inspect(ref, "--creds", f"{TOKEN_USER}:{TOKEN_PASS}")
    assert info["Digest"] == layout_tags(busybox_layout)["one"]["digest"]


def test_push_tls_cert_dir(tls_registry: Registry, busybox_layout: str, tmp_path: Path) -> None:
    ref = f"{tls_registry.host}/push/tls:one"
    p = run_ki("push", f"{busybox_layout}:one", ref, check=False)
    assert p.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    certs = tmp_path / "certs.d"
    certs.mkdir()
    shutil.copy(os.path.join(tls_registry.state, "tls.crt"), certs / "ca.crt")
    run_ki("push", "--cert-dir", str(certs), f"{busybox_layout}:one", ref)
    run_ki("pull", "--cert-dir", str(certs), ref, str(tmp_path / "back"))
    assert layout_tags(str(tmp_path / "back"))["one"]["digest"] == \
        layout_tags(busybox_layout)["one"]["digest"]
    p = run_ki("pull", "--cert-dir", str(tmp_path / "nope"), ref, str(tmp_path / "x"),
               check=False)
    assert p.returncode == 1 and "not a directory" in p.stderr
    # without --cert-dir: the registry's directory under ~/.config/containers/certs.d,
    # where skopeo and podman look too
    home = tmp_path / "home"
    (home / ".config/containers/certs.d").mkdir(parents=True)
    shutil.copytree(certs, home / ".config/containers/certs.d" / tls_registry.host)
    p = subprocess.run([*ketch_image_cmd(), "pull", ref, str(tmp_path / "default")],
                       env={**os.environ, "HOME": str(home)}, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr


def test_push_bad_input(registry: Registry, busybox_layout: str, tmp_path: Path) -> None:
    p = run_ki("push", f"{busybox_layout}:missing", f"{registry.host}/push/bad:x", check=False)
    assert p.returncode == 1 and "tag 'missing' not found" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    p = run_ki("push", f"{busybox_layout}:one", f"{registry.host}/Push/Bad:x", check=False)
    assert p.returncode == 1 and "invalid repository name" in p.stderr
    # a corrupt layer in the layout is caught before the registry gets a manifest
    broken = tmp_path / "broken"
    shutil.copytree(busybox_layout, broken)
    manifest = read_doc(str(broken), layout_tags(str(broken))["one"]["digest"])
    layer = broken / "blobs" / manifest["layers"][0]["digest"].replace(":", "/")
    data = bytearray(layer.read_bytes())
    data[100] ^= 0xFF
    layer.write_bytes(bytes(data))
    p = run_ki("push", f"{broken}:one", f"{registry.host}/push/broken:one", check=False)
    assert p.returncode == 1 and "digest mismatch" in p.stderr
    import requests
    r = requests.get(f"http://{registry.host}/v2/push/broken/manifests/one", timeout=10)
    assert r.status_code == 404


def test_tags_listing(registry: Registry, busybox_layout: str) -> None:
    # (docker-registry 2.8 ignores ?n= for tags; paging is tested against the fake registry)
    names = [f"t{i}" for i in range(5)]
    for name in names:
        run_ki("push", "-q", f"{busybox_layout}:one", f"{registry.host}/push/tagged:{name}")
    p = run_ki("tags", "--page-size", "2", f"{registry.host}/push/tagged")
    assert sorted(p.stdout.split()) == names
    sk = subprocess.run(["skopeo", "list-tags", "--tls-verify=false",
                         f"docker://{registry.host}/push/tagged"], capture_output=True,
                        text=True, check=True, timeout=60)
    assert sorted(json.loads(sk.stdout)["Tags"]) == sorted(p.stdout.split())
    p = run_ki("tags", f"{registry.host}/push/none", check=False)
    assert p.returncode == 1 and "NAME_UNKNOWN" in p.stderr


def test_zstd_layer_round_trip(registry: Registry, tmp_path: Path) -> None:
    import hashlib

    import zstandard

    from .helpers import make_tar, sha256

    b = LayoutBuilder(str(tmp_path / "src"))
    tar = make_tar([*busybox_entries()[:2], F("compressed-with", b"zstd\n")])
    layer = b.blob(zstandard.ZstdCompressor().compress(tar),
                   "application/vnd.oci.image.layer.v1.tar+zstd")
    config = b.blob(json.dumps({"architecture": "amd64", "os": "linux",
                                "rootfs": {"type": "layers", "diff_ids": [sha256(tar)]}}).encode(),
                    "application/vnd.oci.image.config.v1+json")
    manifest = b.blob(json.dumps({"schemaVersion": 2,
                                  "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                  "config": config, "layers": [layer]}).encode(),
                      "application/vnd.oci.image.manifest.v1+json")
    b.tag("z", manifest)
    ref = f"{registry.host}/push/zstd:z"
    run_ki("push", f"{tmp_path / 'src'}:z", ref)
    assert skopeo_inspect(ref)["Layers"] == [layer["digest"]]
    back = tmp_path / "back"
    run_ki("pull", ref, str(back))
    run_ki("validate", str(back))
    run_ki("unpack", f"{back}:z", str(tmp_path / "bundle"))
    assert (tmp_path / "bundle/rootfs/compressed-with").read_text() == "zstd\n"
    assert hashlib.sha256((tmp_path / "bundle/rootfs/bin/busybox").read_bytes()).hexdigest() == \
        hashlib.sha256(Path("/bin/busybox").read_bytes()).hexdigest()


def _client_pki(d: Path) -> tuple[Path, Path, Path]:
    """A CA and a client certificate it signed: (ca.pem, client.cert, client.key)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def build(subject: str, issuer: str, key, signer, ca: bool) -> x509.Certificate:
        b = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
             .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(hours=1))
             .not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                                critical=False)
        return b.sign(signer, hashes.SHA256())

    ca_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
        ec.SECP256R1())
    ca = build("ketch test client CA", "ketch test client CA", ca_key, ca_key, True)
    client = build("ketch test client", "ketch test client CA", client_key, ca_key, False)
    paths = d / "client-ca.pem", d / "client.cert", d / "client.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(client.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(client_key.private_bytes(serialization.Encoding.PEM,
                                                  serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return paths


def test_client_certificate_from_cert_dir(debian_tools: None, busybox_layout: str,
                                          tmp_path: Path) -> None:
    from .conftest import start_registry

    state = tmp_path / "state"
    state.mkdir()
    ca, cert, key = _client_pki(tmp_path)
    reg = start_registry(str(state), tls=True, client_ca=str(ca))
    try:
        certs = tmp_path / "certs.d"
        certs.mkdir()
        shutil.copy(state / "tls.crt", certs / "ca.crt")
        ref = f"{reg.host}/push/mtls:one"
        p = run_ki("push", "--cert-dir", str(certs), f"{busybox_layout}:one", ref, check=False)
        assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1
        shutil.copy(cert, certs / "client.cert")
        p = run_ki("push", "--cert-dir", str(certs), f"{busybox_layout}:one", ref, check=False)
        assert p.returncode == 1 and "has no" in p.stderr and "client.key" in p.stderr
        shutil.copy(key, certs / "client.key")
        run_ki("push", "--cert-dir", str(certs), f"{busybox_layout}:one", ref)
        run_ki("pull", "--cert-dir", str(certs), ref, str(tmp_path / "back"))
        assert layout_tags(str(tmp_path / "back"))["one"]["digest"] == \
            layout_tags(busybox_layout)["one"]["digest"]
    finally:
        reg.stop()


def test_insufficient_scope_is_answered_with_the_union(token_registry: Registry) -> None:
    from ketch.image.reference import parse_reference
    from ketch.image.registry.client import RegistryClient

    assert token_registry.token is not None
    token_registry.token.requests.clear()
    ref = parse_reference(f"{token_registry.host}/push/scopes:x")
    client = RegistryClient(ref, creds=(TOKEN_USER, TOKEN_PASS), actions=("pull",),
                            mount_from=("push/other",))
    try:
        client.ping()
        first = token_registry.token.requests[-1]["scopes"]
        assert first == ["repository:push/scopes:pull", "repository:push/other:pull"]
        location, _ = client.start_upload()  # needs push: a second challenge, a new token
        assert location
    finally:
        client.close()
    second = token_registry.token.requests[-1]["scopes"]
    assert second[:2] == first and any("push" in s for s in second[2:]), second


def test_inspect_a_registry_image(registry: Registry, tmp_path: Path) -> None:
    src = str(tmp_path / "src")
    idx = _multi(src)
    ref = f"{registry.host}/push/inspect:1"
    run_ki("push", f"{src}:multi", ref)
    raw = run_ki("inspect", "--raw", f"docker://{ref}").stdout.encode()
    assert raw == (Path(src) / "blobs" / idx["digest"].replace(":", "/")).read_bytes()
    out = json.loads(run_ki("inspect", "--platform", "linux/arm64", f"docker://{ref}").stdout)
    assert out["descriptor"]["digest"] == idx["digest"]
    assert out["config"]["architecture"] == "arm64" and len(out["index"]["manifests"]) == 3
    config = run_ki("inspect", "--config", "--platform", "linux/ppc64le", f"docker://{ref}").stdout
    assert json.loads(config)["architecture"] == "ppc64le"
    p = run_ki("inspect", f"docker://{registry.host}/push/none:x", check=False)
    assert p.returncode == 1 and "MANIFEST_UNKNOWN" in p.stderr


def test_push_by_digest_and_corrupt_chunked(registry: Registry, busybox_layout: str,
                                            tmp_path: Path) -> None:
    digest = layout_tags(busybox_layout)["one"]["digest"]
    p = run_ki("push", f"{busybox_layout}:one", f"{registry.host}/push/bydigest@{digest}")
    assert p.stdout.strip() == digest
    assert skopeo_inspect(f"{registry.host}/push/bydigest@{digest}", "--no-tags")["Digest"] == digest
    other = layout_tags(busybox_layout)["two"]["digest"]
    p = run_ki("push", f"{busybox_layout}:one", f"{registry.host}/push/bydigest@{other}",
               check=False)
    assert p.returncode == 1 and f"is {digest}, not {other}" in p.stderr
    # a corrupt blob sent in chunks is caught by ketch-image before the final PUT
    broken = tmp_path / "broken"
    shutil.copytree(busybox_layout, broken)
    manifest = read_doc(str(broken), digest)
    layer = broken / "blobs" / manifest["layers"][0]["digest"].replace(":", "/")
    data = bytearray(layer.read_bytes())
    data[-10] ^= 0xFF
    layer.write_bytes(bytes(data))
    before = len(access_log(registry))
    p = run_ki("push", "--chunk-size", "200000", f"{broken}:one",
               f"{registry.host}/push/brokenchunks:one", check=False)
    assert p.returncode == 1 and "digest mismatch" in p.stderr
    later = access_log(registry)[before:]
    assert [x for x in later if x[0] == "PATCH"]
    bad = manifest["layers"][0]["digest"].replace(":", "%3A")
    assert not [x for x in later if x[0] == "PUT" and bad in x[1]]


def test_htpasswd_registry(basic_registry: Registry, busybox_layout: str, tmp_path: Path) -> None:
    from .conftest import BASIC_PASS, BASIC_USER

    ref = f"{basic_registry.host}/basic/app:one"
    p = run_ki("push", f"{busybox_layout}:one", ref, check=False)
    assert p.returncode == 1 and "requires credentials" in p.stderr
    p = run_ki("push", "--creds", f"{BASIC_USER}:wrong", f"{busybox_layout}:one", ref,
               check=False)
    assert p.returncode == 1 and "credentials from --creds were rejected (HTTP 401)" in p.stderr
    creds = f"{BASIC_USER}:{BASIC_PASS}"
    run_ki("push", "--creds", creds, f"{busybox_layout}:one", ref)
    info = skopeo_inspect(ref, "--creds", creds)
    assert info["Digest"] == layout_tags(busybox_layout)["one"]["digest"]
    run_ki("pull", "--creds", creds, ref, str(tmp_path / "back"))
    check_layout(str(tmp_path / "back"))
    assert run_ki("tags", "--creds", creds, f"{basic_registry.host}/basic/app").stdout.split() \
        == ["one"]
    auth = tmp_path / "auth.json"
    p = run_ki("login", "--authfile", str(auth), "-u", BASIC_USER, "-p", "nope",
               basic_registry.host, check=False)
    assert p.returncode == 1 and not auth.exists()
    run_ki("login", "--authfile", str(auth), "-u", BASIC_USER, "-p", BASIC_PASS,
           basic_registry.host)
    run_ki("copy", "--authfile", str(auth), f"docker://{ref}",
           f"docker://{basic_registry.host}/basic/copy:one")
    run_ki("pull", "--authfile", str(auth), f"{basic_registry.host}/basic/copy:one",
           str(tmp_path / "l2"))
    assert layout_tags(str(tmp_path / "l2"))["one"]["digest"] == info["Digest"]

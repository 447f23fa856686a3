"""Fixtures for the ketch-image tests: Debian tools, a real docker-registry (plain and
with Bearer token auth), a fault-injecting fake registry, hand-built test images."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from .fakeregistry import FakeRegistry
from .helpers import LayoutBuilder, busybox_entries, second_layer_entries
from .tokenserver import TokenServer

DEBIAN_PACKAGES = {"docker-registry": "docker-registry", "skopeo": "skopeo", "umoci": "umoci",
                   "busybox": "busybox-static", "htpasswd": "apache2-utils"}




@pytest.fixture(scope="session")
def debian_tools(ensure_debian_packages) -> None:
    ensure_debian_packages(*DEBIAN_PACKAGES.values())
    for tool in DEBIAN_PACKAGES:
        assert shutil.which(tool), f"{tool} not found after installing its package"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Registry:
    """A docker-registry process on 127.0.0.1 with its own config and storage."""

    host: str
    proc: subprocess.Popen
    state: str
    token: TokenServer | None = None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.token is not None:
            self.token.stop()

    def log(self) -> str:
        with open(os.path.join(self.state, "registry.log"), errors="replace") as f:
            return f.read()


def make_tls_cert(state: str) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1/localhost; returns (cert path, key path)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = os.path.join(state, "tls.crt"), os.path.join(state, "tls.key")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_path, key_path


def start_registry(state: str, token: TokenServer | None = None, tls: bool = False,
                   client_ca: str | None = None,
                   htpasswd: tuple[str, str] | None = None) -> Registry:
    port = free_port()
    storage = os.path.join(state, "storage")
    os.makedirs(storage, exist_ok=True)
    auth = ""
    if token is not None:
        bundle = os.path.join(state, "token.crt")
        with open(bundle, "wb") as f:
            f.write(token.cert_pem())
        auth = (f"auth:\n  token:\n    realm: {token.realm}\n    service: {token.service}\n"
                f"    issuer: {token.issuer}\n    rootcertbundle: {bundle}\n")
    if htpasswd is not None:  # bcrypt entry made by apache2-utils' htpasswd, as registry wants
        line = subprocess.run(["htpasswd", "-nbB", *htpasswd], capture_output=True, text=True,
                              check=True).stdout.strip()
        with open(os.path.join(state, "htpasswd"), "w") as f:
            f.write(line + "\n")
        auth = (f"auth:\n  htpasswd:\n    realm: ketch-test\n"
                f"    path: {os.path.join(state, 'htpasswd')}\n")
    tls_block, scheme = "", "http"
    if tls:
        cert, key = make_tls_cert(state)
        tls_block, scheme = f"  tls:\n    certificate: {cert}\n    key: {key}\n", "https"
        if client_ca:  # only clients with a certificate signed by this CA get in
            tls_block += f"    clientcas:\n      - {client_ca}\n"
    config = os.path.join(state, "config.yml")
    with open(config, "w") as f:
        f.write(f"""version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: ketch-test-secret
{tls_block}{auth}""")
    log = open(os.path.join(state, "registry.log"), "wb")  # noqa: SIM115 - owned by the process
    proc = subprocess.Popen(["docker-registry", "serve", config], stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL)
    log.close()
    reg = Registry(host=f"127.0.0.1:{port}", proc=proc, state=state, token=token)
    import urllib3
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # readiness probe only
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited:\n{reg.log()}")
        try:
            code = requests.get(f"{scheme}://{reg.host}/v2/", timeout=1, verify=False).status_code
            if code in (200, 401):
                return reg
        except requests.exceptions.SSLError:
            if client_ca:  # the handshake itself answered: it wants a client certificate
                return reg
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            reg.stop()
            raise RuntimeError(f"docker-registry did not answer:\n{reg.log()}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def registry(debian_tools: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = start_registry(str(tmp_path_factory.mktemp("registry")))
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def tls_registry(debian_tools: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = start_registry(str(tmp_path_factory.mktemp("tls-registry")), tls=True)
    yield reg
    reg.stop()


TOKEN_USER, TOKEN_PASS = "alice", "s3cret,with:odd=chars"
BASIC_USER, BASIC_PASS = "bob", "pa:ss,w0rd"


@pytest.fixture(scope="session")
def basic_registry(debian_tools: None,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """docker-registry with htpasswd (HTTP Basic) authentication."""
    reg = start_registry(str(tmp_path_factory.mktemp("basic-registry")),
                         htpasswd=(BASIC_USER, BASIC_PASS))
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def token_registry(debian_tools: None,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    token = TokenServer(service="ketch-test-registry", issuer="ketch-test-issuer",
                        users={TOKEN_USER: TOKEN_PASS}).start()
    try:
        reg = start_registry(str(tmp_path_factory.mktemp("token-registry")), token)
    except BaseException:
        token.stop()
        raise
    yield reg
    reg.stop()


@pytest.fixture
def fake_registry() -> Iterator[FakeRegistry]:
    fake = FakeRegistry().start()
    yield fake
    fake.stop()


def skopeo_copy(src: str, dst: str, *extra: str) -> None:
    subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", "--dest-tls-verify=false",
                    *extra, src, dst], check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def busybox_layout(debian_tools: None, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An OCI layout, tag ``two``: busybox layer + a layer with a whiteout and an opaque dir;
    tag ``one``: only the busybox layer."""
    path = str(tmp_path_factory.mktemp("busybox") / "layout")
    b = LayoutBuilder(path)
    config = {"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hello"],
              "Env": ["PATH=/bin", "GREETING=hi"], "WorkingDir": "/opt/app", "User": "app",
              "Labels": {"org.example.kind": "test"}}
    b.tag("two", b.image([busybox_entries(), second_layer_entries()], config=config))
    b.tag("one", b.image([busybox_entries()], config=config))
    return path

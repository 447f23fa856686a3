"""Identity tokens: a docker credential helper answering ``Username: "<token>"`` (or an
``identitytoken`` in config.json) gives a refresh token, which goes to the registry's
token realm as an OAuth2 refresh-token grant (``POST``), as docker does; a registry
using Basic auth gets a clear error instead of the token as a password."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from .conftest import Registry
from .fakeregistry import FakeRegistry
from .helpers import D, F, LayoutBuilder, check_layout, ketch_image_cmd

REFRESH = "rt-ketch-identity-0123456789"

HELPER = """#!/bin/sh
# docker-credential-ketchid: answers every get with the identity token in $KETCH_TEST_IDENTITY
[ "$1" = get ] || exit 1
read -r server
echo "$server" >> "$KETCH_TEST_IDENTITY_LOG"
printf '{"ServerURL":"%s","Username":"<token>","Secret":"%s"}\\n' "$server" "$KETCH_TEST_IDENTITY"
"""


def _env(tmp_path: Path, token: str, registry: str, *, helper: bool = True) -> dict[str, str]:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    script = bindir / "docker-credential-ketchid"
    script.write_text(HELPER)
    script.chmod(0o755)
    auth = tmp_path / "auth.json"
    doc = {"credHelpers": {registry: "ketchid"}} if helper else \
        {"auths": {registry: {"identitytoken": token}}}
    auth.write_text(json.dumps(doc))
    return {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}",
            "KETCH_TEST_IDENTITY": token, "KETCH_TEST_IDENTITY_LOG": str(tmp_path / "helper.log"),
            "REGISTRY_AUTH_FILE": str(auth)}


def _ki(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*ketch_image_cmd(), *args], capture_output=True, text=True, env=env,
                          timeout=120)


def _layout(tmp_path: Path) -> str:
    b = LayoutBuilder(str(tmp_path / "src"))
    b.tag("v1", b.image([[D("etc"), F("etc/hostname", b"identity\n")]]))
    return str(tmp_path / "src")


@pytest.fixture
def refresh_token(token_registry: Registry):
    assert token_registry.token is not None
    token_registry.token.refresh_tokens[REFRESH] = "alice"
    yield token_registry.token
    del token_registry.token.refresh_tokens[REFRESH]


@pytest.mark.parametrize("where", ["helper", "auths"])
def test_identity_token_push_and_pull(token_registry: Registry, refresh_token,
                                      tmp_path: Path, where: str) -> None:
    env = _env(tmp_path, REFRESH, token_registry.host, helper=where == "helper")
    src = _layout(tmp_path)
    ref = f"{token_registry.host}/ketch/identity-{where}:v1"
    seen = len(refresh_token.requests)
    p = _ki("push", f"{src}:v1", ref, env=env)
    assert p.returncode == 0, p.stderr
    p = _ki("pull", ref, str(tmp_path / "back"), env=env)
    assert p.returncode == 0, p.stderr
    check_layout(str(tmp_path / "back"))
    asked = refresh_token.requests[seen:]
    assert asked and all(r["grant"] == "refresh_token" and r["ok"] for r in asked), asked
    assert all(r["client_id"] == "ketch-image" and r["service"] == refresh_token.service
               for r in asked)
    assert any(f"repository:ketch/identity-{where}:pull,push" in r["scopes"] for r in asked)
    if where == "helper":
        assert (tmp_path / "helper.log").read_text().split() == [token_registry.host] * 2


def test_identity_token_rejected_is_one_line(token_registry: Registry, refresh_token,
                                             tmp_path: Path) -> None:
    env = _env(tmp_path, "not-a-valid-refresh-token", token_registry.host)
    p = _ki("pull", f"{token_registry.host}/ketch/identity-helper:v1", str(tmp_path / "l"),
            env=env)
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert lines[-1] == (f"ketch-image: error: {token_registry.host}: identity token from "
                         "credential helper docker-credential-ketchid was rejected by token "
                         f"server {refresh_token.realm} (HTTP 401)"), p.stderr
    assert not (tmp_path / "l").exists()


def test_identity_token_with_basic_auth_is_a_clear_error(fake_registry: FakeRegistry,
                                                         tmp_path: Path) -> None:
    src = _layout(tmp_path)
    fake_registry.load_layout(src, "v1")
    fake_registry.basic = ("bob", "pw")
    env = _env(tmp_path, REFRESH, fake_registry.host)
    p = _ki("pull", f"{fake_registry.host}/app:v1", str(tmp_path / "l"), env=env)
    assert p.returncode == 1
    assert p.stderr.strip().splitlines()[-1] == (
        f"ketch-image: error: registry {fake_registry.host} uses Basic auth, but credential "
        "helper docker-credential-ketchid holds an identity token, which only works with "
        "Bearer token auth"), p.stderr
    assert not (tmp_path / "l").exists()

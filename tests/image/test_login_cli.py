"""login/logout details: a symlinked auth file is written through, login without a
terminal fails at once, rejected credentials name their source."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from .fakeregistry import FakeRegistry
from .helpers import D, F, LayoutBuilder, ketch_image_cmd


def ki(*args: str, env: dict[str, str], stdin: str | None = "") -> subprocess.CompletedProcess:
    return subprocess.run([*ketch_image_cmd(), *args], capture_output=True, text=True, env=env,
                          input=stdin, timeout=120)


@pytest.fixture
def basic_fake(fake_registry: FakeRegistry, tmp_path: Path) -> FakeRegistry:
    b = LayoutBuilder(str(tmp_path / "src"))
    b.tag("v1", b.image([[D("etc"), F("etc/hostname", b"v1\n")]]))
    fake_registry.load_layout(str(tmp_path / "src"), "v1")
    fake_registry.basic = ("bob", "pw")
    return fake_registry


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "REGISTRY_AUTH_FILE"}
    env["HOME"] = str(tmp_path / "home")
    (tmp_path / "home/.docker").mkdir(parents=True)
    return env


def test_login_writes_through_a_symlinked_config(basic_fake: FakeRegistry, tmp_path: Path,
                                                 home: dict[str, str]) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    (dotfiles / "docker.json").write_text(json.dumps({"auths": {}, "psFormat": "x"}))
    link = tmp_path / "home/.docker/config.json"
    link.symlink_to("../../dotfiles/docker.json")
    p = ki("login", "-u", "bob", "--password-stdin", basic_fake.host, env=home, stdin="pw\n")
    assert p.returncode == 0, p.stderr
    assert link.is_symlink()
    doc = json.loads((dotfiles / "docker.json").read_text())
    assert basic_fake.host in doc["auths"] and doc["psFormat"] == "x"
    assert not [n for n in os.listdir(tmp_path / "home/.docker") if n != "config.json"]
    p = ki("logout", basic_fake.host, env=home)
    assert p.returncode == 0, p.stderr
    assert link.is_symlink()
    assert basic_fake.host not in json.loads((dotfiles / "docker.json").read_text())["auths"]


def test_login_creates_the_target_of_a_dangling_symlink(basic_fake: FakeRegistry,
                                                        tmp_path: Path,
                                                        home: dict[str, str]) -> None:
    link = tmp_path / "home/.docker/config.json"
    (tmp_path / "dotfiles").mkdir()
    link.symlink_to(tmp_path / "dotfiles/docker.json")
    p = ki("login", "-u", "bob", "-p", "pw", basic_fake.host, env=home)
    assert p.returncode == 0, p.stderr
    assert link.is_symlink()
    assert basic_fake.host in json.loads((tmp_path / "dotfiles/docker.json").read_text())["auths"]


def one_line(p: subprocess.CompletedProcess) -> str:
    assert p.returncode == 1, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("ketch-image: error: ")
    return lines[0][len("ketch-image: error: "):]


def test_rejected_credentials_name_their_source(basic_fake: FakeRegistry, tmp_path: Path,
                                                home: dict[str, str]) -> None:
    host = basic_fake.host
    ref = f"{host}/app:v1"
    p = ki("pull", "--creds", "bob:nope", ref, str(tmp_path / "l1"), env=home)
    assert one_line(p) == f"{host}: credentials from --creds were rejected (HTTP 401)"
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"auths": {host: {"username": "bob", "password": "x"}}}))
    p = ki("pull", "--authfile", str(authfile), ref, str(tmp_path / "l2"), env=home)
    assert one_line(p) == (f"{host}: credentials from auth file {authfile} were rejected "
                           "(HTTP 401)")
    p = ki("copy", "--src-creds", "bob:nope", f"docker://{ref}", f"oci:{tmp_path / 'l3'}",
           env=home)
    assert one_line(p) == f"{host}: credentials from --src-creds were rejected (HTTP 401)"
    p = ki("pull", ref, str(tmp_path / "l4"), env=home)
    msg = one_line(p)
    assert f"ketch-image login {host}" in msg and "--creds" in msg and "--authfile" in msg
    assert not any((tmp_path / n).exists() for n in ("l1", "l2", "l3", "l4"))


def test_login_without_a_terminal_fails_at_once(basic_fake: FakeRegistry,
                                                home: dict[str, str]) -> None:
    for args in (["-u", "bob"], []):
        p = ki("login", *args, basic_fake.host, env=home, stdin="pw\n")
        msg = one_line(p)
        assert "no terminal" in msg, msg
        assert "GetPassWarning" not in p.stderr
    assert "--password-stdin" in one_line(
        ki("login", "-u", "bob", basic_fake.host, env=home, stdin="pw\n"))
    assert not (Path(home["HOME"]) / ".docker/config.json").exists()
    p = ki("login", "-u", "bob", "--password-stdin", basic_fake.host, env=home, stdin="no\n")
    assert one_line(p) == \
        f"{basic_fake.host}: credentials from --password-stdin were rejected (HTTP 401)"


def test_password_stdin_with_a_crlf_line_end(basic_fake: FakeRegistry,
                                             home: dict[str, str]) -> None:
    """A password piped with CRLF ("pw\\r\\n", a Windows-edited file) was sent with the
    \\r and rejected; docker and skopeo drop it."""
    p = ki("login", "-u", "bob", "--password-stdin", basic_fake.host, env=home,
           stdin="pw\r\n")
    assert p.returncode == 0, p.stderr


def test_bare_tls_verify_and_tags_of_a_tagged_ref(basic_fake: FakeRegistry,
                                                  home: dict[str, str]) -> None:
    """`--tls-verify` alone means true, as in skopeo (it took the next argument as its
    value); `tags` refuses a reference with a tag (the tag was silently ignored)."""
    p = ki("tags", "--creds", "bob:pw", "--tls-verify", f"{basic_fake.host}/app", env=home)
    assert p.returncode == 0 and p.stdout.split() == ["v1"], p.stderr
    p = ki("tags", "--creds", "bob:pw", "--tls-verify", "true", f"{basic_fake.host}/app",
           env=home)
    assert p.returncode == 0 and p.stdout.split() == ["v1"], p.stderr
    p = ki("tags", f"{basic_fake.host}/app:v1", env=home)
    assert p.returncode == 2 and "tags takes a repository, without a tag or digest" in p.stderr


def test_bare_bool_flags() -> None:
    from ketch.image.cli import bare_bool_flags

    assert bare_bool_flags(["pull", "--tls-verify", "r/x", "l"]) == \
        ["pull", "--tls-verify=true", "r/x", "l"]
    assert bare_bool_flags(["copy", "--src-tls-verify", "False", "a", "b"]) == \
        ["copy", "--src-tls-verify", "False", "a", "b"]
    assert bare_bool_flags(["push", "--dest-tls-verify"]) == ["push", "--dest-tls-verify=true"]
    assert bare_bool_flags(["x", "--", "--tls-verify"]) == ["x", "--", "--tls-verify"]

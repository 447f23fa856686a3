"""Credentials: auth files ($REGISTRY_AUTH_FILE, docker config.json), credential helpers,
login/logout against the token registry and the fake one, and credentials kept from
token realms on other hosts."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ketch.image.errors import AuthError
from ketch.image.registry import credentials
from ketch.image.registry.auth import same_site

from .conftest import TOKEN_PASS, TOKEN_USER, Registry, skopeo_copy
from .fakeregistry import FakeRegistry
from .helpers import D, F, LayoutBuilder, check_layout, ketch_image_cmd

HELPER = """#!{python}
# docker-credential-ketchtest: a credential helper keeping its store in $KETCH_TEST_STORE
import json, os, sys
path = os.environ["KETCH_TEST_STORE"]
store = json.load(open(path)) if os.path.exists(path) else {{}}
action = sys.argv[1]
data = sys.stdin.read()
with open(path + ".log", "a") as log:
    log.write(action + " " + data.splitlines()[0] if data else action)
    log.write("\\n")
if action == "get":
    if data.strip() not in store:
        print("credentials not found in native keychain")
        sys.exit(1)
    user, secret = store[data.strip()]
    print(json.dumps({{"ServerURL": data.strip(), "Username": user, "Secret": secret}}))
elif action == "store":
    doc = json.loads(data)
    store[doc["ServerURL"]] = [doc["Username"], doc["Secret"]]
    json.dump(store, open(path, "w"))
elif action == "erase":
    store.pop(data.strip(), None)
    json.dump(store, open(path, "w"))
"""


@pytest.fixture
def helper_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "docker-credential-ketchtest"
    script.write_text(HELPER.format(python=sys.executable))
    script.chmod(0o755)
    env = {"PATH": f"{bindir}:{os.environ['PATH']}", "KETCH_TEST_STORE": str(tmp_path / "store"),
           "REGISTRY_AUTH_FILE": str(tmp_path / "auth.json")}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return {**os.environ, **env}


def write_auth(path: Path, doc: dict) -> None:
    path.write_text(json.dumps(doc))


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def ki(*args: str, env: dict[str, str], check: bool = True,
       stdin: str | None = None) -> subprocess.CompletedProcess:
    p = subprocess.run([*ketch_image_cmd(), *args], capture_output=True, text=True, env=env,
                       input=stdin, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"ketch-image {' '.join(args)}: {p.stderr}")
    return p


# -- auth file lookups ------------------------------------------------------------------


def test_lookup_auths_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "auth.json"
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(path))
    write_auth(path, {"auths": {
        "reg.example:5000": {"auth": b64("alice:pw:with:colons")},
        "reg.example:5000/team": {"auth": b64("team:tpw")},
        "https://index.docker.io/v1/": {"auth": b64("hub:hpw")},
        "http://other.example": {"username": "u", "password": "p"}}})
    assert credentials.lookup("reg.example:5000", "app") == ("alice", "pw:with:colons")
    assert credentials.lookup("reg.example:5000", "team/app") == ("team", "tpw")
    assert credentials.lookup("reg.example:5000", "teams/app") == ("alice", "pw:with:colons")
    assert credentials.lookup("docker.io", "library/busybox") == ("hub", "hpw")
    assert credentials.lookup("other.example", "x") == ("u", "p")
    assert credentials.lookup("reg.example", "x") is None
    assert credentials.lookup("nowhere.example") is None
    write_auth(path, {"auths": {"bad.example": {"auth": "%%%"}}})
    with pytest.raises(AuthError, match="invalid auth value"):
        credentials.lookup("bad.example")
    path.write_text("{not json")
    with pytest.raises(AuthError, match="auth file"):
        credentials.lookup("bad.example")
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "missing.json"))
    assert credentials.lookup("reg.example:5000") is None


@pytest.mark.parametrize("doc,message", [
    ({"auths": "x"}, "'auths' is not a JSON object"),
    ({"credHelpers": ["x"]}, "'credHelpers' is not a JSON object"),
    ({"auths": {"h": "x"}}, "auths entry 'h' is not a JSON object"),
    ({"credHelpers": {"h": 5}}, "credHelpers entry 'h' is not a string"),
    ({"credsStore": 5}, "'credsStore' is not a string"),
    ({"auths": {"h": {"username": 5, "password": "pw"}}}, "auths entry 'h': 'username' is not "
                                                          "a string"),
])
def test_malformed_auth_file_is_one_line(doc: dict, message: str, tmp_path: Path) -> None:
    """A malformed auths/credHelpers ended pull and login in an AttributeError traceback."""
    path = tmp_path / "auth.json"
    write_auth(path, doc)
    env = {**os.environ, "REGISTRY_AUTH_FILE": str(path)}
    for argv in (["pull", "127.0.0.1:1/x:1", str(tmp_path / "l")],
                 ["logout", "127.0.0.1:1"]):
        p = subprocess.run([*ketch_image_cmd(), *argv], input="pw\n", env=env,
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 1 and p.stderr == \
            f"ketch-image: error: auth file {path}: {message}\n", p.stderr
    (tmp_path / "dir").mkdir()
    env["REGISTRY_AUTH_FILE"] = str(tmp_path / "dir")
    p = subprocess.run([*ketch_image_cmd(), "pull", "127.0.0.1:1/x:1", str(tmp_path / "l")],
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.stderr == f"ketch-image: error: auth file {tmp_path / 'dir'}: is a directory\n"


def test_docker_config_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".docker").mkdir()
    write_auth(tmp_path / ".docker/config.json", {"auths": {"r.example": {"auth": b64("d:p")}}})
    assert credentials.lookup("r.example") == ("d", "p")


def test_helpers(helper_env: dict[str, str], tmp_path: Path) -> None:
    auth = Path(helper_env["REGISTRY_AUTH_FILE"])
    Path(helper_env["KETCH_TEST_STORE"]).write_text(json.dumps({
        "a.example": ["ha", "pa"], "https://index.docker.io/v1/": ["hub", "hp"]}))
    write_auth(auth, {"credHelpers": {"a.example": "ketchtest"},
                      "auths": {"a.example": {"auth": b64("file:ignored")}}})
    assert credentials.lookup("a.example") == ("ha", "pa")  # credHelpers win over auths
    assert credentials.lookup("b.example") is None
    write_auth(auth, {"credsStore": "ketchtest"})
    assert credentials.lookup("docker.io", "library/x") == ("hub", "hp")
    assert credentials.lookup("b.example") is None  # "not found" from the helper
    write_auth(auth, {"credsStore": "nosuchhelper"})
    with pytest.raises(AuthError, match="docker-credential-nosuchhelper not found"):
        credentials.lookup("a.example")


def test_login_refuses_a_bad_registry_before_prompting(tmp_path: Path) -> None:
    env = {**os.environ, "REGISTRY_AUTH_FILE": str(tmp_path / "auth.json")}
    for bad in ("bad host!", "docker.io/library/x", "UPPER/x"):
        p = ki("login", bad, env=env, check=False, stdin="")
        assert p.returncode == 1 and "invalid registry" in p.stderr, p.stderr
        assert "Username" not in p.stdout + p.stderr
    assert not (tmp_path / "auth.json").exists()


def test_same_site() -> None:
    assert same_site("auth.docker.io", "registry-1.docker.io")
    assert same_site("127.0.0.1", "127.0.0.1")
    assert not same_site("localhost", "127.0.0.1")
    assert not same_site("evil.example", "registry.example.org")
    assert not same_site("10.0.0.2", "10.0.0.1")


# -- login / logout ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def token_image(token_registry: Registry, busybox_layout: str) -> str:
    ref = f"{token_registry.host}/ketch/login:one"
    skopeo_copy(f"oci:{busybox_layout}:one", f"docker://{ref}",
                "--dest-creds", f"{TOKEN_USER}:{TOKEN_PASS}")
    return ref


def test_login_pull_logout_with_tokens(token_registry: Registry, token_image: str,
                                       helper_env: dict[str, str], tmp_path: Path) -> None:
    auth = Path(helper_env["REGISTRY_AUTH_FILE"])
    p = ki("login", "-u", TOKEN_USER, "--password-stdin", token_registry.host,
           env=helper_env, stdin="wrong\n", check=False)
    assert p.returncode == 1 and "credentials from --password-stdin were rejected" in p.stderr
    assert not auth.exists()
    p = ki("login", "-u", TOKEN_USER, "--password-stdin", token_registry.host, env=helper_env,
           stdin=TOKEN_PASS + "\n")
    assert "Login Succeeded" in p.stdout
    assert stat.S_IMODE(auth.stat().st_mode) == 0o600
    entry = json.loads(auth.read_text())["auths"][token_registry.host]
    assert base64.b64decode(entry["auth"]).decode() == f"{TOKEN_USER}:{TOKEN_PASS}"
    ki("pull", token_image, str(tmp_path / "l1"), env=helper_env)
    check_layout(str(tmp_path / "l1"))
    ki("push", f"{tmp_path / 'l1'}:one", f"{token_registry.host}/ketch/login2:one",
       env=helper_env)
    ki("logout", token_registry.host, env=helper_env)
    assert json.loads(auth.read_text())["auths"] == {}
    p = ki("pull", token_image, str(tmp_path / "l2"), env=helper_env, check=False)
    assert p.returncode == 1 and "refused anonymous access" in p.stderr
    p = ki("logout", token_registry.host, env=helper_env, check=False)
    assert p.returncode == 1 and "not logged in" in p.stderr


def test_login_through_a_credential_helper(fake_registry: FakeRegistry,
                                           helper_env: dict[str, str], tmp_path: Path) -> None:
    b = LayoutBuilder(str(tmp_path / "src"))
    b.tag("v1", b.image([[D("etc"), F("etc/hostname", b"v1\n")]]))
    fake_registry.load_layout(str(tmp_path / "src"), "v1")
    fake_registry.basic = ("bob", "pw")
    auth = Path(helper_env["REGISTRY_AUTH_FILE"])
    write_auth(auth, {"credsStore": "ketchtest"})
    p = ki("login", "-u", "bob", "-p", "nope", fake_registry.host, env=helper_env, check=False)
    assert p.returncode == 1 and \
        f"{fake_registry.host}: credentials from --password were rejected (HTTP 401)" in p.stderr
    ki("login", "-u", "bob", "-p", "pw", fake_registry.host, env=helper_env)
    assert json.loads(Path(helper_env["KETCH_TEST_STORE"]).read_text()) == {
        fake_registry.host: ["bob", "pw"]}
    assert json.loads(auth.read_text()) == {"credsStore": "ketchtest"}  # nothing in the file
    ki("pull", f"{fake_registry.host}/app:v1", str(tmp_path / "l"), env=helper_env)
    ki("logout", fake_registry.host, env=helper_env)
    assert json.loads(Path(helper_env["KETCH_TEST_STORE"]).read_text()) == {}


def test_credentials_not_sent_to_a_token_realm_on_another_host(
        fake_registry: FakeRegistry, tmp_path: Path) -> None:
    from .tokenserver import TokenServer

    token = TokenServer(service="fake", issuer="x", users={"bob": "pw"}).start()
    try:
        b = LayoutBuilder(str(tmp_path / "src"))
        b.tag("v1", b.image([[D("etc"), F("etc/hostname", b"v1\n")]]))
        fake_registry.load_layout(str(tmp_path / "src"), "v1")
        # the registry is 127.0.0.1; its challenge names a realm on "localhost"
        fake_registry.bearer_realm = f"http://localhost:{token.port}/token"
        env = {**os.environ, "REGISTRY_AUTH_FILE": str(tmp_path / "none.json")}
        p = ki("pull", "--creds", "bob:pw", f"{fake_registry.host}/app:v1", str(tmp_path / "l"),
               env=env, check=False)
        assert p.returncode == 1
        assert "not sent to a token realm on another host, localhost" in p.stderr
        assert token.requests and all(r["user"] is None for r in token.requests)
        # on the registry's own host the same credentials go to the realm
        fake_registry.bearer_realm = f"http://127.0.0.1:{token.port}/token"
        ki("pull", "--creds", "bob:pw", f"{fake_registry.host}/app:v1", str(tmp_path / "l"),
           env=env)
        assert token.requests[-1]["user"] == "bob"
    finally:
        token.stop()


def test_missing_credential_helper_does_not_stop_an_anonymous_pull(
        fake_registry: FakeRegistry, tmp_path: Path) -> None:
    """A credsStore naming an uninstalled helper failed every pull ("credential helper
    ... not found in PATH"); skopeo pulls anonymously. Now a warning, then the pull."""
    b = LayoutBuilder(str(tmp_path / "src"))
    b.tag("v1", b.image([[D("etc"), F("etc/hostname", b"v1\n")]]))
    fake_registry.load_layout(str(tmp_path / "src"), "v1")
    auth = tmp_path / "auth.json"
    write_auth(auth, {"credsStore": "ketch-missing-helper"})
    env = {**os.environ, "REGISTRY_AUTH_FILE": str(auth)}
    p = subprocess.run([*ketch_image_cmd(), "pull", f"{fake_registry.host}/app:v1",
                        str(tmp_path / "l")], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert "warning: credential helper docker-credential-ketch-missing-helper not found in " \
        "PATH; continuing without credentials" in p.stderr
    check_layout(str(tmp_path / "l"))

"""Registry credentials: auth files and docker credential helpers.

Reads and writes the format shared by docker (``~/.docker/config.json``) and
containers-auth.json(5) (``$REGISTRY_AUTH_FILE``): ``auths`` maps a registry
(``host[:port]``, optionally ``/namespace/repo`` for a narrower entry, or a
URL such as ``https://index.docker.io/v1/``) to ``{"auth": base64("user:pass")}``
(or ``{"identitytoken": TOKEN}``);
``credHelpers`` maps a registry to a helper name and ``credsStore`` names the
default helper. A helper is the program ``docker-credential-NAME`` speaking
the docker-credential-helpers protocol: ``get`` (server URL on stdin, JSON
``{"Username", "Secret"}`` on stdout; ``Username`` ``<token>`` makes ``Secret`` an
identity token, see :mod:`.auth`), ``store`` (that JSON plus
``ServerURL`` on stdin) and ``erase`` (server URL on stdin).

File choice: ``--authfile``, else ``$REGISTRY_AUTH_FILE``, else
``~/.docker/config.json``. Files are written atomically with mode 0600.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import tempfile
from typing import TYPE_CHECKING, Any

from ketch.image.errors import AuthError
from ketch.image.reference import DOCKER_HUB
from ketch.image.registry.auth import IDENTITY_TOKEN_USER, Credentials

if TYPE_CHECKING:
    import subprocess

DOCKER_HUB_SERVER = "https://index.docker.io/v1/"
_HELPER_TIMEOUT = 30


def auth_file(explicit: str | None = None) -> str:
    """The auth file to use: ``explicit``, ``$REGISTRY_AUTH_FILE`` or ``~/.docker/config.json``."""
    if explicit:
        return explicit
    env = os.environ.get("REGISTRY_AUTH_FILE")
    if env:
        return env
    return os.path.join(os.path.expanduser("~"), ".docker", "config.json")


def _normalise_key(key: str) -> str:
    """``https://index.docker.io/v1/`` -> ``docker.io``; ``http://h:5000/x`` -> ``h:5000/x``."""
    for prefix in ("https://", "http://"):
        if key.startswith(prefix):
            key = key[len(prefix):]
            key = key.split("/", 1)[0]  # a URL's path (/v1/) is not a repository
            break
    key = key.rstrip("/")
    host, sep, rest = key.partition("/")
    if host in ("index.docker.io", "registry-1.docker.io"):
        host = DOCKER_HUB
    return host + sep + rest


def _server_url(registry: str) -> str:
    return DOCKER_HUB_SERVER if registry == DOCKER_HUB else registry


def load(path: str) -> dict[str, Any]:
    """The parsed auth file (``{}`` if it does not exist). Raises :class:`AuthError`."""
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read() or b"{}")
    except FileNotFoundError:
        return {}
    except IsADirectoryError:
        raise AuthError(f"auth file {path}: is a directory") from None
    except OSError as e:
        raise AuthError(f"auth file {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise AuthError(f"auth file {path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise AuthError(f"auth file {path}: not a JSON object")
    _check_shape(doc, path)
    return doc


def _check_shape(doc: dict[str, Any], path: str) -> None:
    """The types docker's config.json has for the keys we read (docker and skopeo refuse a
    file that breaks them, rather than reading around it)."""
    for key in ("auths", "credHelpers"):
        if key in doc and not isinstance(doc[key], dict):
            raise AuthError(f"auth file {path}: {key!r} is not a JSON object")
    for key, entry in (doc.get("auths") or {}).items():
        if not isinstance(entry, dict):
            raise AuthError(f"auth file {path}: auths entry {key!r} is not a JSON object")
        for field in ("auth", "username", "password", "identitytoken"):
            if entry.get(field) is not None and not isinstance(entry[field], str):
                raise AuthError(f"auth file {path}: auths entry {key!r}: {field!r} is not a "
                                "string")
    for key, name in (doc.get("credHelpers") or {}).items():
        if not isinstance(name, str):
            raise AuthError(f"auth file {path}: credHelpers entry {key!r} is not a string")
    if "credsStore" in doc and not isinstance(doc["credsStore"], str):
        raise AuthError(f"auth file {path}: 'credsStore' is not a string")


def _save(path: str, doc: dict[str, Any]) -> None:
    # a symlinked config.json (dotfiles) is written through, as the docker CLI does:
    # the new file replaces the link's target, in the target's directory
    path = os.path.realpath(path)
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".auth-")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o600)
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class CredentialHelperMissing(AuthError):
    """The ``docker-credential-NAME`` program of ``credsStore``/``credHelpers`` is not
    installed."""


def _helper(name: str, action: str, stdin: str) -> subprocess.CompletedProcess:
    import subprocess  # only with a helper configured: spares every registry command ~3 ms

    program = f"docker-credential-{name}"
    try:
        return subprocess.run([program, action], input=stdin, capture_output=True, text=True,
                              timeout=_HELPER_TIMEOUT)
    except FileNotFoundError:
        raise CredentialHelperMissing(f"credential helper {program} not found in PATH") from None
    except subprocess.TimeoutExpired:
        raise AuthError(f"credential helper {program} {action} timed out") from None


def _helper_get(name: str, registry: str) -> Credentials | None:
    p = _helper(name, "get", _server_url(registry))
    if p.returncode != 0:
        if "not found" in (p.stdout + p.stderr).lower():
            return None
        raise AuthError(f"credential helper docker-credential-{name} get failed: "
                        f"{(p.stderr or p.stdout).strip()}")
    try:
        doc = json.loads(p.stdout)
        user, secret = doc["Username"], doc["Secret"]
    except (ValueError, KeyError, TypeError):
        raise AuthError(f"credential helper docker-credential-{name} answered no credentials "
                        "JSON") from None
    if not isinstance(user, str) or not isinstance(secret, str):
        raise AuthError(f"credential helper docker-credential-{name} answered no credentials")
    return Credentials(user, secret, f"credential helper docker-credential-{name}")


def _decode_auth(value: Any, key: str, path: str) -> Credentials:
    try:
        raw = base64.b64decode(str(value), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise AuthError(f"auth file {path}: entry {key!r} has an invalid auth value") from None
    user, sep, password = raw.partition(":")
    if not sep or not user:
        raise AuthError(f"auth file {path}: entry {key!r} is not base64 of user:password")
    return Credentials(user, password, f"auth file {path}")


def lookup(registry: str, repository: str | None = None,
           authfile: str | None = None) -> Credentials | None:
    """Credentials for ``registry`` (and ``repository``, for repository-scoped entries).

    Order: ``credHelpers[registry]``, the most specific matching ``auths``
    entry, then ``credsStore``. Returns ``(user, password)`` (a :class:`Credentials`
    naming the file or helper) or None. Raises
    :class:`AuthError` for unreadable files, bad entries or failing helpers.
    """
    path = auth_file(authfile)
    doc = load(path)
    helpers = doc.get("credHelpers") or {}
    for key, name in helpers.items():
        if _normalise_key(key) == registry and isinstance(name, str):
            return _helper_get(name, registry)
    full = f"{registry}/{repository}" if repository else registry
    best: tuple[int, str, dict] | None = None
    for key, entry in (doc.get("auths") or {}).items():
        norm = _normalise_key(key)
        matches = full == norm or full.startswith(norm + "/")
        if matches and (best is None or len(norm) > best[0]):
            best = (len(norm), key, entry if isinstance(entry, dict) else {})
    if best is not None:
        _, key, entry = best
        if isinstance(entry.get("identitytoken"), str) and entry["identitytoken"]:
            # docker keeps an identity token beside (or instead of) the user:password
            return Credentials(IDENTITY_TOKEN_USER, entry["identitytoken"],
                               f"auth file {path}")
        if entry.get("auth"):
            return _decode_auth(entry["auth"], key, path)
        if isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
            return Credentials(entry["username"], entry["password"], f"auth file {path}")
    store = doc.get("credsStore")
    if isinstance(store, str) and store:
        return _helper_get(store, registry)
    return None


def store(registry: str, user: str, password: str, authfile: str | None = None) -> str:
    """Save credentials for ``registry``: through its helper if one is configured, else
    as an ``auths`` entry. Returns where they went (helper name or file path)."""
    path = auth_file(authfile)
    doc = load(path)
    name = _helper_name(doc, registry)
    if name is not None:
        p = _helper(name, "store", json.dumps({"ServerURL": _server_url(registry),
                                               "Username": user, "Secret": password}))
        if p.returncode != 0:
            raise AuthError(f"credential helper docker-credential-{name} store failed: "
                            f"{(p.stderr or p.stdout).strip()}")
        return f"docker-credential-{name}"
    auths = doc.setdefault("auths", {})
    for key in [k for k in auths if _normalise_key(k) == registry]:
        del auths[key]
    auths[registry] = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    _save(path, doc)
    return path


def erase(registry: str, authfile: str | None = None) -> bool:
    """Remove the credentials of ``registry``; True if there were any."""
    path = auth_file(authfile)
    doc = load(path)
    found = False
    auths = doc.get("auths") or {}
    for key in [k for k in auths if _normalise_key(k).split("/")[0] == registry]:
        del auths[key]
        found = True
    if found:
        _save(path, doc)
    name = _helper_name(doc, registry)
    if name is not None:
        p = _helper(name, "erase", _server_url(registry))
        found = found or p.returncode == 0
    return found


def erase_all(authfile: str | None = None) -> None:
    """Empty the ``auths`` of the auth file (helpers keep their own stores)."""
    path = auth_file(authfile)
    doc = load(path)
    if doc.get("auths"):
        doc["auths"] = {}
        _save(path, doc)


def _helper_name(doc: dict[str, Any], registry: str) -> str | None:
    for key, name in (doc.get("credHelpers") or {}).items():
        if _normalise_key(key) == registry and isinstance(name, str):
            return name
    store_name = doc.get("credsStore")
    return store_name if isinstance(store_name, str) and store_name else None

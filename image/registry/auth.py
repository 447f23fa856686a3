"""Registry authentication: challenges, Bearer tokens, Basic credentials.

Challenge parsing follows RFC 7235 section 4.1 (``WWW-Authenticate``: one or
more ``scheme param=value, ...`` challenges, values as tokens or quoted strings
with backslash escapes, commas inside quotes belonging to the value). The token
flow is the Docker/OCI registry token protocol the distribution-spec defers to:
on a ``Bearer`` challenge, ``GET <realm>?service=<service>&scope=<scope>`` (with
HTTP Basic credentials if given) returns JSON with ``token`` or ``access_token``.
An identity token (what a docker credential helper returns with the user name
``<token>``) is a refresh token instead: it goes to the realm in the OAuth2 form
of that protocol (distribution's token-auth "oauth.md", RFC 6749 section 6):
``POST <realm>`` with ``grant_type=refresh_token``, ``service``, ``client_id``,
``scope`` (space-separated) and ``refresh_token``, answered with ``access_token``.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ketch.image.errors import AuthError, RegistryError

if TYPE_CHECKING:  # requests is imported lazily by the callers that need the network
    import requests

_TCHARS = r"!#$%&'*+\-.^_`|~0-9A-Za-z"
# auth-param = token BWS "=" BWS ( token / quoted-string ); unquoted values are
# taken up to whitespace or comma to tolerate servers that do not quote URLs.
_PARAM_RE = re.compile(
    rf'([{_TCHARS}]+)[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))')
_TOKEN68_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*(?=[ \t]*(?:,|$))")
_SCHEME_RE = re.compile(rf"[{_TCHARS}]+")
_UNESCAPE_RE = re.compile(r"\\(.)")


@dataclass
class Challenge:
    """One authentication challenge: lowercase ``scheme`` and its ``params``
    (lowercase names; values unquoted)."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def _skip(s: str, i: int, chars: str) -> int:
    while i < len(s) and s[i] in chars:
        i += 1
    return i


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` header value into challenges.

    ``'Bearer realm="https://a/token",service="reg",scope="repository:x:pull,push"'``
    gives one Challenge with three params (the comma inside the quoted scope
    stays in the value, backslash escapes are undone). Several challenges in one
    header are split where a bare scheme token starts (``Basic realm="x", Bearer
    realm="y"``). A token68 credential is kept under the param name ``""``.
    Raises :class:`AuthError` for text that is neither (e.g. an unterminated quote).
    """
    out: list[Challenge] = []
    s, i = header, 0
    while True:
        i = _skip(s, i, " \t,")
        if i >= len(s):
            return out
        m = _SCHEME_RE.match(s, i)
        if m is None or (m.end() < len(s) and s[m.end()] not in " \t,"):
            raise AuthError(f"malformed WWW-Authenticate header: {header!r}")
        ch = Challenge(m.group(0).lower())
        out.append(ch)
        i = _skip(s, m.end(), " \t")
        t68 = _TOKEN68_RE.match(s, i)
        if t68 is not None:
            ch.params[""] = t68.group(0)
            i = t68.end()
            continue
        while (p := _PARAM_RE.match(s, i)) is not None:
            name, quoted, bare = p.groups()
            value = _UNESCAPE_RE.sub(r"\1", quoted) if quoted is not None else bare
            ch.params[name.lower()] = value
            i = _skip(s, p.end(), " \t")
            if i < len(s) and s[i] != ",":
                raise AuthError(f"malformed WWW-Authenticate header: {header!r}")
            i = _skip(s, i, " \t,")


def basic_header(username: str, password: str) -> str:
    """``Basic base64(user:pass)`` for an Authorization header."""
    raw = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def is_loopback(host: str) -> bool:
    """True for localhost names (any case) and loopback IP addresses."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def same_site(host: str, registry_host: str) -> bool:
    """True if a token realm on ``host`` may receive the credentials of ``registry_host``:
    the same host, or (for DNS names) the same parent domain of two labels, as
    ``auth.docker.io`` for ``registry-1.docker.io``."""
    host, registry_host = host.lower().rstrip("."), registry_host.lower().rstrip(".")
    if host == registry_host:
        return True
    for h in (host, registry_host):
        with contextlib.suppress(ValueError):
            ipaddress.ip_address(h)
            return False
    a, b = host.split("."), registry_host.split(".")
    return len(a) >= 2 and len(b) >= 2 and a[-2:] == b[-2:]


# The user name docker credential helpers (and docker's config.json) give an identity
# token under; the token itself is the secret.
IDENTITY_TOKEN_USER = "<token>"
# client_id of the OAuth2 token request (required by oauth.md; any name identifying
# the client).
OAUTH_CLIENT_ID = "ketch-image"


class Credentials(tuple):
    """``(user, password)`` that remembers where it came from (``source``: ``--creds``,
    ``auth file PATH``, ``credential helper docker-credential-NAME``), so a rejection
    can say which credentials to fix. Compares and unpacks like the plain tuple.
    ``(IDENTITY_TOKEN_USER, token)`` is an identity (refresh) token."""

    source: str

    def __new__(cls, user: str, password: str, source: str) -> Credentials:
        obj = super().__new__(cls, (user, password))
        obj.source = source
        return obj


def identity_token(creds: tuple[str, str] | None) -> str | None:
    """The refresh token if ``creds`` are an identity token (user ``<token>``), else None."""
    if creds is not None and creds[0] == IDENTITY_TOKEN_USER and creds[1]:
        return creds[1]
    return None


def creds_source(creds: tuple[str, str] | None) -> str:
    """Where ``creds`` came from, for messages."""
    return getattr(creds, "source", "the given credentials")


def login_hint(registry: str) -> str:
    """What to do when a registry wants credentials and none were given."""
    return (f"log in with 'ketch-image login {registry}', or pass --creds USER:PASS "
            "or --authfile FILE")


def rejected(registry: str, creds: tuple[str, str], status: int, by: str = "") -> str:
    """The message for credentials a registry (or its token server ``by``) refused."""
    where = f" by token server {by}" if by else ""
    what = "identity token" if identity_token(creds) else "credentials"
    verb = "was" if identity_token(creds) else "were"
    return f"{registry}: {what} from {creds_source(creds)} {verb} rejected{where} " \
           f"(HTTP {status})"


def fetch_token(session: requests.Session, challenge: Challenge, scopes: list[str],
                creds: tuple[str, str] | None, *, insecure: bool, verify: bool,
                timeout: float, registry_host: str | None = None,
                registry: str | None = None) -> str:
    """Get a Bearer token for ``scopes`` (one ``scope`` parameter each) from the
    challenge's realm.

    ``creds`` are sent as HTTP Basic to the token server, but only when the
    realm is on the registry's own site (:func:`same_site` with
    ``registry_host``): a registry cannot send them elsewhere by naming another
    realm. An ``http://`` realm is only used for loopback hosts or when the
    registry itself is insecure, so credentials do not travel in clear text to
    a remote server. Identity-token ``creds`` (:func:`identity_token`) are
    sent as an OAuth2 refresh-token grant (``POST``) under the same rules.
    ``registry`` (``host[:port]``, default ``registry_host``) names the registry in
    messages and in the ``login`` hint.
    Raises :class:`AuthError` when the server refuses or answers without a token.
    """
    import requests  # lazy: only network commands pay for it

    realm = challenge.params.get("realm", "")
    parts = urlsplit(realm)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AuthError(f"invalid token realm {realm!r} in the registry's challenge")
    if parts.scheme == "http" and not (insecure or is_loopback(parts.hostname)):
        raise AuthError(f"refusing plain-http token realm {realm!r} for a TLS registry")
    params: list[tuple[str, str]] = []
    if challenge.params.get("service"):
        params.append(("service", challenge.params["service"]))
    for scope in scopes:
        params.append(("scope", scope))
    headers = {}
    withheld = ""
    if creds is not None and registry_host is not None and \
            not same_site(parts.hostname, registry_host):
        withheld = (f" (credentials for {registry or registry_host} are not sent to a token realm on "
                    f"another host, {parts.hostname})")
        creds = None
    refresh = identity_token(creds)
    try:
        if refresh is not None:
            form = {"grant_type": "refresh_token", "refresh_token": refresh,
                    "client_id": OAUTH_CLIENT_ID}
            if scopes:
                form["scope"] = " ".join(scopes)
            if challenge.params.get("service"):
                form["service"] = challenge.params["service"]
            r = session.post(realm, data=form, timeout=timeout, verify=verify)
        else:
            if creds is not None:
                headers["Authorization"] = basic_header(*creds)
                params.append(("account", creds[0]))
            r = session.get(realm, params=params, headers=headers, timeout=timeout,
                            verify=verify)
    except requests.RequestException as e:
        from ketch.image.registry.client import short_error
        raise RegistryError(f"token server {realm}: {short_error(e)}") from None
    if r.status_code in (401, 403):
        registry = registry or registry_host or parts.hostname
        if creds is not None:
            raise AuthError(rejected(registry, creds, r.status_code, realm))
        hint = withheld or f"; {login_hint(registry)}"
        raise AuthError(f"token server {realm} refused anonymous access "
                        f"(HTTP {r.status_code}){hint}")
    if r.status_code != 200:
        raise AuthError(f"token server {realm} answered HTTP {r.status_code}")
    try:
        body: Any = r.json()
    except ValueError:
        raise AuthError(f"token server {realm} did not answer JSON") from None
    token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise AuthError(f"token server {realm} answered without a token")
    return token

"""An OCI distribution client: pull, push and tag listing.

Implements distribution-spec spec.md: "Determining support" (``GET /v2/``),
"Pulling manifests" (``GET /v2/<name>/manifests/<reference>`` with ``Accept``
for OCI and Docker schema2 types; body size bounded), "Pulling blobs"
(``GET /v2/<name>/blobs/<digest>``, following redirects without forwarding
credentials to another host), "Pushing blobs" (``HEAD`` to skip existing ones,
``POST ?mount=&from=`` cross-repository mount with fallback, monolithic
``POST`` + ``PUT ?digest=`` and chunked ``PATCH`` with ``Content-Range``),
"Pushing manifests" (``PUT`` with the document's ``Content-Type``),
"Listing tags" (``?n=`` and ``Link`` pagination) and the error body format
(``errors[].code``). Authentication is delegated to :mod:`.auth` (Bearer
tokens, Basic); credentials only go to the registry's own origin.

Retries: connection failures (refused, reset, timed out) of idempotent requests
(``GET``, ``HEAD``, the manifest ``PUT``) and of ``GET /v2/`` are retried with
exponential backoff (:data:`RETRY_DELAYS`); 429 and 5xx answers to ``GET``/``HEAD``
are retried by urllib3 (honouring ``Retry-After``). A non-idempotent upload step
(``POST``, ``PATCH``, the blob ``PUT``) that loses its connection raises
:class:`RegistryUnreachable`, one answered with 429 or 5xx raises
:class:`UploadBusy` (with the ``Retry-After`` pause); the caller restarts the blob
upload from the beginning in a new session. A blob download can be resumed
with ``Range: bytes=N-`` (:meth:`RegistryClient.open_blob`; RFC 9110 14.2).

Scheme choice: HTTPS with verification by default; loopback registries are
tried over plain HTTP first, and ``tls_verify=False`` allows unverified HTTPS
with a plain-HTTP fallback.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING
from urllib.parse import urlencode, urljoin, urlsplit

from ketch.image import oci
from ketch.image.errors import (
    AuthError,
    BlobUnknown,
    RegistryError,
    RegistryUnreachable,
    TransferInterrupted,
)
from ketch.image.reference import Reference
from ketch.image.registry.auth import (
    Challenge,
    basic_header,
    creds_source,
    fetch_token,
    identity_token,
    is_loopback,
    login_hint,
    parse_challenges,
    rejected,
)

if TYPE_CHECKING:
    import ssl

    import requests
    import requests.adapters

USER_AGENT = "ketch-image/0.1"
MANIFEST_ACCEPT = ", ".join([oci.OCI_MANIFEST, oci.OCI_INDEX, oci.DOCKER_MANIFEST, oci.DOCKER_LIST])
TIMEOUT = 60.0
_CHUNK = 1 << 20
_LINK_NEXT_RE = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?')
# A hostile registry could page tags forever; this bounds the listing.
# A registry paging with a cursor sends a new next-page URL each time; one sent twice
# would loop forever. Past the loop check, this only bounds a hostile registry.
_MAX_TAG_PAGES = 1_000_000
# Pauses (seconds) before the retries of a request whose connection failed.
RETRY_DELAYS = (0.5, 1.0, 2.0)
_CONTENT_RANGE_RE = re.compile(r"bytes ([0-9]+)-[0-9]+/(?:[0-9]+|\*)")


def connection_failure(e: BaseException) -> str | None:
    """A short reason (``connection refused``, ``timed out`` ...) if ``e`` is a failure to
    connect or a lost connection, None for other errors (TLS, protocol, bad URL)."""
    import requests
    import urllib3

    if isinstance(e, requests.exceptions.SSLError):
        return None
    if not isinstance(e, (requests.ConnectionError, requests.Timeout,
                          urllib3.exceptions.HTTPError, OSError)):
        return None
    chain: list[BaseException] = []
    todo: list[BaseException] = [e]
    while todo:
        cur = todo.pop(0)
        if any(cur is c for c in chain):
            continue
        chain.append(cur)
        for nxt in (cur.__cause__, cur.__context__, getattr(cur, "reason", None), *cur.args):
            if isinstance(nxt, BaseException):
                todo.append(nxt)
    # the errno first: urllib3's NewConnectionError is also a ConnectTimeoutError
    for cur in chain:
        if isinstance(cur, socket.gaierror):
            return "unknown host"
        if isinstance(cur, OSError) and cur.errno in _CONNECT_ERRNOS:
            return os.strerror(cur.errno).lower()
    if any(isinstance(cur, (TimeoutError, requests.Timeout, urllib3.exceptions.TimeoutError))
           for cur in chain):
        return "timed out"
    text = str(e).lower()
    for errno_ in _CONNECT_ERRNOS:
        if os.strerror(errno_).lower() in text:
            return os.strerror(errno_).lower()
    if "remotedisconnected" in text or "connection aborted" in text:
        return "connection closed by the registry"
    return None


_CONNECT_ERRNOS = (errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE,
                   errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN,
                   errno.ENETDOWN)


def short_error(e: BaseException) -> str:
    """One short line for a requests/urllib3 error (not urllib3's nested repr): the
    connection failure's reason, the TLS error itself, or the error's text."""
    import http.client
    import ssl

    reason = connection_failure(e)
    if reason is not None:
        return reason
    todo: list[BaseException] = [e]
    seen: list[BaseException] = []
    while todo:
        cur = todo.pop(0)
        if any(cur is s for s in seen):
            continue
        seen.append(cur)
        if isinstance(cur, ssl.SSLError):
            if getattr(cur, "reason", None) == "WRONG_VERSION_NUMBER":
                # what a TLS client reads when a plain-HTTP server answers it
                return ("the server answered TLS with plain HTTP (a plain-HTTP registry: "
                        "--tls-verify=false)")
            return " ".join(str(cur).split())
        if isinstance(cur, http.client.IncompleteRead):
            # urllib3's subclass keeps a count in ``partial``, http.client the bytes
            got = cur.partial if isinstance(cur.partial, int) else len(cur.partial)
            return (f"connection closed after {got} bytes of the body, {cur.expected} more "
                    "expected" if cur.expected is not None else
                    "connection closed before the end of the body")
        for nxt in (cur.__cause__, cur.__context__, getattr(cur, "reason", None), *cur.args):
            if isinstance(nxt, BaseException):
                todo.append(nxt)
    return " ".join(str(e).split())


def _error_text(r: requests.Response) -> str:
    """A response's distribution-spec errors (``code: message``, joined by ``; `` and
    cut to 400 characters, since the text ends up in a one-line message), or its status."""
    try:
        errors = r.json()["errors"]
        texts = [f"{e.get('code', 'UNKNOWN')}: {e.get('message', '')}".rstrip(": ")
                 for e in errors]
    except (ValueError, KeyError, TypeError, AttributeError):
        texts = []
    if not texts:
        return f"HTTP {r.status_code} {r.reason or ''}".strip()
    text = " ".join("; ".join(texts).split())
    return text if len(text) <= 400 else text[:397] + "..."


# Answers to an upload step worth another try (RFC 9110 15.6; RFC 6585 4 for 429).
_BUSY_STATUSES = (429, 500, 502, 503, 504)
# A Retry-After longer than this is cut to it: a push should not sleep for hours.
MAX_RETRY_AFTER = 60.0


class UploadBusy(RegistryError):
    """An upload step was answered with 429 or a 5xx status; ``status`` is it,
    ``retry_after`` the seconds the registry asked to wait (0 if it did not say)."""

    def __init__(self, message: str, status: int, retry_after: float) -> None:
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


def retry_after_seconds(value: str | None) -> float:
    """``Retry-After`` (RFC 9110 10.2.3: delay-seconds or an HTTP-date) as seconds from
    now, at most :data:`MAX_RETRY_AFTER`; 0 when absent or unreadable."""
    from datetime import UTC, datetime
    from email.utils import parsedate_to_datetime

    value = (value or "").strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    wait = (when - datetime.now(UTC)).total_seconds()
    return min(max(wait, 0.0), MAX_RETRY_AFTER)


def _check_upload_answer(r: requests.Response, step: str, expected: int) -> None:
    """Raise :class:`UploadBusy` for a 429/5xx answer, :class:`RegistryError` for any
    other status than ``expected``; ``step`` names the request in the message."""
    if r.status_code == expected:
        return
    text = _error_text(r)
    detail = text if text.startswith("HTTP ") else f"HTTP {r.status_code} ({text})"
    if r.status_code in _BUSY_STATUSES:
        raise UploadBusy(f"{step}: {detail}", r.status_code,
                         retry_after_seconds(r.headers.get("Retry-After")))
    raise RegistryError(f"{step}: {detail}")


class RegistryClient:
    """Talks to one repository of one registry.

    ``creds`` is ``(user, password)`` for Basic auth or the token server;
    ``tls_verify=False`` skips certificate checks and allows plain HTTP.
    ``actions`` are the token scope actions asked for this repository
    (``("pull",)``, ``("pull", "push")``, or ``()`` for none, as for a login);
    ``mount_from`` names other
    repositories of the same registry blobs may be mounted from (their pull
    scope is asked for too). ``cert_dir`` is a docker ``certs.d``-style
    directory: every ``*.crt`` is trusted as a CA (besides the system ones), a
    ``NAME.cert``/``NAME.key`` pair is the client certificate; without it, the
    registry's directory in the standard ``certs.d`` places is used when there
    is one (:func:`default_cert_dir`).
    """

    def __init__(self, ref: Reference, creds: tuple[str, str] | None = None,
                 tls_verify: bool = True, timeout: float = TIMEOUT,
                 actions: tuple[str, ...] = ("pull",),
                 mount_from: Iterable[str] = (), cert_dir: str | None = None) -> None:
        _import_http_stack()
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        if not tls_verify:
            import warnings

            from urllib3.exceptions import InsecureRequestWarning

            # The user turned verification off on purpose; a warning per request is noise.
            warnings.filterwarnings("ignore", category=InsecureRequestWarning)
        self.ref = ref
        self.creds = creds
        self.tls_verify = tls_verify
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        # Transient server errors are retried (honouring Retry-After); connection
        # failures are not, so a wrong scheme is detected at once. Only idempotent
        # requests are retried: an upload step must not be replayed blindly.
        retry = Retry(total=3, connect=0, read=0, status=3, backoff_factor=0.3,
                      status_forcelist=(429, 500, 502, 503, 504),
                      allowed_methods=frozenset({"GET", "HEAD"}), raise_on_status=False,
                      respect_retry_after_header=True)
        if cert_dir is None:
            cert_dir = default_cert_dir(ref.registry)
        ctx = cert_dir_context(cert_dir, tls_verify) if cert_dir is not None else None
        adapter: HTTPAdapter = _adapter(ctx, max_retries=retry, pool_maxsize=8)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.base: str | None = None
        self._auth: str | None = None  # Authorization header value
        self._challenge: Challenge | None = None
        self._scope_list = [f"repository:{ref.repository}:{','.join(actions)}"] if actions else []
        self._scope_list += [f"repository:{repo}:pull" for repo in mount_from
                             if repo != ref.repository]

    @property
    def insecure(self) -> bool:
        return not self.tls_verify or is_loopback(self.ref.host)

    def close(self) -> None:
        self.session.close()

    # -- connection and auth ------------------------------------------------------

    def ping(self) -> None:
        """``GET /v2/``: pick the scheme and learn how to authenticate.

        Raises :class:`RegistryError` if no scheme answers or the endpoint is
        not a distribution API, :class:`AuthError` if credentials are refused.
        """
        import requests

        if is_loopback(self.ref.host):
            schemes = ["http", "https"]
        elif not self.tls_verify:
            schemes = ["https", "http"]
        else:
            schemes = ["https"]
        for delay in (*RETRY_DELAYS, None):
            errors: list[str] = []
            reasons: list[str] = []
            for scheme in schemes:
                base = f"{scheme}://{self.ref.api_host}"
                try:
                    r = self.session.get(base + "/v2/", timeout=self.timeout,
                                         verify=self.tls_verify)
                except requests.RequestException as e:
                    reason = connection_failure(e)
                    if reason is not None:
                        reasons.append(reason)
                    errors.append(f"{base}: {short_error(e)}")
                    continue
                if r.status_code not in (200, 401):
                    # e.g. 400 from a TLS port spoken to in plain HTTP: try the next scheme
                    errors.append(f"{base}/v2/: {_error_text(r)} (not an OCI registry?)")
                    r.close()
                    continue
                self.base = base
                if r.status_code == 401:
                    self._handle_challenge(r)
                return
            if len(reasons) < len(schemes):
                break  # something answered (TLS or HTTP errors): retrying will not help
            if delay is not None:
                time.sleep(delay)  # the registry may be restarting
        if len(reasons) == len(schemes):
            raise RegistryUnreachable(f"cannot reach registry {self.ref.api_host}: "
                                      f"{reasons[-1]}")
        raise RegistryError(f"cannot reach registry {self.ref.api_host}: " + "; ".join(errors))

    def _scopes(self, challenge: Challenge) -> list[str]:
        # A later (insufficient_scope) challenge adds its scopes to those already
        # asked for, so the new token covers both.
        extra = challenge.params.get("scope")
        if extra:
            self._scope_list.extend(s for s in extra.split(" ")
                                    if s and s not in self._scope_list)
        return list(self._scope_list)

    def _handle_challenge(self, r: requests.Response) -> None:
        header = r.headers.get("WWW-Authenticate", "")
        challenges = parse_challenges(header)
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        basic = next((c for c in challenges if c.scheme == "basic"), None)
        if bearer is not None:
            self._challenge = bearer
            token = fetch_token(self.session, bearer, self._scopes(bearer), self.creds,
                                insecure=self.insecure, verify=self.tls_verify,
                                timeout=self.timeout, registry_host=self.ref.host,
                                registry=self.ref.registry)
            self._auth = "Bearer " + token
        elif basic is not None:
            if self.creds is None:
                raise AuthError(f"registry {self.ref.registry} requires credentials; "
                                f"{login_hint(self.ref.registry)}")
            if identity_token(self.creds) is not None:
                # a refresh token is only good for a token server, never as a password
                raise AuthError(f"registry {self.ref.registry} uses Basic auth, but "
                                f"{creds_source(self.creds)} holds an identity token, "
                                "which only works with Bearer token auth")
            self._auth = basic_header(*self.creds)
        else:
            raise AuthError(f"registry {self.ref.registry} asks for unsupported authentication "
                            f"{header!r}")

    def check_login(self) -> None:
        """Prove ``creds`` work: ``GET /v2/`` and answer its challenge with them (a Bearer
        token for no particular scope, or Basic), then ``GET /v2/`` again with the result.

        Raises :class:`AuthError` if the registry or its token server refuses them.
        """
        self.ping()
        if self._challenge is not None:  # Bearer: get a token with the credentials alone
            token = fetch_token(self.session, self._challenge, [], self.creds,
                                insecure=self.insecure, verify=self.tls_verify,
                                timeout=self.timeout, registry_host=self.ref.host,
                                registry=self.ref.registry)
            self._auth = "Bearer " + token
        r = self._request("GET", "/v2/")
        r.close()
        if r.status_code != 200:
            raise AuthError(f"login to {self.ref.registry} failed: {_error_text(r)}")

    def _url(self, path_or_url: str) -> str:
        if self.base is None:
            self.ping()
        assert self.base is not None
        if path_or_url.startswith(("http://", "https://", "/")):
            return urljoin(self.base + "/", path_or_url)
        return f"{self.base}/v2/{self.ref.repository}/{path_or_url}"

    def _own_origin(self, url: str) -> bool:
        a, b = urlsplit(url), urlsplit(self.base or "")
        return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)

    def _request(self, method: str, path_or_url: str, headers: dict[str, str] | None = None,
                 *, stream: bool = False, data: bytes | IO[bytes] | None = None,
                 ok: tuple[int, ...] = (), idempotent: bool | None = None) -> requests.Response:
        """Send one request, answering one auth challenge; returns the response.

        A failed connection is retried after each of :data:`RETRY_DELAYS` when the
        request is idempotent (default: ``GET``/``HEAD``), else (or when the retries
        are used up) :class:`RegistryUnreachable` is raised.

        ``path_or_url`` is relative to the repository (``blobs/<digest>``), an
        absolute path or a full URL (an upload ``Location``). Authorization is
        only attached for the registry's own origin; redirects to another host
        are followed without it (requests drops it on a host change). A body
        that is a file is rewound before a retry after a challenge.
        """
        import requests

        url = self._url(path_or_url)
        retry = idempotent if idempotent is not None else method in ("GET", "HEAD")
        for attempt in range(2):
            h = dict(headers or {})
            if self._auth and self._own_origin(url):
                h["Authorization"] = self._auth
            for delay in (*(RETRY_DELAYS if retry else ()), None):
                if hasattr(data, "seek"):
                    data.seek(0)  # type: ignore[union-attr]
                try:
                    r = self.session.request(method, url, headers=h, stream=stream, data=data,
                                             timeout=self.timeout, verify=self.tls_verify,
                                             allow_redirects=method in ("GET", "HEAD"))
                    break
                except requests.RequestException as e:
                    reason = connection_failure(e)
                    if reason is None:
                        raise RegistryError(f"{method} {url}: {short_error(e)}") from None
                    if delay is None:
                        raise RegistryUnreachable(
                            f"cannot reach registry {urlsplit(url).netloc}: {reason} "
                            f"({method} {urlsplit(url).path})") from None
                    time.sleep(delay)
            if r.status_code == 401 and attempt == 0 and self._own_origin(url):
                r.close()
                self._handle_challenge(r)  # raises if it cannot authenticate
                continue
            if r.status_code in (401, 403) and r.status_code not in ok:
                r.close()
                if r.status_code == 401 and self._own_origin(url):
                    if self.creds is not None:
                        raise AuthError(rejected(self.ref.registry, self.creds, 401))
                    raise AuthError(f"{self.ref.registry}: authentication required (HTTP 401); "
                                    f"{login_hint(self.ref.registry)}")
                raise AuthError(f"{method} {url}: access denied ({_error_text(r)})")
            return r
        raise AssertionError("unreachable")

    def _get(self, path: str, headers: dict[str, str], *, stream: bool) -> requests.Response:
        return self._request("GET", path, headers, stream=stream)

    # -- pulling --------------------------------------------------------------------

    def get_manifest(self, reference: str,
                     accept: str = MANIFEST_ACCEPT) -> tuple[bytes, str | None]:
        """Fetch a manifest or index by tag or digest; return ``(body, content_type)``.

        The body is bounded by :data:`ketch.image.oci.MAX_DOCUMENT_SIZE`; a
        digest reference is verified against the body. Raises
        :class:`RegistryError` (``MANIFEST_UNKNOWN``, too large, etc.) or
        :class:`DigestError`.
        """
        r = self._get(f"manifests/{reference}", {"Accept": accept}, stream=True)
        with r:
            if r.status_code != 200:
                raise RegistryError(
                    f"manifest {self.ref.repository}:{reference}: {_error_text(r)}")
            length = r.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > oci.MAX_DOCUMENT_SIZE:
                raise RegistryError(f"manifest {reference} is larger than "
                                    f"{oci.MAX_DOCUMENT_SIZE} bytes ({length})")
            body = bytearray()
            for chunk in _raw_chunks(r, f"manifest {reference}"):
                body += chunk
                if len(body) > oci.MAX_DOCUMENT_SIZE:
                    raise RegistryError(f"manifest {reference} is larger than "
                                        f"{oci.MAX_DOCUMENT_SIZE} bytes")
            content_type = (r.headers.get("Content-Type") or "").split(";")[0].strip() or None
        if ":" in reference:  # tags cannot contain ":", so this is a digest
            oci.verify_bytes(bytes(body), reference)
        return bytes(body), content_type

    def blob_chunks(self, digest: str) -> Iterator[bytes]:
        """Stream the blob ``digest`` in chunks (the caller verifies digest and size).

        Raises :class:`RegistryError` for HTTP errors and broken connections.
        """
        _, chunks = self.open_blob(digest)
        yield from chunks

    def open_blob(self, digest: str, start: int = 0) -> tuple[int, Iterator[bytes]]:
        """``GET`` the blob from byte ``start`` on (``Range: bytes=start-`` when > 0).

        Returns ``(offset, chunks)``: ``offset`` is ``start`` when the registry
        answered ``206`` with a matching ``Content-Range``, 0 when it sent the whole
        blob (``200``; the caller starts over). Raises :class:`BlobUnknown` (404),
        :class:`RegistryError`; iterating ``chunks`` raises
        :class:`TransferInterrupted` if the connection breaks.
        """
        oci.validate_digest(digest)
        headers = {"Range": f"bytes={start}-"} if start else {}
        r = self._get(f"blobs/{digest}", headers, stream=True)
        offset = 0
        if r.status_code == 206 and start:
            m = _CONTENT_RANGE_RE.fullmatch(r.headers.get("Content-Range", "").strip())
            if m is None or int(m.group(1)) != start:
                r.close()  # a range we did not ask for: fetch it all instead
                return self.open_blob(digest)
            offset = start
        elif r.status_code != 200:
            with r:
                text = _error_text(r)
            if r.status_code == 404:
                raise BlobUnknown(f"blob {digest}: {text}")
            raise RegistryError(f"blob {digest}: {text}")
        return offset, _closing_chunks(r, f"blob {digest}")

    def foreign_chunks(self, url: str, digest: str) -> Iterator[bytes]:
        """Stream a blob from a descriptor's ``urls`` entry (image-spec descriptor.md).

        Never with the registry's credentials (the URL is another server's);
        ``https`` only, unless ``tls_verify`` is off or the URL's host is a
        loopback one. The caller verifies digest and size.
        """
        import requests

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RegistryError(f"blob {digest}: unusable URL {url!r}")
        if parts.scheme == "http" and not (not self.tls_verify or is_loopback(parts.hostname)):
            raise RegistryError(f"blob {digest}: refusing plain-http URL {url!r}")
        try:
            r = self.session.get(url, stream=True, timeout=self.timeout, verify=self.tls_verify)
        except requests.RequestException as e:
            raise RegistryError(f"blob {digest} from {url}: {e}") from None
        with r:
            if r.status_code != 200:
                raise RegistryError(f"blob {digest} from {url}: HTTP {r.status_code}")
            yield from _raw_chunks(r, f"blob {digest} from {url}")

    def list_tags(self, page_size: int | None = None) -> list[str]:
        """All tags of the repository, following ``Link: <...>; rel="next"`` pages.

        ``page_size`` is sent as ``?n=``. Raises :class:`RegistryError`
        (``NAME_UNKNOWN``, a malformed body, a next page on another host).
        """
        url = "tags/list" + (f"?{urlencode({'n': page_size})}" if page_size else "")
        tags: list[str] = []
        visited: set[str] = set()
        for _ in range(_MAX_TAG_PAGES):
            r = self._get(url, {"Accept": "application/json"}, stream=False)
            with r:
                if r.status_code != 200:
                    raise RegistryError(f"tags of {self.ref.repository}: {_error_text(r)}")
                try:
                    page = r.json().get("tags") or []
                except (ValueError, AttributeError):
                    raise RegistryError(f"tags of {self.ref.repository}: not a tag list") from None
                if not isinstance(page, list) or not all(isinstance(t, str) for t in page):
                    raise RegistryError(f"tags of {self.ref.repository}: not a tag list")
                tags.extend(page)
                m = _LINK_NEXT_RE.search(r.headers.get("Link", ""))
            if m is None:
                return tags
            visited.add(r.url)
            url = urljoin(r.url, m.group(1))
            if url in visited:
                raise RegistryError(f"tags of {self.ref.repository}: the registry's next page "
                                    f"{url} was listed before (a paging loop)")
            if not self._own_origin(url):
                raise RegistryError(f"tags of {self.ref.repository}: next page {url} is on "
                                    "another host")
        raise RegistryError(f"tags of {self.ref.repository}: more than {_MAX_TAG_PAGES} pages")

    # -- pushing --------------------------------------------------------------------

    def has_blob(self, digest: str) -> bool:
        """``HEAD /v2/<name>/blobs/<digest>``: True if the registry already has it."""
        oci.validate_digest(digest)
        r = self._request("HEAD", f"blobs/{digest}")
        r.close()
        if r.status_code == 200:
            return True
        if r.status_code == 404:
            return False
        raise RegistryError(f"HEAD blob {digest}: HTTP {r.status_code}")

    def has_manifest(self, digest: str, media_type: str) -> bool:
        """``HEAD /v2/<name>/manifests/<digest>``: True if the registry has it."""
        r = self._request("HEAD", f"manifests/{digest}", {"Accept": media_type})
        r.close()
        return r.status_code == 200

    def mount_blob(self, digest: str, from_repo: str) -> str | None:
        """Try a cross-repository mount of ``digest`` from ``from_repo``.

        Returns None when the registry mounted it (201), else the upload
        ``Location`` it opened instead (202), for the caller to upload into.
        Raises :class:`UploadBusy` for a 429/5xx answer, :class:`RegistryError`
        for other unexpected ones.
        """
        query = urlencode({"mount": digest, "from": from_repo})
        r = self._request("POST", f"blobs/uploads/?{query}", {"Content-Length": "0"})
        with r:
            if r.status_code == 201:
                return None
            _check_upload_answer(r, f"mount of {digest} from {from_repo}", 202)
            if r.headers.get("Location"):
                return r.headers["Location"]
            raise RegistryError(f"mount of {digest} from {from_repo}: no Location")

    def start_upload(self) -> tuple[str, int]:
        """``POST /v2/<name>/blobs/uploads/``: open an upload session.

        Returns ``(location, min_chunk)`` where ``min_chunk`` is the registry's
        ``OCI-Chunk-Min-Length`` (0 if unset).
        """
        r = self._request("POST", "blobs/uploads/", {"Content-Length": "0"})
        with r:
            _check_upload_answer(r, f"blob upload to {self.ref.repository} (POST)", 202)
            if not r.headers.get("Location"):
                raise RegistryError(f"blob upload to {self.ref.repository}: no Location")
            minimum = r.headers.get("OCI-Chunk-Min-Length", "")
            return r.headers["Location"], int(minimum) if minimum.isdigit() else 0

    def upload_monolithic(self, location: str, digest: str, size: int,
                          data: bytes | IO[bytes]) -> None:
        """``PUT <location>?digest=`` with the whole blob as the body."""
        r = self._request("PUT", _with_query(location, digest=digest),
                          {"Content-Type": "application/octet-stream",
                           "Content-Length": str(size)}, data=data)
        with r:
            _check_upload_answer(r, f"upload of blob {digest} (PUT)", 201)

    def upload_chunked(self, location: str, digest: str, f: IO[bytes], size: int,
                       chunk_size: int) -> None:
        """``PATCH`` each ``chunk_size`` piece with ``Content-Range: start-end``, then
        ``PUT <location>?digest=`` with no body (distribution-spec "chunked upload")."""
        offset = 0
        while offset < size:
            piece = f.read(min(chunk_size, size - offset))
            if not piece:
                raise RegistryError(f"upload of blob {digest}: file shorter than {size} bytes")
            end = offset + len(piece) - 1
            r = self._request("PATCH", location,
                              {"Content-Type": "application/octet-stream",
                               "Content-Range": f"{offset}-{end}",
                               "Content-Length": str(len(piece))}, data=piece)
            with r:
                _check_upload_answer(r, f"chunk {offset}-{end} of blob {digest} (PATCH)", 202)
                location = r.headers.get("Location") or location
            offset = end + 1
        if f.read(1):  # at the end a verifying reader checks the digest (and the size here)
            raise RegistryError(f"upload of blob {digest}: file longer than {size} bytes")
        r = self._request("PUT", _with_query(location, digest=digest), {"Content-Length": "0"})
        with r:
            _check_upload_answer(r, f"upload of blob {digest} (PUT)", 201)

    def put_manifest(self, reference: str, body: bytes, media_type: str) -> str:
        """``PUT /v2/<name>/manifests/<reference>`` with ``Content-Type: media_type``.

        Returns the digest the registry reports (checked against the body's
        sha256 when it reports one). Raises :class:`RegistryError`.
        """
        # the same document PUT twice to the same name is harmless: retried like a GET
        r = self._request("PUT", f"manifests/{reference}", {"Content-Type": media_type},
                          data=body, idempotent=True)
        with r:
            if r.status_code != 201:
                raise RegistryError(f"manifest {self.ref.repository}:{reference}: "
                                    f"{_error_text(r)}")
            reported = r.headers.get("Docker-Content-Digest")
        digest = oci.sha256_digest(body)
        if reported and reported.startswith("sha256:") and reported != digest:
            raise RegistryError(f"manifest {reference}: registry stored {reported}, "
                                f"expected {digest}")
        return digest


def _import_http_stack() -> None:
    """Import requests (with urllib3, http.client, ssl, charset_normalizer ...) with the
    cyclic garbage collector paused.

    The import creates tens of thousands of objects, all kept for the life of the
    process; the collections they trigger on the way find nothing to free and cost
    ~8 ms, a visible share of a registry command's start-up.
    """
    import gc

    if "requests" in sys.modules or not gc.isenabled():
        return
    gc.disable()
    try:
        import requests  # noqa: F401 (with requests.adapters and urllib3.util.retry)
    finally:
        gc.enable()


def default_cert_dir(registry: str) -> str | None:
    """The first existing ``certs.d/<registry>`` directory (``registry`` is ``host[:port]``)
    of ``$HOME/.config/containers``, ``/etc/containers`` and ``/etc/docker``: where
    skopeo/podman and docker look for a registry's CAs and client certificate."""
    for base in (os.path.expanduser("~/.config/containers/certs.d"),
                 "/etc/containers/certs.d", "/etc/docker/certs.d"):
        path = os.path.join(base, registry)
        if os.path.isdir(path):
            return path
    return None


def cert_dir_context(cert_dir: str, verify: bool = True) -> ssl.SSLContext:
    """An SSL context trusting the ``*.crt`` CAs of ``cert_dir`` and presenting its
    ``*.cert``/``*.key`` client pair (docker's ``certs.d/<host:port>/`` layout).

    Raises :class:`RegistryError` for a missing directory, a ``.cert`` without
    its ``.key`` or unreadable PEM files.
    """
    import ssl

    if not os.path.isdir(cert_dir):
        raise RegistryError(f"--cert-dir {cert_dir}: not a directory")
    ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    for name in sorted(os.listdir(cert_dir)):
        path = os.path.join(cert_dir, name)
        try:
            if name.endswith(".crt"):
                ctx.load_verify_locations(cafile=path)
            elif name.endswith(".cert"):
                key = path[: -len(".cert")] + ".key"
                if not os.path.exists(key):
                    raise RegistryError(f"--cert-dir: client certificate {path} has no {key}")
                ctx.load_cert_chain(path, key)
        except (ssl.SSLError, OSError) as e:
            raise RegistryError(f"--cert-dir: cannot load {path}: {e}") from None
    return ctx


# Upload bodies are sent in pieces of this size (http.client's default is 8 KiB,
# which makes pushing large blobs CPU-bound on Python overhead).
_SEND_BLOCK = 1 << 20


def _adapter(ctx: ssl.SSLContext | None, **kw: object) -> requests.adapters.HTTPAdapter:
    """An HTTPAdapter with large send blocks and, if given, a prepared SSL context."""
    from requests.adapters import HTTPAdapter

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: object, **pool_kw: object) -> None:
            pool_kw["blocksize"] = _SEND_BLOCK
            if ctx is not None:
                pool_kw["ssl_context"] = ctx
            super().init_poolmanager(*args, **pool_kw)  # type: ignore[arg-type]

    return Adapter(**kw)  # type: ignore[arg-type]


def _with_query(location: str, **params: str) -> str:
    sep = "&" if "?" in location else "?"
    return location + sep + urlencode(params)


def _closing_chunks(r: requests.Response, what: str) -> Iterator[bytes]:
    with r:
        yield from _raw_chunks(r, what)


def _raw_chunks(r: requests.Response, what: str) -> Iterator[bytes]:
    """The body exactly as sent: a Content-Encoding must not be undone, since the
    digest covers the stored bytes."""
    import requests
    import urllib3

    try:
        yield from r.raw.stream(_CHUNK, decode_content=False)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
        raise TransferInterrupted(f"{what}: download interrupted: {short_error(e)}") from None

"""A pull-side OCI distribution client.

Implements distribution-spec spec.md: "Determining support" (``GET /v2/``),
"Pulling manifests" (``GET /v2/<name>/manifests/<reference>`` with ``Accept``
for OCI and Docker schema2 types; body size bounded), "Pulling blobs"
(``GET /v2/<name>/blobs/<digest>``, following redirects without forwarding
credentials to another host) and the error body format (``errors[].code``).
Authentication is delegated to :mod:`.auth` (Bearer tokens, Basic).

Scheme choice: HTTPS with verification by default; loopback registries are
tried over plain HTTP first, and ``tls_verify=False`` allows unverified HTTPS
with a plain-HTTP fallback.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ketch.image import oci
from ketch.image.errors import AuthError, RegistryError
from ketch.image.reference import Reference
from ketch.image.registry.auth import (
    Challenge,
    basic_header,
    fetch_token,
    is_loopback,
    parse_challenges,
)

if TYPE_CHECKING:
    import requests

USER_AGENT = "ketch-image/0.1"
MANIFEST_ACCEPT = ", ".join([oci.OCI_MANIFEST, oci.OCI_INDEX, oci.DOCKER_MANIFEST, oci.DOCKER_LIST])
TIMEOUT = 60.0
_CHUNK = 1 << 20


def _error_text(r: requests.Response) -> str:
    """The first distribution-spec error (``code: message``) of a response, or its status."""
    try:
        body = r.json()
        err = body["errors"][0]
        return f"{err.get('code', 'UNKNOWN')}: {err.get('message', '')}".rstrip(": ")
    except (ValueError, KeyError, IndexError, TypeError):
        return f"HTTP {r.status_code} {r.reason or ''}".strip()


class RegistryClient:
    """Talks to one repository of one registry.

    ``creds`` is ``(user, password)`` for Basic auth or the token server;
    ``tls_verify=False`` skips certificate checks and allows plain HTTP.
    """

    def __init__(self, ref: Reference, creds: tuple[str, str] | None = None,
                 tls_verify: bool = True, timeout: float = TIMEOUT) -> None:
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
        # Transient server errors are retried; connection failures are not, so a
        # wrong scheme is detected at once.
        retry = Retry(total=3, connect=0, read=0, status=3, backoff_factor=0.3,
                      status_forcelist=(429, 500, 502, 503, 504),
                      allowed_methods=frozenset({"GET", "HEAD"}), raise_on_status=False)
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.base: str | None = None
        self._auth: str | None = None  # Authorization header value
        self._challenge: Challenge | None = None

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
        errors = []
        for scheme in schemes:
            base = f"{scheme}://{self.ref.api_host}"
            try:
                r = self.session.get(base + "/v2/", timeout=self.timeout,
                                     verify=self.tls_verify)
            except requests.RequestException as e:
                errors.append(f"{base}: {e}")
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
        raise RegistryError("cannot reach registry " + "; ".join(errors))

    def _scopes(self, challenge: Challenge) -> list[str]:
        scopes = [f"repository:{self.ref.repository}:pull"]
        extra = challenge.params.get("scope")
        if extra:
            scopes.extend(s for s in extra.split(" ") if s and s not in scopes)
        return scopes

    def _handle_challenge(self, r: requests.Response) -> None:
        header = r.headers.get("WWW-Authenticate", "")
        challenges = parse_challenges(header)
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        basic = next((c for c in challenges if c.scheme == "basic"), None)
        if bearer is not None:
            self._challenge = bearer
            token = fetch_token(self.session, bearer, self._scopes(bearer), self.creds,
                                insecure=self.insecure, verify=self.tls_verify,
                                timeout=self.timeout)
            self._auth = "Bearer " + token
        elif basic is not None:
            if self.creds is None:
                raise AuthError(f"registry {self.ref.registry} requires credentials (--creds)")
            self._auth = basic_header(*self.creds)
        else:
            raise AuthError(f"registry {self.ref.registry} asks for unsupported authentication "
                            f"{header!r}")

    def _get(self, path: str, headers: dict[str, str], *, stream: bool) -> requests.Response:
        import requests

        if self.base is None:
            self.ping()
        url = f"{self.base}/v2/{self.ref.repository}/{path}"
        for attempt in range(2):
            h = dict(headers)
            if self._auth:
                h["Authorization"] = self._auth
            try:
                r = self.session.get(url, headers=h, stream=stream, timeout=self.timeout,
                                     verify=self.tls_verify, allow_redirects=True)
            except requests.RequestException as e:
                raise RegistryError(f"GET {url}: {e}") from None
            if r.status_code == 401 and attempt == 0:
                r.close()
                self._handle_challenge(r)  # raises if it cannot authenticate
                continue
            if r.status_code == 401:
                r.close()
                raise AuthError(f"GET {url}: access denied ({_error_text(r)})")
            return r
        raise AssertionError("unreachable")

    # -- content ------------------------------------------------------------------

    def get_manifest(self, reference: str) -> tuple[bytes, str | None]:
        """Fetch a manifest or index by tag or digest; return ``(body, content_type)``.

        The body is bounded by :data:`ketch.image.oci.MAX_DOCUMENT_SIZE`; a
        digest reference is verified against the body. Raises
        :class:`RegistryError` (``MANIFEST_UNKNOWN`` etc.) or :class:`DigestError`.
        """
        r = self._get(f"manifests/{reference}", {"Accept": MANIFEST_ACCEPT}, stream=True)
        with r:
            if r.status_code != 200:
                raise RegistryError(
                    f"manifest {self.ref.repository}:{reference}: {_error_text(r)}")
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
        oci.validate_digest(digest)
        r = self._get(f"blobs/{digest}", {}, stream=True)
        with r:
            if r.status_code != 200:
                raise RegistryError(f"blob {digest}: {_error_text(r)}")
            yield from _raw_chunks(r, f"blob {digest}")


def _raw_chunks(r: requests.Response, what: str) -> Iterator[bytes]:
    """The body exactly as sent: a Content-Encoding must not be undone, since the
    digest covers the stored bytes."""
    import requests
    import urllib3

    try:
        yield from r.raw.stream(_CHUNK, decode_content=False)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
        raise RegistryError(f"{what}: download interrupted: {e}") from None

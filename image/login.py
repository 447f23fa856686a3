"""``ketch-image login`` / ``logout``: check credentials against a registry and keep them.

The check is the registry's own authentication (distribution-spec ``GET /v2/``
answered through its ``WWW-Authenticate`` challenge: a Bearer token from its
token server, or Basic); the credentials are then stored by
:mod:`.registry.credentials` (a credential helper or the auth file).
"""

from __future__ import annotations

from ketch.image.errors import ReferenceFormatError
from ketch.image.reference import DOCKER_HUB, Reference, parse_reference
from ketch.image.registry import credentials


def registry_host(text: str) -> str:
    """Normalise a registry argument (``host[:port]``, ``docker.io``, ``docker://host``).

    Raises :class:`ReferenceFormatError` for anything that is not a host.
    """
    text = text.removeprefix("docker://").removeprefix("https://").removeprefix("http://")
    text = text.rstrip("/")
    if text in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        return DOCKER_HUB
    try:
        ref = parse_reference(f"{text}/ketch-login")
    except ReferenceFormatError:
        raise ReferenceFormatError(f"invalid registry {text!r}") from None
    if ref.registry == DOCKER_HUB or ref.repository != "ketch-login":
        raise ReferenceFormatError(f"invalid registry {text!r} (want host[:port])")
    return ref.registry


def login(registry: str, user: str, password: str, *, authfile: str | None = None,
          tls_verify: bool = True, cert_dir: str | None = None,
          source: str = "the login command") -> str:
    """Check ``user``/``password`` against ``registry`` and store them; return where.

    ``source`` names where the password came from, for the message when it is
    refused. Raises :class:`~ketch.image.errors.AuthError` when refused,
    :class:`~ketch.image.errors.RegistryError` when unreachable.
    """
    from ketch.image.registry.auth import Credentials
    from ketch.image.registry.client import RegistryClient

    host = registry_host(registry)
    client = RegistryClient(Reference(host, "ketch-login"),
                            creds=Credentials(user, password, source),
                            tls_verify=tls_verify, cert_dir=cert_dir, actions=())
    try:
        client.check_login()
    finally:
        client.close()
    return credentials.store(host, user, password, authfile)


def logout(registry: str | None, *, authfile: str | None = None) -> bool:
    """Forget the credentials of ``registry`` (None: every ``auths`` entry); True if any."""
    if registry is None:
        credentials.erase_all(authfile)
        return True
    return credentials.erase(registry_host(registry), authfile)

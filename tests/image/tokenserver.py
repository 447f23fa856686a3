"""A small registry token server for the tests (Docker/OCI token protocol).

``GET /token?service=S&scope=repository:NAME:ACTIONS`` answers
``{"token": JWT, "access_token": JWT, "expires_in": N}``. The JWT is ES256-signed
with a throw-away P-256 key whose self-signed certificate goes in the ``x5c``
header; the registry trusts that certificate through ``rootcertbundle``.
Known users (HTTP Basic) get the actions they ask for; anonymous callers get
``pull`` only when ``allow_anonymous`` is set; wrong passwords get 401.

``POST /token`` is the OAuth2 form (distribution's token-auth oauth.md):
``grant_type=refresh_token`` with ``refresh_token``, ``service``, ``client_id`` and a
space-separated ``scope``; a refresh token in ``refresh_tokens`` (token -> user)
gets ``{"access_token", "refresh_token", "expires_in", "scope"}``, another one 401, a
missing ``client_id`` or another grant type 400. Each POST is recorded in
``requests`` with ``"grant": "refresh_token"`` and the form's ``client_id``.
"""

from __future__ import annotations

import base64
import datetime
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """Runs in a daemon thread on 127.0.0.1; ``realm`` is its token URL."""

    def __init__(self, service: str, issuer: str, users: dict[str, str],
                 allow_anonymous: bool = False) -> None:
        self.service, self.issuer, self.users = service, issuer, users
        self.allow_anonymous = allow_anonymous
        self.refresh_tokens: dict[str, str] = {}
        self.requests: list[dict] = []
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ketch test token issuer")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (x509.CertificateBuilder()
                     .subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(hours=1))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self._server.server_address[1]
        self.realm = f"http://127.0.0.1:{self.port}/token"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def start(self) -> TokenServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def issue(self, subject: str, access: list[dict]) -> str:
        header = {"typ": "JWT", "alg": "ES256",
                  "x5c": [base64.b64encode(self.cert.public_bytes(
                      serialization.Encoding.DER)).decode()]}
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "iat": now,
                  "nbf": now - 30, "exp": now + 600, "jti": uuid.uuid4().hex, "access": access}
        signing_input = (_b64url(json.dumps(header).encode()) + "."
                         + _b64url(json.dumps(claims).encode()))
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(),
                                                  ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def _grant(self, user: str | None, scopes: list[str]) -> list[dict]:
        access = []
        for scope in scopes:
            for item in scope.split(" "):
                kind, _, rest = item.partition(":")
                name, _, actions = rest.rpartition(":")
                if not kind or not name:
                    continue
                wanted = [a for a in actions.split(",") if a]
                if user is None:
                    wanted = [a for a in wanted if a == "pull"]
                if wanted:
                    access.append({"type": kind, "name": name, "actions": wanted})
        return access

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _reply(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path != "/token":
                    self._reply(404, {"error": "not found"})
                    return
                query = parse_qs(url.query)
                auth = self.headers.get("Authorization", "")
                user = None
                if auth.startswith("Basic "):
                    raw = base64.b64decode(auth[6:]).decode()
                    name, _, password = raw.partition(":")
                    if server.users.get(name) != password:
                        server.requests.append({"user": name, "ok": False})
                        self._reply(401, {"details": "bad credentials"})
                        return
                    user = name
                elif not server.allow_anonymous:
                    server.requests.append({"user": None, "ok": False})
                    self._reply(401, {"details": "authentication required"})
                    return
                if query.get("service", [""])[0] != server.service:
                    self._reply(400, {"details": "unknown service"})
                    return
                scopes = query.get("scope", [])
                server.requests.append({"user": user, "ok": True, "scopes": scopes})
                token = server.issue(user or "", server._grant(user, scopes))
                self._reply(200, {"token": token, "access_token": token, "expires_in": 600})

            def do_POST(self) -> None:
                if urlsplit(self.path).path != "/token":
                    self._reply(404, {"error": "not found"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())

                def field(name: str) -> str:
                    return form.get(name, [""])[0]

                record = {"grant": field("grant_type"), "client_id": field("client_id"),
                          "service": field("service"), "scopes": field("scope").split(),
                          "user": server.refresh_tokens.get(field("refresh_token")),
                          "ok": False}
                server.requests.append(record)
                if field("grant_type") != "refresh_token" or not field("client_id"):
                    self._reply(400, {"error": "unsupported_grant_type"})
                    return
                if field("service") != server.service:
                    self._reply(400, {"error": "invalid_request"})
                    return
                user = record["user"]
                if user is None:
                    self._reply(401, {"error": "invalid_grant"})
                    return
                record["ok"] = True
                token = server.issue(user, server._grant(user, record["scopes"]))
                self._reply(200, {"access_token": token, "expires_in": 600,
                                  "refresh_token": field("refresh_token"),
                                  "scope": field("scope")})

        return Handler

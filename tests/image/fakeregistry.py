"""A fake distribution API (http.server) serving a layout's content with fault modes.

Serves ``/v2/``, ``/v2/<name>/manifests/<tag|digest>`` and ``/v2/<name>/blobs/<digest>``
from in-memory documents. Per-digest faults for blobs:

- ``corrupt``: same length, one byte flipped (digest mismatch)
- ``oversize``: extra bytes appended (size mismatch)
- ``truncate``: announces the full length, sends half, closes the connection
- ``stall``: sends half, sets ``stalled`` and waits until ``release`` is set
- ``truncate-once``: like ``truncate`` the first time, then the whole blob

``manifest_faults[ref] = "content-type"`` serves a manifest under the media type of
an index (and an index under that of a manifest); ``"corrupt"`` changes its bytes.
``unavailable[path] = n`` answers the next ``n`` GETs of ``path`` with ``503`` and
``Retry-After: <retry_after>`` (seconds, default 0). ``bearer_realm`` makes ``/v2/`` requests need a Bearer token
(any) and challenges with that realm.

Blob GETs honour ``Range: bytes=N-`` with ``206`` and ``Content-Range`` (each Range
header received is appended to ``ranges``) unless ``ignore_range`` is set (then
``200`` with the whole blob, as a server without range support answers).
``port`` picks the listening port (default: any free one).

``basic`` = ``(user, password)`` makes every ``/v2/`` request need HTTP Basic auth.
``tags/list`` pages by ``?n=``/``?last=`` with a relative ``Link`` header;
``tags_link_host`` makes that Link point at another host instead, ``tags_loop``
at the first page again.
``redirect_host`` makes blob GETs answer 307 to ``http://<redirect_host>/storage/<digest>``
(served here without auth; ``storage_auth`` records the Authorization header each got;
with ``storage_rejects_auth`` a request carrying one gets ``403``). ``foreign`` blobs
exist only under ``/storage/`` (a foreign layer's ``urls``), never as registry blobs.

Pushes: ``HEAD`` of blobs and manifests, ``POST /v2/<name>/blobs/uploads/`` (a new
session; ``?mount=`` is not supported and opens a session too), ``PATCH`` of a
session, ``PUT <session>?digest=`` (checks the sha256 before storing the blob) and
``PUT`` of manifests. ``upload_faults["POST"|"PATCH"|"PUT"]`` is a list of statuses the
next upload requests of that kind get instead (with ``Retry-After: <retry_after>``),
one popped per request; ``upload_log`` records ``(method, time.monotonic())`` of each
upload request (``POST``, ``PATCH`` and the blob ``PUT``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeRegistry:
    def __init__(self, port: int = 0) -> None:
        self.manifests: dict[str, tuple[bytes, str]] = {}  # ref -> (body, media type)
        self.blobs: dict[str, bytes] = {}
        self.faults: dict[str, str] = {}
        self.manifest_faults: dict[str, str] = {}
        self.basic: tuple[str, str] | None = None
        self.redirect_host: str | None = None
        self.tags_link_host: str | None = None
        self.tags_loop = False
        self.storage_rejects_auth = False
        self.foreign: dict[str, bytes] = {}  # served only under /storage/, not as blobs
        self.unavailable: dict[str, int] = {}
        self.retry_after = "0"
        self.bearer_realm: str | None = None
        self.storage_auth: list[str | None] = []
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.log: list[str] = []
        self.ranges: list[str] = []
        self.ignore_range = False
        self.upload_faults: dict[str, list[int]] = {}
        self.upload_log: list[tuple[str, float]] = []
        self.sessions: dict[str, bytearray] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> FakeRegistry:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def load_layout(self, layout: str, tag: str, as_tag: str | None = None) -> None:
        """Serve ``layout:tag`` (manifest or index, recursively) as tag ``as_tag``."""
        with open(os.path.join(layout, "index.json")) as f:
            index = json.load(f)
        desc = next(d for d in index["manifests"]
                    if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)

        def read(d: dict) -> bytes:
            with open(os.path.join(layout, "blobs", *d["digest"].split(":")), "rb") as f:
                return f.read()

        def add(d: dict) -> None:
            body = read(d)
            self.manifests[d["digest"]] = (body, d["mediaType"])
            doc = json.loads(body)
            for m in doc.get("manifests", []):
                add(m)
            for b in [doc["config"], *doc["layers"]] if "layers" in doc else []:
                self.blobs[b["digest"]] = read(b)

        add(desc)
        self.manifests[as_tag or tag] = self.manifests[desc["digest"]]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out in separate writes: without this, delayed ACKs
            # hold every response of a kept-alive connection for 40 ms
            disable_nagle_algorithm = True

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, code: int, body: bytes, ctype: str = "application/json",
                      headers: dict[str, str] | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _error(self, code: int, err: str) -> None:
                self._send(code, json.dumps({"errors": [{"code": err, "message": err.lower()}]})
                           .encode())

            def do_GET(self) -> None:
                fake.log.append(self.path)
                if self.path.startswith("/storage/"):
                    fake.storage_auth.append(self.headers.get("Authorization"))
                    if fake.storage_rejects_auth and self.headers.get("Authorization"):
                        self._error(403, "DENIED")
                        return
                    self._blob(self.path.rsplit("/", 1)[-1], redirect=False)
                    return
                if fake.unavailable.get(self.path, 0) > 0:
                    fake.unavailable[self.path] -= 1
                    self._send(503, b"busy", "text/plain",
                               headers={"Retry-After": fake.retry_after})
                    return
                if self._refused():
                    return
                parts = self.path.split("/")
                if "/tags/list" in self.path:
                    self._tags()
                elif self.path == "/v2/":
                    self._send(200, b"{}")
                elif len(parts) >= 5 and parts[-2] == "manifests":
                    item = fake.manifests.get(parts[-1])
                    if item is None:
                        self._error(404, "MANIFEST_UNKNOWN")
                        return
                    body, ctype = item
                    if fake.manifest_faults.get(parts[-1]) == "corrupt":
                        body = body.replace(b"{", b"{ ", 1)
                    if fake.manifest_faults.get(parts[-1]) == "content-type":
                        ctype = ("application/vnd.oci.image.manifest.v1+json" if "index" in ctype
                                 else "application/vnd.oci.image.index.v1+json")
                    self._send(200, body, ctype)
                elif len(parts) >= 5 and parts[-2] == "blobs":
                    self._blob(parts[-1])
                else:
                    self._error(404, "NAME_UNKNOWN")

            def _refused(self) -> bool:
                """Answer 401 (and return True) if the request lacks the auth asked for."""
                if fake.bearer_realm is not None and not (
                        self.headers.get("Authorization") or "").startswith("Bearer "):
                    challenge = f'Bearer realm="{fake.bearer_realm}",service="fake"'
                    self._send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                               headers={"WWW-Authenticate": challenge})
                    return True
                if fake.basic is not None:
                    want = "Basic " + base64.b64encode(":".join(fake.basic).encode()).decode()
                    if self.headers.get("Authorization") != want:
                        self._send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                                   headers={"WWW-Authenticate": 'Basic realm="fake registry"'})
                        return True
                return False

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _upload_fault(self, method: str) -> bool:
                fake.upload_log.append((method, time.monotonic()))
                pending = fake.upload_faults.get(method)
                if not pending:
                    return False
                status = pending.pop(0)
                self._send(status, json.dumps({"errors": [
                    {"code": "UNAVAILABLE", "message": f"injected {status}"}]}).encode(),
                    headers={"Retry-After": fake.retry_after})
                return True

            def do_HEAD(self) -> None:
                fake.log.append("HEAD " + self.path)
                if self._refused():
                    return
                parts = self.path.split("/")
                found = None
                if len(parts) >= 5 and parts[-2] == "blobs":
                    found = fake.blobs.get(parts[-1])
                elif len(parts) >= 5 and parts[-2] == "manifests":
                    item = fake.manifests.get(parts[-1])
                    found = item[0] if item else None
                self.send_response(200 if found is not None else 404)
                self.send_header("Content-Length", str(len(found or b"")))
                self.end_headers()

            def do_POST(self) -> None:
                self._body()
                fake.log.append("POST " + self.path)
                if self._refused() or self._upload_fault("POST"):
                    return
                path = self.path.split("?")[0]
                if not path.endswith("/blobs/uploads/"):
                    self._error(404, "NAME_UNKNOWN")
                    return
                session = uuid.uuid4().hex
                fake.sessions[session] = bytearray()
                self._send(202, b"", headers={"Location": path + session, "Range": "0-0"})

            def do_PATCH(self) -> None:
                data = self._body()
                fake.log.append("PATCH " + self.path)
                if self._refused() or self._upload_fault("PATCH"):
                    return
                session = fake.sessions.get(self.path.split("?")[0].rsplit("/", 1)[-1])
                if session is None:
                    self._error(404, "BLOB_UPLOAD_UNKNOWN")
                    return
                session += data
                self._send(202, b"", headers={"Location": self.path.split("?")[0],
                                              "Range": f"0-{max(len(session) - 1, 0)}"})

            def do_PUT(self) -> None:
                from urllib.parse import parse_qs, urlsplit
                data = self._body()
                fake.log.append("PUT " + self.path)
                if self._refused():
                    return
                url = urlsplit(self.path)
                parts = url.path.split("/")
                if len(parts) >= 5 and parts[-2] == "manifests":
                    ctype = self.headers.get("Content-Type") or ""
                    digest = "sha256:" + hashlib.sha256(data).hexdigest()
                    fake.manifests[parts[-1]] = fake.manifests[digest] = (data, ctype)
                    self._send(201, b"", headers={"Docker-Content-Digest": digest})
                    return
                if self._upload_fault("PUT"):
                    return
                session = fake.sessions.get(parts[-1])
                digest = (parse_qs(url.query).get("digest") or [""])[0]
                if session is None:
                    self._error(404, "BLOB_UPLOAD_UNKNOWN")
                    return
                session += data
                if digest != "sha256:" + hashlib.sha256(session).hexdigest():
                    self._error(400, "DIGEST_INVALID")
                    return
                del fake.sessions[parts[-1]]
                fake.blobs[digest] = bytes(session)
                self._send(201, b"", headers={"Location": f"/v2/x/blobs/{digest}",
                                              "Docker-Content-Digest": digest})

            def _tags(self) -> None:
                from urllib.parse import parse_qs, urlencode, urlsplit
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                tags = sorted(t for t in fake.manifests if ":" not in t)
                if "last" in query:
                    tags = [t for t in tags if t > query["last"][0]]
                headers = {}
                if "n" in query:
                    n = int(query["n"][0])
                    if len(tags) > n:
                        tags = tags[:n]
                        nxt = f"{url.path}?{urlencode({'n': n, 'last': tags[-1]})}"
                        if fake.tags_loop:
                            nxt = f"{url.path}?{urlencode({'n': n})}"
                        if fake.tags_link_host:
                            nxt = f"http://{fake.tags_link_host}{nxt}"
                        headers["Link"] = f'<{nxt}>; rel="next"'
                name = url.path[len("/v2/"):-len("/tags/list")]
                self._send(200, json.dumps({"name": name, "tags": tags}).encode(),
                           headers=headers)

            def _blob(self, digest: str, redirect: bool = True) -> None:
                data = fake.blobs.get(digest)
                if data is None and not redirect:
                    data = fake.foreign.get(digest)
                if data is None:
                    self._error(404, "BLOB_UNKNOWN")
                    return
                if redirect and fake.redirect_host:
                    self._send(307, b"", headers={
                        "Location": f"http://{fake.redirect_host}/storage/{digest}"})
                    return
                fault = fake.faults.get(digest)
                if fault == "corrupt":
                    data = data[:-1] + bytes([data[-1] ^ 0xFF])
                elif fault == "oversize":
                    data = data + b"trailing garbage"
                if fault == "truncate-once":
                    del fake.faults[digest]
                if fault in ("truncate", "stall", "truncate-once"):
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    if fault == "stall":
                        fake.stalled.set()
                        fake.release.wait(60)
                    self.close_connection = True
                    return
                wanted = self.headers.get("Range")
                if wanted:
                    fake.ranges.append(wanted)
                if wanted and not fake.ignore_range and wanted.startswith("bytes=") and \
                        wanted.endswith("-") and wanted[6:-1].isdigit() and \
                        int(wanted[6:-1]) < len(data):
                    start = int(wanted[6:-1])
                    self._send(206, data[start:], "application/octet-stream", headers={
                        "Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"})
                    return
                self._send(200, data, "application/octet-stream")

        return Handler

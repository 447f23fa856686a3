"""Bad paths give one clear line naming the path and the problem (no ``[Errno N]``),
and lose nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .fakeregistry import FakeRegistry
from .helpers import run_ki


def one_line(*args: str) -> str:
    p = run_ki(*args, check=False)
    assert p.returncode == 1, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ketch-image: error: "), p.stderr
    assert "Errno" not in lines[0], lines[0]
    return lines[0][len("ketch-image: error: "):]


@pytest.fixture
def afile(tmp_path: Path) -> Path:
    f = tmp_path / "afile"
    f.write_text("not a layout\n")
    return f


def test_validate_a_file(afile: Path) -> None:
    assert one_line("validate", str(afile)) == \
        f"{afile}: not an OCI image layout (not a directory)"


def test_pull_into_a_file(fake_registry: FakeRegistry, busybox_layout: str,
                          afile: Path) -> None:
    fake_registry.load_layout(busybox_layout, "one")
    msg = one_line("pull", f"{fake_registry.host}/app:one", f"{afile}:v1")
    assert msg == f"{afile}: exists and is not a directory (a layout is a directory)"
    msg = one_line("pull", f"{fake_registry.host}/app:one", f"{afile}/sub:v1")
    assert msg.startswith(f"{afile}/sub: cannot create the layout directory")
    assert afile.read_text() == "not a layout\n"


def test_copy_into_an_archive_in_a_missing_directory(busybox_layout: str,
                                                     tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent-dir"
    msg = one_line("copy", f"oci:{busybox_layout}:one", f"oci-archive:{missing}/a.tar:x")
    assert msg == f"{missing}/a.tar: directory {missing} does not exist"
    assert not missing.exists()


def test_import_into_a_file(busybox_layout: str, afile: Path, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    msg = one_line("import", str(rootfs), f"{afile}:v1")
    assert msg == f"{afile}: exists and is not a directory (a layout is a directory)"
    shutil.rmtree(rootfs)


def test_os_errors_are_path_then_problem() -> None:
    import errno

    from ketch.image.cli import _os_error_text

    e = FileNotFoundError(errno.ENOENT, "No such file or directory", "/x/y")
    assert _os_error_text(e) == "/x/y: no such file or directory"
    assert _os_error_text(OSError("plain")) == "plain"


def test_missing_layout_directory_says_so(tmp_path) -> None:
    from ketch.image.errors import LayoutError
    from ketch.image.layout import Layout

    with pytest.raises(LayoutError, match=r"not an OCI image layout \(no such directory\)"):
        Layout.open(str(tmp_path / "absent"))
    with pytest.raises(LayoutError, match=r"\(no oci-layout file\)"):
        Layout.open(str(tmp_path))


def test_registry_error_body_every_entry_on_one_line() -> None:
    """Every entry of a distribution-spec error body is shown (the first only hid the
    rest), whitespace folded so the message stays one line; no body: the status."""
    from types import SimpleNamespace

    from ketch.image.registry.client import _error_text

    def response(body: object, status: int = 400, reason: str = "Bad Request"):
        def as_json() -> object:
            if isinstance(body, Exception):
                raise body
            return body
        return SimpleNamespace(json=as_json, status_code=status, reason=reason)

    two = {"errors": [{"code": "MANIFEST_INVALID", "message": "manifest invalid"},
                      {"code": "BLOB_UNKNOWN", "message": "blob\nunknown to registry"}]}
    assert _error_text(response(two)) == \
        "MANIFEST_INVALID: manifest invalid; BLOB_UNKNOWN: blob unknown to registry"
    assert _error_text(response({"errors": []})) == "HTTP 400 Bad Request"
    assert _error_text(response(ValueError("not json"), 502, "Bad Gateway")) == \
        "HTTP 502 Bad Gateway"
    assert _error_text(response({"errors": ["odd"]})) == "HTTP 400 Bad Request"
    long = {"errors": [{"code": "DENIED", "message": "x" * 1000}]}
    assert len(_error_text(response(long))) == 400


def test_tls_to_a_plain_http_server_says_so() -> None:
    """A TLS client reading a plain-HTTP answer got "[SSL: WRONG_VERSION_NUMBER] wrong
    version number (_ssl.c:992)"; now it says what happened and what to do."""
    import http.server
    import threading

    import requests

    from ketch.image.registry.client import short_error

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(requests.exceptions.SSLError) as info:
            requests.get(f"https://127.0.0.1:{server.server_port}/v2/", timeout=10)
    finally:
        server.shutdown()
        server.server_close()
    assert short_error(info.value) == ("the server answered TLS with plain HTTP (a plain-HTTP "
                                       "registry: --tls-verify=false)")


def test_a_body_cut_short_is_one_plain_line() -> None:
    """Retry lines showed urllib3's nested tuple repr of IncompleteRead."""
    import urllib3

    from ketch.image.registry.client import short_error

    cut = urllib3.exceptions.ProtocolError(
        "Connection broken: IncompleteRead(1193 bytes read, 807 more expected)",
        urllib3.exceptions.IncompleteRead(1193, 807))
    assert short_error(cut) == "connection closed after 1193 bytes of the body, 807 more expected"

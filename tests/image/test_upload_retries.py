"""Blob uploads answered with 429/5xx (distribution-spec "Pushing blobs"): the upload
is restarted from byte 0 in a new session (``POST``), after the same backoff as other
retries and at least the ``Retry-After`` the registry asked for; after the last
attempt, one line naming the blob and the last answer."""

from __future__ import annotations

from pathlib import Path

from .fakeregistry import FakeRegistry
from .helpers import run_ki
from .test_faults import _layer_digests, _source, assert_valid, one_line_error


def _push(fake: FakeRegistry, src: str, *extra: str, check: bool = True):
    return run_ki("push", *extra, f"{src}:v2", f"{fake.host}/up/app:v2", check=check)


def _pulled_back(fake: FakeRegistry, tmp_path: Path) -> None:
    back = tmp_path / "back"
    run_ki("pull", f"{fake.host}/up/app:v2", str(back))
    assert_valid(back)


def test_upload_post_503_then_success_waits_retry_after(fake_registry: FakeRegistry,
                                                        tmp_path: Path) -> None:
    src, _, v2 = _source(tmp_path)
    fake_registry.retry_after = "1"  # longer than the first backoff pause (0.5 s)
    fake_registry.upload_faults["POST"] = [503]
    p = _push(fake_registry, src, "--jobs", "1")
    assert p.stdout.strip() == v2["digest"]
    assert "Retrying upload of blob" in p.stderr and "HTTP 503" in p.stderr, p.stderr
    posts = [t for m, t in fake_registry.upload_log if m == "POST"]
    assert posts[1] - posts[0] >= 1.0, "Retry-After not honoured"
    assert not fake_registry.sessions  # every session that was opened was completed
    assert_valid(Path(src))
    _pulled_back(fake_registry, tmp_path)


def test_upload_patch_500_then_success_restarts_from_byte_0(fake_registry: FakeRegistry,
                                                            tmp_path: Path) -> None:
    src, _, v2 = _source(tmp_path)
    big = _layer_digests(src, "v2")[1]
    fake_registry.upload_faults["PATCH"] = [500]
    p = _push(fake_registry, src, "--jobs", "1", "--chunk-size", str(1 << 20))
    assert p.stdout.strip() == v2["digest"]
    assert f"Retrying upload of blob {big}" in p.stderr, p.stderr
    methods = [m for m, _ in fake_registry.upload_log]
    # the > 3 MiB layer: POST, PATCH (500), then a new session sending every chunk
    first = methods.index("PATCH")
    assert methods[first + 1] == "POST", methods
    size = len(fake_registry.blobs[big])
    assert methods.count("PATCH") == 1 + -(-size // (1 << 20)), methods
    assert fake_registry.blobs[big] == (Path(src) / "blobs" / "sha256" /
                                        big.split(":")[1]).read_bytes()
    assert_valid(Path(src))
    _pulled_back(fake_registry, tmp_path)


def test_upload_final_put_503_then_success(fake_registry: FakeRegistry,
                                           tmp_path: Path) -> None:
    src, _, v2 = _source(tmp_path)
    fake_registry.upload_faults["PUT"] = [503, 429]
    p = _push(fake_registry, src, "--jobs", "1")
    assert p.stdout.strip() == v2["digest"]
    assert p.stderr.count("Retrying upload of blob") == 2, p.stderr
    assert_valid(Path(src))
    _pulled_back(fake_registry, tmp_path)


def test_upload_always_503_is_one_line_error(fake_registry: FakeRegistry,
                                             tmp_path: Path) -> None:
    src, _, _ = _source(tmp_path)
    fake_registry.upload_faults["PUT"] = [503] * 100
    p = _push(fake_registry, src, "--jobs", "1", check=False)
    line = one_line_error(p)
    assert "upload of blob sha256:" in line and "failed after 4 attempts" in line, line
    assert "HTTP 503" in line, line
    puts = [m for m, _ in fake_registry.upload_log if m == "PUT"]
    assert len(puts) == 4  # bounded: the first blob's attempts, then the push stops
    assert "v2" not in fake_registry.manifests
    assert_valid(Path(src))


def test_retry_after_forms() -> None:
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    from ketch.image.registry.client import MAX_RETRY_AFTER, retry_after_seconds

    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) == 0.0
    assert retry_after_seconds("soon") == 0.0
    assert retry_after_seconds("86400") == MAX_RETRY_AFTER
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    assert 15.0 < retry_after_seconds(later) <= 20.0
    earlier = format_datetime(datetime.now(UTC) - timedelta(seconds=20), usegmt=True)
    assert retry_after_seconds(earlier) == 0.0


def test_mount_answered_503_falls_back_to_an_upload(fake_registry: FakeRegistry,
                                                    tmp_path: Path) -> None:
    src, _, v2 = _source(tmp_path)
    fake_registry.upload_faults["POST"] = [503]  # the first POST is the mount attempt
    p = _push(fake_registry, src, "--jobs", "1", "--mount-from", "up/other")
    assert p.stdout.strip() == v2["digest"]
    assert "Not mounting blob sha256:" in p.stderr and "HTTP 503" in p.stderr, p.stderr
    assert "mount=" in next(line for line in fake_registry.log if line.startswith("POST "))
    _pulled_back(fake_registry, tmp_path)

"""The order blobs are copied in (ketch.image.transfer._copy_blobs): the largest first,
the others once its bytes move, each digest once."""

from __future__ import annotations

import threading
import time

import pytest

from ketch.image import transfer
from ketch.image.errors import RegistryError
from ketch.image.transfer import CopyOptions, _copy_blobs


def _desc(name: str, size: int) -> dict:
    return {"mediaType": "application/octet-stream", "digest": f"sha256:{name * 64}",
            "size": size}


class _Recorder:
    """A destination logging ``(event, digest letter)``; the blob named ``slow`` takes
    ``before`` s, reports its first bytes (if ``report``), then takes ``after`` s more."""

    def __init__(self, slow: str, before: float, after: float, report: bool = True,
                 fail: bool = False) -> None:
        self.slow, self.before, self.after = slow, before, after
        self.report, self.fail = report, fail
        self.log: list[tuple[str, str]] = []
        self.sources: dict[str, object] = {}
        self.lock = threading.Lock()

    def _note(self, event: str, desc: dict) -> None:
        with self.lock:
            self.log.append((event, desc["digest"][7]))

    def put_blob(self, desc: dict, src: object, progress: object) -> None:
        self._note("start", desc)
        self.sources[desc["digest"][7]] = src
        if desc["digest"][7] == self.slow:
            time.sleep(self.before)
            if self.fail:
                raise RegistryError("refused")
            if self.report:
                self._note("bytes", desc)
                transfer._report_bytes(progress, desc["digest"], 1, desc["size"])  # type: ignore[arg-type]
            time.sleep(self.after)
        self._note("done", desc)


def test_the_others_start_once_the_largest_blobs_bytes_move(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer, "_HEAD_START", 10.0)
    dst = _Recorder("c", before=0.2, after=0.2)
    blobs = [(_desc("a", 10), "src-a"), (_desc("b", 500), "src-b"), (_desc("c", 9000), "src-c")]
    _copy_blobs(dst, blobs, CopyOptions(jobs=4))  # type: ignore[arg-type]
    log = dst.log
    assert log[:2] == [("start", "c"), ("bytes", "c")]
    # the others ran while the largest one was sending
    assert log[-1] == ("done", "c")
    assert sorted(log[2:-1]) == [("done", "a"), ("done", "b"), ("start", "a"), ("start", "b")]


def test_the_others_do_not_wait_long_for_bytes_never_reported(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer, "_HEAD_START", 0.05)
    dst = _Recorder("c", before=0.0, after=1.0, report=False)
    t0 = time.monotonic()
    _copy_blobs(dst, [(_desc("a", 1), "src-a"), (_desc("c", 99), "src-c")],
                CopyOptions(jobs=4))  # type: ignore[arg-type]
    assert dst.log[0] == ("start", "c")
    assert dst.log.index(("done", "a")) < dst.log.index(("done", "c"))
    assert time.monotonic() - t0 < 1.5


def test_a_failure_before_the_first_bytes_is_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer, "_HEAD_START", 10.0)
    dst = _Recorder("c", before=0.05, after=0.0, fail=True)
    with pytest.raises(RegistryError, match="refused"):
        _copy_blobs(dst, [(_desc("a", 1), "src-a"), (_desc("c", 99), "src-c")],
                    CopyOptions(jobs=4))  # type: ignore[arg-type]


@pytest.mark.parametrize("jobs", [1, 4])
def test_a_digest_listed_twice_is_copied_once_from_its_first_source(jobs: int) -> None:
    dst = _Recorder("none", before=0.0, after=0.0)
    blobs = [(_desc("a", 5), "config-bytes"), (_desc("b", 50), "layout"),
             (_desc("a", 5), "layout")]
    _copy_blobs(dst, blobs, CopyOptions(jobs=jobs))  # type: ignore[arg-type]
    assert sorted(e for e in dst.log if e[0] == "start") == [("start", "a"), ("start", "b")]
    assert dst.sources == {"a": "config-bytes", "b": "layout"}

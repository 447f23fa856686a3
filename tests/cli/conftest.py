"""Fixtures: a fake library behind the CLI, log state reset, an in-process ``ketch``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from ketch.runtime.cli import backend, log, main

from .fake import FakeBackend

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = sys.executable
RUNC = shutil.which("runc") or ("/usr/sbin/runc" if os.path.exists("/usr/sbin/runc") else None)


@pytest.fixture(autouse=True)
def _clean_cli_state() -> Iterator[None]:
    yield
    backend.use(None)
    log.reset()


@pytest.fixture
def fake() -> FakeBackend:
    f = FakeBackend()
    backend.use(f)
    return f


class Result:
    def __init__(self, rc: int, out: str, err: str) -> None:
        self.rc, self.out, self.err = rc, out, err

    def __repr__(self) -> str:
        return f"Result(rc={self.rc}, out={self.out!r}, err={self.err!r})"


@pytest.fixture
def ketch(capsys: pytest.CaptureFixture[str]):
    """Run ``ketch ARGS...`` in this process; returns rc, stdout, stderr."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        try:
            rc = main(["ketch", *args])
        finally:
            log.reset()
        cap = capsys.readouterr()
        return Result(rc, cap.out, cap.err)

    return run


def run_subprocess(args: list[str], *, fake_backend: bool = True, cwd: str | None = None,
                   env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``ketch ARGS`` in a fresh interpreter (argv[0] "ketch"), with the fake library."""
    code = ("import sys\n"
            + (f"sys.path.insert(0, {HERE!r})\nimport fake\nfake.install()\n" if fake_backend else "")
            + "from ketch.runtime.cli import main\n"
            + f"sys.exit(main(['ketch', *{args!r}]))\n")
    return subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=60)

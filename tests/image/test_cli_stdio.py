"""ketch-image with odd standard streams: closed (``>&-``), or a reader that goes
away mid-command (``2>&1 | head -1``), and SIGTERM mid-unpack. skopeo and umoci
run to completion in the first two cases; so must we, and lose nothing."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .fakeregistry import FakeRegistry
from .helpers import D, F, LayoutBuilder, ketch_image_cmd, run_ki


def _sh(cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("redirect", [">&-", "2>&-", "<&- >&- 2>&-"])
def test_closed_stdio_does_not_fail_commands(busybox_layout: str, tmp_path: Path,
                                             redirect: str) -> None:
    """``ls``/``tag``/``unpack`` with stdout and/or stderr closed: the work is done, no
    traceback (they ended in an AttributeError on ``sys.stdout is None``). Output that
    cannot be written to a closed stdout is an error, as skopeo's (``write
    /dev/stdout: bad file descriptor``, exit 1): a caller capturing a digest must not
    see success without it; unpack, which prints nothing, succeeds."""
    layout = tmp_path / "l"
    shutil.copytree(busybox_layout, layout)
    ki = " ".join(ketch_image_cmd())
    stdout_closed = ">&-" in redirect.replace("2>&-", "")
    for cmd, prints in ((f"{ki} ls {layout}", True), (f"{ki} tag {layout}:one two", True),
                        (f"{ki} unpack {layout}:two {tmp_path}/bundle", False)):
        p = _sh(f"{cmd} {redirect}")
        assert "Traceback" not in p.stderr
        if prints and stdout_closed:
            assert p.returncode == 1, (cmd, p)
            if "2>&-" not in redirect:
                assert p.stderr == "ketch-image: error: write /dev/stdout: bad file " \
                    "descriptor\n", p.stderr
        else:
            assert p.returncode == 0, (cmd, p)
    assert "two" in run_ki("ls", str(layout)).stdout.split()
    assert (tmp_path / "bundle/rootfs/bin/busybox").exists()
    run_ki("validate", str(layout))


def test_push_survives_a_stderr_reader_going_away(busybox_layout: str,
                                                  fake_registry: FakeRegistry) -> None:
    """A closed pipe on stderr (``2>&1 | head -1``) costs messages, not the push."""
    p = subprocess.Popen([*ketch_image_cmd(), "push", "-v", f"{busybox_layout}:one",
                          f"{fake_registry.host}/stdio/gone:v1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert p.stderr is not None
    p.stderr.close()  # the reader is gone before the first line
    assert p.wait(timeout=60) == 0
    assert run_ki("inspect", f"docker://{fake_registry.host}/stdio/gone:v1",
                  check=False).returncode == 0


def test_sigterm_mid_unpack_removes_the_bundle(tmp_path: Path) -> None:
    """SIGTERM unwinds like Ctrl-C: exit 143 and no half-written bundle (a rerun was
    refused with "exists and is not empty")."""
    b = LayoutBuilder(str(tmp_path / "layout"))
    entries = [D("d")] + [F(f"d/f{i:05d}", os.urandom(64)) for i in range(6000)]
    b.tag("big", b.image([entries]))
    bundle = tmp_path / "bundle"
    for _ in range(5):
        p = subprocess.Popen([*ketch_image_cmd(), "unpack", f"{tmp_path}/layout:big", str(bundle)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while not (bundle / "rootfs" / "d").exists() and time.monotonic() < deadline:
            time.sleep(0.002)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
        if p.returncode == 143:
            assert not bundle.exists(), os.listdir(bundle)
            assert err.strip() == "ketch-image: terminated", err
            return
        assert p.returncode == 0, err  # it had finished: try again
        shutil.rmtree(bundle)
    pytest.fail("the unpack always finished before SIGTERM arrived")


def test_login_with_stdin_closed_is_one_line() -> None:
    """``login --password-stdin`` with stdin closed or empty: one line, exit 1 (it was
    a traceback on ``sys.stdin is None``)."""
    ki = " ".join(ketch_image_cmd())
    for redirect in ("<&-", "</dev/null"):
        p = _sh(f"{ki} login -u a --password-stdin localhost:1 {redirect}")
        assert p.returncode == 1, p
        assert p.stderr == "ketch-image: error: --password-stdin: no password on standard input\n"

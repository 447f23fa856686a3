"""Ctrl-C and SIGTERM in the middle of a parallel pull or push end the command at
once, as with skopeo: queued blobs are not started and running ones stop at their
next piece (the command used to carry on until every blob was transferred). The
link is slowed by a proxy so that the transfer is under way when the signal comes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import Registry, free_port
from .helpers import F, LayoutBuilder, ketch_image_cmd, run_ki
from .tcpproxy import TcpProxy

LAYERS, LAYER_SIZE = 4, 6 << 20
RATE = 2_000_000  # bytes per second and connection: the whole image takes ~6 s with -j2


@pytest.fixture(scope="module")
def four_layers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("interrupt") / "layout"
    b = LayoutBuilder(str(path))
    # random bytes: gzip cannot shrink them, so each layer blob is ~6 MiB
    b.tag("v1", b.image([[F(f"blob{i}", os.urandom(LAYER_SIZE))] for i in range(LAYERS)]))
    return path


def _interrupt(argv: list[str], proxy: TcpProxy, signum: int) -> tuple[int, float, str]:
    """Run ``argv``, send ``signum`` once blob transfers are under way; return the exit
    status, the seconds from signal to exit and stderr."""
    p = subprocess.Popen([*ketch_image_cmd(), *argv], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while proxy.connections < 2 and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.01)
        time.sleep(0.5)  # both workers are moving bytes
        assert p.poll() is None, p.communicate()[1]
        sent = time.monotonic()
        p.send_signal(signum)
        _, err = p.communicate(timeout=60)
        return p.returncode, time.monotonic() - sent, err
    finally:
        if p.poll() is None:
            p.kill()


@pytest.mark.parametrize("signum,status,word", [(signal.SIGINT, 130, "aborted"),
                                               (signal.SIGTERM, 143, "terminated")])
def test_signal_stops_a_parallel_push(registry: Registry, four_layers: Path, signum: int,
                                      status: int, word: str) -> None:
    proxy = TcpProxy(int(registry.host.rsplit(":", 1)[1]), free_port(), rate=RATE).start()
    try:
        code, seconds, err = _interrupt(
            ["push", "-j2", f"{four_layers}:v1", f"{proxy.host}/interrupt/push-{status}:v1"],
            proxy, signum)
    finally:
        proxy.stop()
    assert code == status and err.strip().endswith(f"ketch-image: {word}"), err
    assert seconds < 3, f"{seconds:.1f} s from the signal to the exit"
    # nothing was tagged: the manifest goes last
    p = run_ki("inspect", f"docker://{registry.host}/interrupt/push-{status}:v1", check=False)
    assert p.returncode == 1


@pytest.mark.parametrize("signum,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_a_parallel_pull_and_a_rerun_completes(
        registry: Registry, four_layers: Path, tmp_path: Path, signum: int, status: int) -> None:
    ref = f"interrupt/pull-{status}:v1"
    run_ki("push", f"{four_layers}:v1", f"{registry.host}/{ref}")
    proxy = TcpProxy(int(registry.host.rsplit(":", 1)[1]), free_port(), rate=RATE).start()
    layout = tmp_path / "pulled"
    try:
        code, seconds, err = _interrupt(["pull", "-j2", f"{proxy.host}/{ref}", str(layout)],
                                        proxy, signum)
    finally:
        proxy.stop()
    assert code == status, err
    assert seconds < 3, f"{seconds:.1f} s from the signal to the exit"
    if layout.exists():  # a pull that stored no blob yet leaves no layout
        layer_blobs = [f for f in (layout / "blobs" / "sha256").iterdir()
                       if f.stat().st_size >= LAYER_SIZE]
        assert len(layer_blobs) < LAYERS, "the pull went on to the end"
        tmp = layout / ".ketch-tmp"
        assert not tmp.exists() or not os.listdir(tmp), os.listdir(tmp)  # no partial files
        run_ki("validate", str(layout))
    run_ki("pull", f"{registry.host}/{ref}", str(layout))
    run_ki("validate", "--verify-layers", str(layout))


@pytest.mark.parametrize("command", ["pull", "push"])
def test_signal_ends_at_once_on_a_crawling_link(registry: Registry, four_layers: Path,
                                               tmp_path: Path, command: str) -> None:
    """At 50 kB/s a worker is stuck for ~20 s inside one 1 MiB piece (or waiting for a
    registry to drain the socket buffer): it is abandoned, not joined (the exit took
    10-25 s), and its partial file is removed; a new layout that got no blob is gone."""
    ref = f"interrupt/crawl-{command}:v1"
    if command == "pull":
        run_ki("push", f"{four_layers}:v1", f"{registry.host}/{ref}")
    proxy = TcpProxy(int(registry.host.rsplit(":", 1)[1]), free_port(), rate=50_000).start()
    layout = tmp_path / "pulled"
    argv = (["pull", "-j4", f"{proxy.host}/{ref}", str(layout)] if command == "pull" else
            ["push", "-j4", f"{four_layers}:v1", f"{proxy.host}/{ref}"])
    try:
        code, seconds, err = _interrupt(argv, proxy, signal.SIGTERM)
    finally:
        proxy.stop()
    assert code == 143 and seconds < 4, (code, f"{seconds:.1f} s", err)
    assert "Traceback" not in err, err
    assert not layout.exists() or not (layout / ".ketch-tmp").exists()
    leftovers = [p for p in four_layers.rglob("*") if ".ketch-tmp" in p.parts]
    assert not leftovers, leftovers


def test_a_second_sigterm_still_cleans_up(registry: Registry, four_layers: Path,
                                          tmp_path: Path) -> None:
    """A second SIGTERM killed the process outright (SIG_DFL), leaving partial blob files
    and an empty new layout; now it unwinds again, as a second Ctrl-C does."""
    ref = "interrupt/twice:v1"
    run_ki("push", f"{four_layers}:v1", f"{registry.host}/{ref}")
    proxy = TcpProxy(int(registry.host.rsplit(":", 1)[1]), free_port(), rate=50_000).start()
    layout = tmp_path / "pulled"
    p = subprocess.Popen([*ketch_image_cmd(), "pull", "-j4", f"{proxy.host}/{ref}",
                          str(layout)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    try:
        deadline = time.monotonic() + 20
        while proxy.connections < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)
        p.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
    finally:
        proxy.stop()
        if p.poll() is None:
            p.kill()
    assert p.returncode == 143 and "ketch-image: terminated" in err and "Traceback" not in err
    assert not layout.exists() or not list(layout.rglob("blob-*")), list(layout.rglob("*"))

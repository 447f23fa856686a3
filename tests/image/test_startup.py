"""Start-up of a ``ketch-image`` process (ketch.image.startup): the objects loaded
before the command's work are frozen out of the cyclic collector's reach, the
command then runs with the collector on, and a process that only imports the
package keeps its collector untouched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import Registry

# Runs the console entry point with argv; at exit (ketch-image ends with os._exit,
# which still runs the atexit handlers) prints the collector's state and whether
# requests was loaded.
_REPORT = "\n".join([
    "import atexit, gc, sys",
    "from ketch.image import startup",
    "def report():",
    "    print('gc', gc.isenabled(), gc.get_freeze_count() > 0, 'requests' in sys.modules,",
    "          file=sys.stderr)",
    "atexit.register(report)",
    "sys.argv = ['ketch-image', *sys.argv[1:]]",
    "startup.main()",
])


def _report(*argv: str) -> str:
    proc = subprocess.run([sys.executable, "-c", _REPORT, *argv], capture_output=True,
                          text=True, check=True)
    return proc.stderr.strip().splitlines()[-1]


def test_a_local_command_runs_with_the_collector_on_and_start_up_frozen(
        busybox_layout: str) -> None:
    assert _report("ls", busybox_layout) == "gc True True False"


def test_help_and_version_leave_the_collector_on() -> None:
    assert _report("--version") == "gc True True False"
    assert _report("push", "--help") == "gc True True False"


def test_push_loads_the_http_stack_in_start_up(busybox_layout: str, registry: Registry) -> None:
    assert _report("push", "-q", f"{busybox_layout}:one",
                   f"{registry.host}/startup/busybox:1") == "gc True True True"


def test_importing_the_package_freezes_nothing(tmp_path: Path) -> None:
    code = "\n".join([
        "import gc, sys",
        "import ketch.image.cli, ketch.image.startup as s",
        "s.load_http_stack()",  # not run by main(): left to the registry client
        "assert gc.isenabled() and gc.get_freeze_count() == 0",
        "assert 'requests' not in sys.modules",
    ])
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)

"""Import hygiene: the hot path stays lean and the image side uses only the runtime's
default spec and its in-root path resolver (design: the runtime never imports the image
side; the image side imports ``ketch.runtime.spec.default`` and, so that one resolver serves
the unpacker and the runtime, ``ketch.runtime.linux.paths``)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

IMAGE_SRC = Path(__file__).resolve().parents[2] / "image"


def test_requests_is_only_loaded_by_pull() -> None:
    code = ("import sys, ketch.image.cli, ketch.image.unpack, ketch.image.importer, "
            "ketch.image.image, ketch.image.registry\n"
            "assert 'requests' not in sys.modules, 'requests imported eagerly'\n"
            "import ketch.image.pull\n"
            "assert 'requests' not in sys.modules, 'pull imports requests at module level'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_local_commands_do_not_load_requests() -> None:
    # layout-only modules (and the registry modules themselves, until a client is made)
    code = "\n".join([
        "import sys",
        "import ketch.image.push, ketch.image.copy, ketch.image.transfer, ketch.image.gc",
        "import ketch.image.tags, ketch.image.validate, ketch.image.transports",
        "import ketch.image.login, ketch.image.inspect_remote, ketch.image.progress",
        "import ketch.image.registry.client, ketch.image.registry.credentials",
        "assert 'requests' not in sys.modules, 'requests imported at module level'",
        "assert 'jsonschema' not in sys.modules, 'jsonschema imported at module level'",
    ])
    subprocess.run([sys.executable, "-c", code], check=True)


def test_only_the_default_spec_is_imported_from_the_runtime() -> None:
    pattern = re.compile(r"^\s*(?:from|import)\s+(ketch\.runtime[\w.]*)", re.M)
    used = {m for f in IMAGE_SRC.rglob("*.py") for m in pattern.findall(f.read_text())}
    # (stdio: the closed-fd guard both CLIs run first, a module with no imports of ours)
    assert used == {"ketch.runtime.spec.default", "ketch.runtime.linux.paths",
                    "ketch.runtime.stdio"}


def test_the_runtime_never_imports_the_image_side() -> None:
    runtime_src = IMAGE_SRC.parent / "runtime"
    pattern = re.compile(r"^\s*(?:from|import)\s+(ketch\.image[\w.]*)", re.M)
    used = {m for f in runtime_src.rglob("*.py") for m in pattern.findall(f.read_text())}
    assert used == set()


def test_the_cli_loads_only_the_module_of_the_command_it_runs() -> None:
    code = "\n".join([
        "import contextlib, io, sys",
        "from ketch.image import cli",
        "loaded = lambda: sorted(m for m in sys.modules if m.startswith('ketch.image.cli_'))",
        "assert loaded() == ['ketch.image.cli_common'], loaded()",
        "with contextlib.redirect_stdout(io.StringIO()):",
        "    cli.cli.main(['push', '--help'], standalone_mode=False)",
        "assert loaded() == ['ketch.image.cli_common', 'ketch.image.cli_transfer'], loaded()",
        "out = io.StringIO()",
        "with contextlib.redirect_stdout(out):",
        "    cli.cli.main(['--help'], standalone_mode=False)",
        "listed = [line.split()[0] for line in out.getvalue().split('Commands:')[1].splitlines()",
        "          if line.strip()]",
        "assert listed == sorted(cli.COMMANDS), listed",
    ])
    subprocess.run([sys.executable, "-c", code], check=True)


def test_importing_the_cli_leaves_the_garbage_collector_on() -> None:
    code = "import gc, ketch.image.cli\nassert gc.isenabled()\n"
    subprocess.run([sys.executable, "-c", code], check=True)

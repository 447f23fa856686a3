"""The ``ketch`` program as a process: import cost of the hot path, the
console script, exit statuses, death by SIGPIPE."""

from __future__ import annotations

import json
import os
import signal
import subprocess

from .conftest import HERE, PYTHON, run_subprocess

HEAVY = ("click", "jsonschema", "requests")
PROBE = ("import json as _j, sys\n"
         "{setup}"
         "from ketch.runtime.cli import main\n"
         "rc = main(['ketch', '--root', {root!r}, {args}])\n"
         "mods = sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r} or m == 'argparse'"
         " or m.startswith('ketch.runtime.cli.commands.'))\n"
         "sys.stderr.write('\\nMODULES=' + _j.dumps(mods) + '\\n')\n"
         "sys.exit(rc)\n")


def modules_after(args: list[str], root: str, fake: bool) -> list[str]:
    setup = f"sys.path.insert(0, {HERE!r}); import fake; fake.install()\n" if fake else ""
    code = PROBE.format(setup=setup, root=root, args=", ".join(map(repr, args)), heavy=HEAVY)
    p = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=60)
    line = p.stderr.rsplit("MODULES=", 1)[1]
    return json.loads(line)


def test_hot_path_with_the_real_library_imports_no_heavy_module(tmp_path) -> None:
    for args in (["state", "x"], ["kill", "x"], ["delete", "x"], ["list"], ["start", "x"]):
        mods = modules_after(args, str(tmp_path), fake=False)
        assert not [m for m in mods if m.split(".")[0] in HEAVY], (args, mods)


def test_only_the_chosen_verb_is_imported(tmp_path) -> None:
    mods = modules_after(["state", "x"], str(tmp_path), fake=True)
    assert mods == ["ketch.runtime.cli.commands.state"] or mods == [
        "ketch.runtime.cli.commands.create", "ketch.runtime.cli.commands.state"], mods
    assert "argparse" not in mods


def test_spec_and_help_do_not_load_the_library(tmp_path) -> None:
    code = ("import sys\nfrom ketch.runtime.cli import main\n"
            f"main(['ketch', 'spec', '-b', {str(tmp_path)!r}])\nmain(['ketch', '--help'])\n"
            "sys.stderr.write(str('ketch.runtime.container' in sys.modules))\n")
    p = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.stderr.endswith("False"), p.stderr


def test_console_script(tmp_path) -> None:
    exe = os.path.join(os.path.dirname(PYTHON), "ketch")
    if not os.path.exists(exe):
        import pytest

        pytest.skip("console script not installed")
    p = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert (p.returncode, p.stdout) == (0, "ketch version 0.1.0\nspec: 1.0.2-dev\n")
    p = subprocess.run([exe, "state"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and 'msg="ketch: \\"state\\" requires exactly 1 argument(s)"' in p.stderr


def test_python_dash_m(tmp_path) -> None:
    p = subprocess.run([PYTHON, "-m", "ketch.runtime.cli", "nope"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 3 and "No help topic for 'nope'" in p.stderr


def test_exit_status_from_run(tmp_path) -> None:
    code = (f"import sys; sys.path.insert(0, {HERE!r}); import fake\n"
            "b = fake.install()\n"
            "orig = b.Container.create\n"
            "def create(*a, **k):\n"
            "    c = orig(*a, **k); c.exit_code = 130; return c\n"
            "b.Container.create = create\n"
            "from ketch.runtime.cli import main\n"
            "sys.exit(main(['ketch', 'run', '-b', '/b', 'c1']))\n")
    p = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=60)
    assert (p.returncode, p.stdout, p.stderr) == (130, "", "")


def test_dies_of_sigpipe_like_go(tmp_path) -> None:
    code = (f"import sys; sys.path.insert(0, {HERE!r}); import fake\n"
            "b = fake.install()\n"
            "for i in range(5000): b.add(f'container-{i:05d}')\n"
            "from ketch.runtime.cli import main\n"
            "sys.exit(main(['ketch', '--root', '/nonexistent', 'list', '-f', 'json']))\n")
    p = subprocess.Popen([PYTHON, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()  # the output (> 64 KiB) cannot fit in the pipe: the writer meets EPIPE
    err = p.stderr.read()
    assert p.wait(timeout=60) == -signal.SIGPIPE
    assert b"Traceback" not in err and b"BrokenPipe" not in err


def test_usage_error_exit_status(tmp_path) -> None:
    p = run_subprocess(["kill"])
    assert p.returncode == 1 and p.stdout.startswith("Incorrect Usage.\n\nNAME:\n   ketch kill - ")


def test_start_up_is_frozen_and_the_verb_runs_with_the_collector(tmp_path) -> None:
    # main() pauses the cyclic collector during start-up, then gc.freeze()s what the
    # imports created and resumes it before the verb's work
    code = ("import gc, sys\nfrom ketch.runtime.cli import main, app\n"
            "seen = []\n"
            "real = app.__dict__['end_start_up']\n"
            "def probe():\n"
            "    seen.append(gc.isenabled())\n"
            "    real()\n"
            "app.end_start_up = probe\n"
            f"main(['ketch', '--root', {str(tmp_path)!r}, 'state', 'x'])\n"
            "sys.stderr.write(f'\\nGC={seen} {gc.isenabled()} {gc.get_freeze_count() > 0}')\n")
    p = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.stderr.endswith("GC=[False] True True"), p.stderr


def test_running_the_app_in_process_leaves_the_collector_alone(tmp_path) -> None:
    code = ("import gc, sys\nfrom ketch.runtime.cli import app\n"
            f"app.run(['ketch', '--root', {str(tmp_path)!r}, 'state', 'x'])\n"
            "sys.stderr.write(f'\\nGC={gc.isenabled()} {gc.get_freeze_count()}')\n")
    p = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.stderr.endswith("GC=True 0"), p.stderr

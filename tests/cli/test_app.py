"""The ``ketch`` command line end to end in-process: global flags, dispatch,
usage errors, help and version, exit statuses (runc 1.1.5's behaviour)."""

from __future__ import annotations

import os
import re

import pytest

from ketch.runtime.cli import app
from ketch.runtime.cli.gofmt import quote

TEXT_ERR = re.compile(r'^time="[^"]+" level=error msg=(.*)\n$')


def err_msg(err: str) -> str:
    m = TEXT_ERR.match(err)
    assert m, err
    return m.group(1)


def test_no_arguments_prints_help(ketch) -> None:
    r = ketch()
    assert r.rc == 0 and r.out.startswith("NAME:\n   ketch - Open Container Initiative runtime")
    assert "\nCOMMANDS:\n" in r.out and "\nGLOBAL OPTIONS:\n" in r.out and r.err == ""


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["-help"], ["help"], ["h"], ["--help", "-v"],
                                  ["--debug"], ["--help", "state", "x"]])
def test_app_help(ketch, args: list[str]) -> None:
    r = ketch(*args)
    assert r.rc == 0 and r.out.startswith("NAME:\n   ketch - ") and r.err == ""


def test_app_help_lists_commands_and_flags_aligned(ketch) -> None:
    out = ketch("--help").out
    commands = out.split("COMMANDS:\n")[1].split("\n\n")[0].splitlines()
    assert [c.split()[0] for c in commands] == ["create", "delete", "events", "exec", "features",
                                                 "kill", "list", "pause", "ps", "resume", "run",
                                                 "spec", "start", "state", "update", "help,"]
    assert len({len(c) - len(c[3:].split("  ", 1)[1].lstrip()) for c in commands}) == 1
    assert '   --root value        root directory for storage of container state' in out
    assert '(default: "/run/ketch")' in out or "XDG_RUNTIME_DIR" in os.environ
    assert "   --version, -v       print the version\n" in out


@pytest.mark.parametrize("args", [["-v"], ["--version"], ["-v", "state", "x"], ["--version=true"]])
def test_version(ketch, args: list[str]) -> None:
    r = ketch(*args)
    assert (r.rc, r.out, r.err) == (0, "ketch version 0.1.0\nspec: 1.0.2-dev\n", "")


def test_version_matches_package_metadata() -> None:
    import tomllib

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        assert tomllib.load(f)["project"]["version"] == app.VERSION


@pytest.mark.parametrize("args, name", [(["nope"], "nope"), (["nope", "x"], "nope"),
                                        (["help", "nope"], "nope"), (["checkpoint", "x"], "checkpoint")])
def test_unknown_command_exit_3(ketch, args: list[str], name: str) -> None:
    r = ketch(*args)
    assert r.rc == 3 and r.out == ""
    assert err_msg(r.err) == f'"No help topic for \'{name}\'\\n"'


@pytest.mark.parametrize("args, message", [
    (["--bogus", "state", "x"], "flag provided but not defined: -bogus"),
    (["-x"], "flag provided but not defined: -x"),
    (["--root"], "flag needs an argument: -root"),
    (["--criu"], "flag needs an argument: -criu"),
    (["--debug=maybe", "state", "x"], 'invalid boolean value "maybe" for -debug: parse error'),
])
def test_global_usage_errors(ketch, args: list[str], message: str) -> None:
    r = ketch(*args)
    assert r.rc == 1
    assert r.out.startswith(f"Incorrect Usage. {message}\n\nNAME:\n   ketch - ")
    assert err_msg(r.err) == quote(message)


def test_global_usage_error_ignores_log_format(ketch) -> None:
    # the usage error happens before --log-format is applied (runc does the same)
    r = ketch("--log-format", "json", "--bogus")
    assert r.rc == 1 and r.err.startswith('time="')


def test_two_forms_of_global_help(ketch) -> None:
    r = ketch("-h", "--help")
    assert r.rc == 1 and r.out.startswith("Cannot use two forms of the same flag: h help\nNAME:")


@pytest.mark.parametrize("verb, args, check", [
    ("state", [], "exactly 1"), ("state", ["a", "b"], "exactly 1"), ("start", [], "exactly 1"),
    ("create", [], "exactly 1"), ("run", [], "exactly 1"), ("delete", [], "exactly 1"),
    ("kill", [], "a minimum of 1"), ("kill", ["a", "b", "c"], "a maximum of 2"),
    ("list", ["x"], "exactly 0"), ("spec", ["x"], "exactly 0"),
    ("delete", ["x", "--", "-f"], "exactly 1"), ("state", ["x", "-bogus"], "exactly 1"),
    ("create", ["--no-pivot", "x", "-b", "/b"], "exactly 1"),
])
def test_argument_count(ketch, fake, verb: str, args: list[str], check: str) -> None:
    r = ketch(verb, *args)
    n = check.split()[-1]
    assert r.rc == 1
    assert r.out.startswith(f"Incorrect Usage.\n\nNAME:\n   ketch {verb} - ")
    assert err_msg(r.err) == f'"ketch: \\"{verb}\\" requires {check.rsplit(" ", 1)[0]} {n} argument(s)"'
    assert fake.calls == []


@pytest.mark.parametrize("args, message", [
    (["state", "--bogus", "x"], "flag provided but not defined: -bogus"),
    (["kill", "nope", "-a", "-9"], "flag provided but not defined: -9"),
    (["list", "-f"], "flag needs an argument: -f"),
    (["list", "-qf", "json"], "flag provided but not defined: -qf"),
    (["delete", "--force=yes", "x"], 'invalid boolean value "yes" for -force: parse error'),
    (["create", "-b", "/b", "--bundle", "/c", "x"], "Cannot use two forms of the same flag: b bundle"),
    (["state", "---x"], "bad flag syntax: ---x"),
])
def test_command_usage_errors(ketch, fake, args: list[str], message: str) -> None:
    r = ketch(*args)
    assert r.rc == 1
    assert r.out.startswith(f"Incorrect Usage: {message}\n\nNAME:\n   ketch {args[0]} - ")
    assert err_msg(r.err) == quote(message)
    assert fake.calls == []


@pytest.mark.parametrize("args", [["state", "-h"], ["state", "--help"], ["state", "-help"],
                                  ["state", "x", "--help"], ["help", "state"], ["h", "state"]])
def test_command_help(ketch, fake, args: list[str]) -> None:
    r = ketch(*args)
    assert r.rc == 0 and r.err == "" and fake.calls == []
    assert r.out == ("NAME:\n   ketch state - output the state of a container\n\nUSAGE:\n"
                     '   ketch state <container-id>\n\nWhere "<container-id>" is your name for the'
                     " instance of the container.\n\nDESCRIPTION:\n   The state command outputs"
                     " current state information for the\ninstance of a container.\n")


def test_command_help_options_layout(ketch) -> None:
    out = ketch("kill", "--help").out
    assert out.startswith("NAME:\n   ketch kill - kill sends the specified signal (default: SIGTERM)")
    assert "\nUSAGE:\n   ketch kill [command options] <container-id> [signal]\n" in out
    assert out.endswith("\nOPTIONS:\n   --all, -a  send the specified signal to all processes inside"
                        " the container\n   \n")
    out = ketch("create", "--help").out
    assert "   --bundle value, -b value  path to the root of the bundle directory" in out
    assert "   --no-pivot                do not use pivot root" in out
    assert "(stdio + $LISTEN_FDS + N in total) (default: 0)\n" in out
    out = ketch("list", "--help").out
    assert "   --format value, -f value  select one of: table or json (default: \"table\")\n" in out
    assert "\nUSAGE:\n   ketch list [command options] \n\nWhere the given root" in out
    out = ketch("spec", "--help").out
    assert "\nUSAGE:\n   ketch spec [command options] [arguments...]\n" in out


@pytest.mark.parametrize("verb", ["create", "delete", "kill", "list", "run", "spec", "start", "state"])
def test_every_verb_has_help(ketch, verb: str) -> None:
    r = ketch(verb, "--help")
    assert r.rc == 0 and r.out.startswith(f"NAME:\n   ketch {verb} - ")


def test_root_is_made_absolute(ketch, fake, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    fake.add("x")
    assert ketch("--root", "rel/dir", "state", "x").rc == 0
    assert fake.calls[0] == ("load", "x", (str(tmp_path / "rel/dir"),), {})
    fake.calls.clear()
    assert ketch("--root=", "state", "x").rc == 0   # Go's filepath.Abs("") is the cwd
    assert fake.calls[0][2] == (str(tmp_path),)
    fake.calls.clear()
    assert ketch("-root", "//r//x/../y", "state", "x").rc == 0
    assert fake.calls[0][2] == ("/r/y",)


def test_default_root(ketch, fake, monkeypatch) -> None:
    fake.add("x")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    ketch("state", "x")
    assert fake.calls[-1][2] == ("/run/ketch",)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    ketch("state", "x")
    assert fake.calls[-1][2] == ("/run/user/1000/ketch",)


def test_accepted_global_flags(ketch, fake) -> None:
    fake.add("x")
    r = ketch("--systemd-cgroup", "--rootless", "true", "--criu", "/bin/criu", "--rootless=maybe",
              "--systemd-cgroup=false", "state", "x")
    assert r.rc == 0, r


def test_invalid_log_format(ketch, fake) -> None:
    r = ketch("--log-format", "xml", "nope")
    assert r.rc == 1 and err_msg(r.err) == '"invalid log-format: xml"' and fake.calls == []


def test_log_file_cannot_be_opened(ketch, fake, tmp_path) -> None:
    r = ketch("--log", str(tmp_path / "no/such/dir/log"), "state", "x")
    assert r.rc == 1
    assert err_msg(r.err) == f'"open {tmp_path}/no/such/dir/log: no such file or directory"'


def test_unexpected_exception_is_one_line(ketch, fake) -> None:
    fake.add("x").state = lambda: {}["boom"]  # a bug in the library
    r = ketch("state", "x")
    assert r.rc == 1 and "Traceback" not in r.err
    assert err_msg(r.err) == "\"KeyError: 'boom'\""


def test_unexpected_exception_traceback_with_debug(ketch, fake) -> None:
    fake.add("x").state = lambda: {}["boom"]
    r = ketch("--debug", "state", "x")
    assert r.rc == 1 and "Traceback (most recent call last)" in r.err and "KeyError: 'boom'" in r.err


def test_oserror_message_in_go_style(ketch, fake) -> None:
    fake.fail["start"] = FileNotFoundError(2, "No such file or directory", "/x/y")
    fake.add("x", status="created")
    r = ketch("start", "x")
    assert r.rc == 1 and err_msg(r.err) == '"/x/y: no such file or directory"'


def test_ketch_error_exit_code(ketch, fake) -> None:
    from ketch.runtime.errors import KetchError

    class Odd(KetchError):
        exit_code = 7

    fake.fail["start"] = Odd("odd")
    fake.add("x", status="created")
    assert ketch("start", "x").rc == 7


def test_program_name() -> None:
    assert app.program_name("/usr/local/bin/ketch") == "ketch"
    assert app.program_name("kt") == "kt"
    assert app.program_name("/x/__main__.py") == "ketch"
    assert app.program_name("-c") == "ketch"
    assert app.program_name("") == "ketch"

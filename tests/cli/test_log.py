"""runc's error and log output (logrus as runc 1.1.5 sets it up), compared
with what runc printed on this machine, e.g.:

    $ runc state nope                                  (stderr not a terminal)
    time="2026-11-29T11:39:09Z" level=error msg="container does not exist"
    $ runc --log /tmp/l --log-format json state nope; cat /tmp/l
    container does not exist                           (stderr)
    {"level":"error","msg":"container does not exist","time":"2026-11-29T11:39:57Z"}
    $ runc --log-format json state nope
    {"level":"error","msg":"container does not exist","time":"2026-11-29T11:39:57Z"}
    $ runc --debug state nope
    time="..." level=error msg="container does not exist" func="main.fatalWithCode()" file="utils.go:61"
    on a terminal: "\\x1b[31mERRO\\x1b[0m[0000] container does not exist" padded to 44 columns + " "
"""

from __future__ import annotations

import json
import os
import re
import stat
import time

import pytest

from ketch.runtime.cli import log

T = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)"
TEXT_LINE = re.compile(rf'^time="{T}" level=error msg="container does not exist"\n$')
JSON_LINE = re.compile(rf'^\{{"level":"error","msg":"container does not exist","time":"{T}"\}}\n$')


def test_text_to_stderr(ketch, fake) -> None:
    r = ketch("state", "nope")
    assert TEXT_LINE.match(r.err), r.err


def test_json_to_stderr(ketch, fake) -> None:
    r = ketch("--log-format", "json", "state", "nope")
    assert JSON_LINE.match(r.err), r.err


@pytest.mark.parametrize("fmt, pattern", [("json", JSON_LINE), ("text", TEXT_LINE), ("", TEXT_LINE)])
def test_log_file_and_plain_stderr(ketch, fake, tmp_path, fmt: str, pattern: re.Pattern) -> None:
    path = tmp_path / "log.json"
    path.write_text("earlier line\n")
    args = ["--log", str(path)] + (["--log-format", fmt] if fmt else [])
    r = ketch(*args, "state", "nope")
    assert (r.rc, r.out, r.err) == (1, "", "container does not exist\n")
    first, line = path.read_text().split("\n", 1)
    assert first == "earlier line" and pattern.match(line), line


def test_log_file_created_0644(ketch, fake, tmp_path) -> None:
    path = tmp_path / "new.log"
    old = os.umask(0)
    try:
        ketch("--log", str(path), "state", "nope")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_json_lines_are_what_containerd_reads(ketch, fake, tmp_path) -> None:
    path = tmp_path / "log.json"
    ketch("--log", str(path), "--log-format", "json", "kill", "nope", "KILL")
    ketch("--log", str(path), "--log-format", "json", "nope")
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["msg"] for e in entries] == ["container does not exist", "No help topic for 'nope'\n"]
    assert all(sorted(e) == ["level", "msg", "time"] and e["level"] == "error" for e in entries)


def test_unknown_command_with_log_file(ketch, fake, tmp_path) -> None:
    path = tmp_path / "l"
    r = ketch("--log", str(path), "nope")
    assert (r.rc, r.err) == (3, "No help topic for 'nope'\n")
    assert path.read_text().endswith(' level=error msg="No help topic for \'nope\'\\n"\n')


def test_debug_adds_caller(ketch, fake) -> None:
    r = ketch("--debug", "state", "nope")
    assert re.match(rf'^time="{T}" level=error msg="container does not exist" '
                    r'func="ketch\.runtime\.cli\.app\.fatal\(\)" file="app\.py:\d+"\n$', r.err), r.err
    r = ketch("--debug", "--log-format", "json", "state", "nope")
    assert list(json.loads(r.err)) == ["file", "func", "level", "msg", "time"]


def test_levels(capsys) -> None:
    log.info("shown")
    log.debug("hidden")
    log.warning("careful", path="/x y")
    err = capsys.readouterr().err.splitlines()
    assert [re.sub(r'^time="[^"]+" ', "", ln) for ln in err] == [
        "level=info msg=shown", 'level=warning msg=careful path="/x y"']
    log.configure(debug=True)
    log.debug("now shown")
    assert "level=debug msg=\"now shown\" func=" in capsys.readouterr().err


def test_runtime_library_lines_use_these_formats(capsys) -> None:
    runtime_log = pytest.importorskip("ketch.runtime.log")
    log.configure(log_format="json")
    log.install_runtime_sink()
    try:
        runtime_log.warning("cgroup v1 is deprecated")
        runtime_log.debug("dropped: no --debug")
    finally:
        if hasattr(runtime_log, "set_sink"):
            runtime_log.set_sink(runtime_log._default_sink)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["level"] == "warning"
    assert json.loads(lines[0])["msg"] == "cgroup v1 is deprecated"


def test_colored_terminal_format(monkeypatch) -> None:
    # logrus prints seconds since start; start "now" so a long test run reads [0000]
    monkeypatch.setattr(log, "_BASE", time.monotonic())
    line = log.format_colored(log.ERROR, "container does not exist", {})
    # byte for byte what runc printed to a pty (od -c)
    assert line == "\x1b[31mERRO\x1b[0m[0000] container does not exist" + " " * 21 + "\n"
    assert log.format_colored(log.WARNING, "x\n", {"k": "v w"}).startswith("\x1b[33mWARN\x1b[0m[0000] x ")
    assert log.format_colored(log.WARNING, "x", {"k": "v w"}).endswith(' \x1b[33mk\x1b[0m="v w"\n')
    assert log.format_colored(log.ERROR, "m", {}, ("main.f()", "a.py:1")).startswith(
        "\x1b[31mERRO\x1b[0m[0000]a.py:1 main.f() m")


def test_text_quoting() -> None:
    fixed = time.mktime((2026, 11, 29, 11, 39, 9, 0, 0, -1))
    line = log.format_text(log.ERROR, 'say "hi"\n\tbye é', {"n": 3, "plain": "a-b.c_d/e@f^g+h"}, now=fixed)
    assert line.endswith(r' level=error msg="say \"hi\"\n\tbye é" n=3 plain=a-b.c_d/e@f^g+h' + "\n")
    assert log.format_text(log.INFO, "", {}, now=fixed).endswith(" level=info\n")  # empty msg omitted


def test_json_escaping_and_reserved_fields() -> None:
    line = log.format_json(log.ERROR, "<a & b>", {"level": "x", "id": "c1"}, now=0)
    assert line == ('{"fields.level":"x","id":"c1","level":"error","msg":"\\u003ca \\u0026 b\\u003e",'
                    f'"time":"{log.gofmt.rfc3339_now(0)}"}}\n')


def test_timestamp_uses_local_zone(monkeypatch) -> None:
    monkeypatch.setenv("TZ", "IST-5:30")
    time.tzset()
    try:
        assert log.gofmt.rfc3339_now(0) == "1970-01-01T05:30:00+05:30"
    finally:
        monkeypatch.undo()
        time.tzset()
    monkeypatch.setenv("TZ", "UTC0")
    time.tzset()
    try:
        assert log.gofmt.rfc3339_now(0) == "1970-01-01T00:00:00Z"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_go_error_texts() -> None:
    e = FileNotFoundError(2, "No such file or directory")
    assert log.go_path_error("open", "/x", e) == "open /x: no such file or directory"
    assert log.go_errno_text(PermissionError(13, "Permission denied")) == "permission denied"

"""The argv grammar: Go's flag package under urfave/cli v1's reordering."""

from __future__ import annotations

import pytest

from ketch.runtime.cli.flags import (
    BOOL,
    DURATION,
    HELP,
    INT,
    STRING,
    Flag,
    FlagError,
    format_duration,
    parse,
    parse_duration,
    parse_int,
    reorder,
)

BUNDLE = Flag(("bundle", "b"), STRING)
DETACH = Flag(("detach", "d"), BOOL)
KEEP = Flag(("keep",), BOOL)
FDS = Flag(("preserve-fds",), INT, 0)
FLAGS = [BUNDLE, DETACH, KEEP, FDS, HELP]


def cmd(*args: str):
    return parse(FLAGS, reorder(FLAGS, list(args)))


@pytest.mark.parametrize("args, bundle, detach, rest", [
    (["--bundle", "/b", "x"], "/b", False, ["x"]),
    (["--bundle=/b", "x"], "/b", False, ["x"]),
    (["-bundle", "/b", "x"], "/b", False, ["x"]),
    (["-bundle=/b", "x"], "/b", False, ["x"]),
    (["-b", "/b", "x"], "/b", False, ["x"]),
    (["--b", "/b", "x"], "/b", False, ["x"]),
    (["-b=/b", "-d", "x"], "/b", True, ["x"]),
    (["x", "-b", "/b"], "/b", False, ["x"]),           # urfave moves flags forward
    (["x", "-d"], "", True, ["x"]),
    (["-d=false", "x"], "", False, ["x"]),
    (["--detach=true", "x"], "", True, ["x"]),
    (["-d=T", "x"], "", True, ["x"]),
    (["-d=0", "x"], "", False, ["x"]),
    (["x", "-d", "y"], "", True, ["y", "x"]),          # the token after a bool flag moves too
    (["-b", "-x", "y"], "-x", False, ["y"]),           # a value may start with a dash
    (["-b", "--", "y"], "--", False, ["y"]),
    (["--", "-d"], "", False, ["-d"]),                 # -- ends the flags
    (["x", "--", "-d"], "", False, ["x", "-d"]),
    (["-d", "--", "x"], "", True, ["x"]),
    (["x", "-z"], "", False, ["x", "-z"]),
    (["x", "--bundle"], "x", False, []),              # runc: `create x -b` lacks the ID             # unknown flags after a positional stay put
    (["-"], "", False, ["-"]),
    (["-", "x"], "", False, ["-", "x"]),
    (["x", "-b", "/1", "-b", "/2"], "/2", False, ["x"]),  # same name twice: last wins
])
def test_grammar(args: list[str], bundle: str, detach: bool, rest: list[str]) -> None:
    p = cmd(*args)
    assert (p["bundle"], p["detach"], p.args) == (bundle, detach, rest)


def test_is_set_and_defaults() -> None:
    p = cmd("x")
    assert p["preserve-fds"] == 0 and p["keep"] is False and not p.is_set("bundle")
    p = cmd("-b", "", "x")
    assert p.is_set("bundle") and p["bundle"] == ""


@pytest.mark.parametrize("args, message", [
    (["-z", "x"], "flag provided but not defined: -z"),
    (["--zz=1", "x"], "flag provided but not defined: -zz"),
    (["-b"], "flag needs an argument: -b"),
    (["--detach=yes", "x"], 'invalid boolean value "yes" for -detach: parse error'),
    (["--preserve-fds", "abc", "x"], 'invalid value "abc" for flag -preserve-fds: parse error'),
    (["--preserve-fds=99999999999999999999", "x"],
     'invalid value "99999999999999999999" for flag -preserve-fds: value out of range'),
    (["---d", "x"], "bad flag syntax: ---d"),
    (["-=x"], "bad flag syntax: -=x"),
    (["-b", "/1", "--bundle", "/2", "x"], "Cannot use two forms of the same flag: b bundle"),
    (["--bundle", "/1", "-b", "/2", "x"], "Cannot use two forms of the same flag: b bundle"),
    (["-h", "--help"], "Cannot use two forms of the same flag: h help"),
    (["-d", "-9", "x"], "flag provided but not defined: -9"),  # -9 rode along as the bool's "value"
])
def test_errors(args: list[str], message: str) -> None:
    with pytest.raises(FlagError) as e:
        cmd(*args)
    assert str(e.value) == message


def test_help_flag_anywhere() -> None:
    assert cmd("x", "--help")["help"] is True
    assert cmd("-h", "x")["help"] is True
    assert cmd("-help")["help"] is True
    assert cmd("-h=false", "x")["help"] is False


def test_global_flags_are_not_reordered() -> None:
    flags = [Flag(("root",)), Flag(("debug",), BOOL)]
    p = parse(flags, ["--debug", "state", "x", "--root", "/r"])
    assert p["debug"] is True and p["root"] == "" and p.args == ["state", "x", "--root", "/r"]


def test_reorder_matches_urfave() -> None:
    # urfave/cli v1 reorderArgs, traced by hand
    assert reorder(FLAGS, ["x", "-d", "KILL"]) == ["-d", "KILL", "x"]
    assert reorder(FLAGS, ["x", "--", "-d"]) == ["--", "x", "-d"]
    assert reorder(FLAGS, ["-d=true", "y", "x"]) == ["-d=true", "y", "x"]
    assert reorder(FLAGS, ["x", "---d"]) == ["---d", "x"]  # argIsFlag strips up to 3 dashes


@pytest.mark.parametrize("text, value", [
    ("0", 0), ("10", 10), ("+5", 5), ("-5", -5), ("010", 8), ("0x10", 16), ("0X1f", 31),
    ("0o17", 15), ("0b101", 5), ("1_000", 1000), ("0_1", 1), ("0x_1", 1),
    ("-9223372036854775808", -(1 << 63)), ("9223372036854775807", (1 << 63) - 1),
])
def test_parse_int(text: str, value: int) -> None:
    assert parse_int(text) == value


@pytest.mark.parametrize("text, error", [
    ("", "parse error"), ("+", "parse error"), ("08", "parse error"), ("_1", "parse error"),
    ("1_", "parse error"), ("1__0", "parse error"), (" 1", "parse error"), ("1e3", "parse error"),
    ("0x", "parse error"), ("--5", "parse error"), ("١٢", "parse error"),
    ("9223372036854775808", "value out of range"),
])
def test_parse_int_errors(text: str, error: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_int(text)
    assert str(e.value) == error


@pytest.mark.parametrize("text, seconds, shown", [
    ("5s", 5.0, "5s"), ("1m30s", 90.0, "1m30s"), ("250ms", 0.25, "250ms"), ("-1s", -1.0, "-1s"),
    ("0", 0.0, "0s"), ("1.5h", 5400.0, "1h30m0s"), ("3µs", 3e-06, "3µs"),
])
def test_parse_and_format_duration(text: str, seconds: float, shown: str) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
    assert format_duration(parse_duration(text)) == shown


@pytest.mark.parametrize("text", ["", "x", "5", "1s5", ".s", "5sec", "--1s", "1..2s"])
def test_parse_duration_errors(text: str) -> None:
    with pytest.raises(ValueError, match=r'^time: invalid duration "'):
        parse_duration(text)


def test_duration_flag_error_is_gos() -> None:
    flags = [Flag(("interval",), DURATION, 5.0)]
    assert parse(flags, []).values["interval"] == 5.0
    assert parse(flags, ["--interval", "100ms"]).values["interval"] == pytest.approx(0.1)
    with pytest.raises(FlagError, match=r'^invalid value "x" for flag -interval: parse error$'):
        parse(flags, ["--interval", "x"])

"""runc's argv grammar: Go's ``flag`` package driven by urfave/cli v1.

runc parses its command line with urfave/cli v1 on top of Go's ``flag``:

- global flags come before the command and are parsed by ``flag`` as given:
  parsing stops at the first non-flag argument (the command) or ``--``;
- a command's arguments are first *reordered* by urfave (``reorderArgs``):
  every token that names one of the command's flags (``-x``, ``--x``,
  ``-x=v``, ``--x=v``) moves to the front, followed by the token after it
  when that token is not itself one of the command's flags (urfave does not
  know whether the flag takes a value, so ``kill ID -a KILL`` parses as
  ``-a KILL ID``); a ``--`` ends the reordering and is put first among the
  positional arguments; then ``flag`` parses the result;
- ``flag``: ``-name`` and ``--name`` are the same; ``-name=value``; a
  non-bool flag takes the next argument whatever it looks like; a bool flag
  takes a value only as ``-name=value`` (``strconv.ParseBool`` spellings);
  ints are ``strconv.ParseInt(s, 0, 64)`` (``0x10``, ``010`` octal, ``1_000``);
  ``-`` is a positional argument, ``--`` ends the flags;
- a flag with several names (``bundle, b``) is registered once per name;
  giving two of its names is an error (urfave ``normalizeFlags``).

Errors carry Go's exact texts (``flag provided but not defined: -x``,
``flag needs an argument: -b``, ``invalid boolean value "yes" for -force:
parse error``, ``bad flag syntax: ---x``, ``Cannot use two forms of the same
flag: b bundle``).
"""

from __future__ import annotations

import re

from ketch.runtime.cli.gofmt import quote

BOOL, STRING, INT, SLICE, DURATION = "bool", "string", "int", "slice", "duration"
INT64_SLICE = "int64slice"
_TRUE = frozenset(("1", "t", "T", "TRUE", "true", "True"))
_FALSE = frozenset(("0", "f", "F", "FALSE", "false", "False"))
_INT64_MAX = (1 << 63) - 1
_DECIMAL = re.compile(r"[+-]?[0-9]+")


class FlagError(Exception):
    """The command line does not parse; ``str`` is Go's message."""


class Flag:
    """One urfave flag: ``names`` (the first is the canonical one), a kind
    (``BOOL``/``STRING``/``INT``, ``DURATION``: Go's ``time.Duration``, parsed to
    seconds as a float, or ``SLICE``: urfave's StringSlice, each use appends a
    value; ``INT64_SLICE``: urfave's Int64Slice, each use appends
    ``strconv.ParseInt(value, 10, 64)``), a default and the help line's text."""

    __slots__ = ("default", "hidden", "kind", "names", "usage")

    def __init__(self, names: tuple[str, ...], kind: str = STRING, default: object = None,
                 usage: str = "", hidden: bool = False) -> None:
        self.names = names
        self.kind = kind
        if default is None:
            default = {BOOL: False, STRING: "", INT: 0, SLICE: (), INT64_SLICE: (),
                       DURATION: 0.0}[kind]
        self.default = default
        self.usage = usage
        self.hidden = hidden

    @property
    def name(self) -> str:
        return self.names[0]


HELP = Flag(("help", "h"), BOOL, usage="show help")


class Parsed:
    """Parsed flags (by canonical name, defaults filled in), the names that
    were given on the command line, and the positional arguments."""

    __slots__ = ("args", "given", "values")

    def __init__(self, values: dict[str, object], given: set[str], args: list[str]) -> None:
        self.values = values
        self.given = given
        self.args = args

    def __getitem__(self, name: str) -> object:
        return self.values[name]

    def is_set(self, name: str) -> bool:
        return name in self.given


def parse_bool(text: str) -> bool:
    """``strconv.ParseBool``; ``ValueError`` for anything else."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(text)


def parse_int(text: str) -> int:
    """``strconv.ParseInt(text, 0, 64)``: raises ``ValueError("parse error")``
    or ``ValueError("value out of range")`` (Go's flag error suffixes)."""
    s = text
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    base = 10
    digits = s
    if len(s) >= 2 and s[0] == "0" and s[1] in "xXoObB":
        base = {"x": 16, "o": 8, "b": 2}[s[1].lower()]
        digits = s[2:]
        prefixed = True
    elif len(s) >= 2 and s[0] == "0":
        base, digits, prefixed = 8, s[1:], True
    else:
        prefixed = False
    if not digits or not _underscores_ok(s, prefixed):
        raise ValueError("parse error")
    allowed = "0123456789abcdef"[:base]
    clean = digits.replace("_", "")
    if not clean or any(c not in allowed for c in clean.lower()):
        raise ValueError("parse error")
    value = sign * int(clean, base)
    if value > _INT64_MAX or value < -_INT64_MAX - 1:
        raise ValueError("value out of range")
    return value


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3,
                   "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Go's ``time.ParseDuration`` in seconds (``5s``, ``1m30s``, ``250ms``,
    ``-1s``; a bare ``0``). Raises ``ValueError`` (Go's ``time: invalid duration``)."""
    bad = ValueError(f'time: invalid duration "{text}"')
    s = text[1:] if text[:1] in ("+", "-") else text
    sign = -1.0 if text[:1] == "-" else 1.0
    if s == "0":
        return 0.0
    if not s:
        raise bad
    total, i = 0.0, 0
    while i < len(s):
        j = i
        while j < len(s) and ((s[j].isascii() and s[j].isdigit()) or s[j] == "."):
            j += 1
        k = j
        while k < len(s) and not (s[k].isascii() and s[k].isdigit()) and s[k] != ".":
            k += 1
        number, unit = s[i:j], s[j:k]
        if unit not in _DURATION_UNITS or number in ("", ".") or number.count(".") > 1:
            raise bad
        total += float(number) * _DURATION_UNITS[unit]
        i = k
    return sign * total


def format_duration(seconds: float) -> str:
    """Go's ``Duration.String`` for the help text: ``5s``, ``1m30s``, ``1h0m0s``, ``250ms``."""
    if seconds == 0:
        return "0s"
    if abs(seconds) < 1:
        for unit, scale in (("ms", 1e-3), ("\u00b5s", 1e-6), ("ns", 1e-9)):
            if abs(seconds) >= scale:
                return f"{seconds / scale:g}{unit}"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:g}s"
    if hours or minutes:
        text = f"{int(minutes)}m" + text
    if hours:
        text = f"{int(hours)}h" + text
    return sign + text


def _underscores_ok(s: str, prefixed: bool) -> bool:
    """Go's ``strconv.underscoreOK`` on the unsigned text: ``_`` must sit
    between digits (a base prefix counts as a digit)."""
    saw = "^"
    i = 0
    hexa = False
    if len(s) >= 2 and s[0] == "0" and s[1] in "bBoOxX":
        i, saw, hexa = 2, "0", s[1] in "xX"
    while i < len(s):
        c = s[i]
        i += 1
        if "0" <= c <= "9" or (hexa and c.lower() in "abcdef"):
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


def _flag_key(arg: str) -> str | None:
    """The flag name urfave's ``argIsFlag`` sees in ``arg`` (None if not flag-shaped)."""
    if arg in ("-", "--") or not arg.startswith("-"):
        return None
    if arg.startswith("--"):
        arg = arg.replace("-", "", 2)
    if arg.startswith("-"):
        arg = arg.replace("-", "", 1)
    return arg.split("=", 1)[0]


def reorder(flags: list[Flag], args: list[str]) -> list[str]:
    """urfave/cli v1 ``reorderArgs``: the command's flags (and the token after
    each, unless it is a flag too or the flag was ``-x=v``) first, then the
    positional arguments; ``--`` stops the reordering and leads the rest."""
    names = {n for f in flags for n in f.names}
    moved: list[str] = []
    rest: list[str] = []
    may_be_value = False
    for i, arg in enumerate(args):
        is_flag = _flag_key(arg) in names
        if may_be_value and not is_flag:
            may_be_value = False
            moved.append(arg)
        elif arg == "--":
            rest = ["--", *rest, *args[i + 1:]]
            break
        elif is_flag:
            moved.append(arg)
            may_be_value = "=" not in arg
        else:
            rest.append(arg)
    return moved + rest


def parse(flags: list[Flag], args: list[str]) -> Parsed:
    """Go's ``FlagSet.Parse`` over ``args`` with one entry per flag name, then
    urfave's ``normalizeFlags``. Raises ``FlagError``."""
    by_name = {n: f for f in flags for n in f.names}
    raw: dict[str, object] = {}
    order: list[str] = []
    i = 0
    while i < len(args):
        s = args[i]
        if len(s) < 2 or s[0] != "-":
            break
        minuses = 1
        if s[1] == "-":
            minuses = 2
            if len(s) == 2:
                i += 1
                break
        name = s[minuses:]
        if not name or name[0] in "-=":
            raise FlagError(f"bad flag syntax: {s}")
        i += 1
        has_value = False
        value = ""
        eq = name.find("=", 1)
        if eq > 0:
            name, value, has_value = name[:eq], name[eq + 1:], True
        flag = by_name.get(name)
        if flag is None:
            raise FlagError(f"flag provided but not defined: -{name}")
        if flag.kind == BOOL:
            if has_value:
                try:
                    raw[name] = parse_bool(value)
                except ValueError:
                    raise FlagError(f"invalid boolean value {quote(value)} for -{name}: parse error") from None
            else:
                raw[name] = True
        else:
            if not has_value:
                if i >= len(args):
                    raise FlagError(f"flag needs an argument: -{name}")
                value = args[i]
                i += 1
            if flag.kind == SLICE:
                raw[name] = (*raw.get(name, ()), value)  # type: ignore[misc]
            elif flag.kind == INT64_SLICE:
                # urfave's Int64Slice.Set: strconv.ParseInt(value, 10, 64), whose
                # own error Go's flag package wraps
                why = ("invalid syntax" if not _DECIMAL.fullmatch(value)
                       else "value out of range" if not -_INT64_MAX - 1 <= int(value) <= _INT64_MAX
                       else "")
                if why:
                    raise FlagError(f"invalid value {quote(value)} for flag -{name}: "
                                    f"strconv.ParseInt: parsing {quote(value)}: {why}")
                raw[name] = (*raw.get(name, ()), int(value))  # type: ignore[misc]
            elif flag.kind == DURATION:
                try:
                    raw[name] = parse_duration(value)
                except ValueError:
                    raise FlagError(f"invalid value {quote(value)} for flag -{name}: parse error") from None
            elif flag.kind == INT:
                try:
                    raw[name] = parse_int(value)
                except ValueError as e:
                    raise FlagError(f"invalid value {quote(value)} for flag -{name}: {e}") from None
            else:
                raw[name] = value
        if name not in order:
            order.append(name)
    values: dict[str, object] = {}
    given: set[str] = set()
    for f in flags:
        seen: str | None = None
        for n in f.names:
            if n in raw:
                if seen is not None:
                    raise FlagError(f"Cannot use two forms of the same flag: {n} {seen}")
                seen = n
        values[f.name] = raw[seen] if seen is not None else f.default
        if seen is not None:
            given.add(f.name)
    return Parsed(values, given, args[i:])

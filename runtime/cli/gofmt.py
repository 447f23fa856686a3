"""Go's text encodings, as runc prints them.

runc's output is made by Go's standard library, and callers compare it byte
for byte (containerd parses ``--log-format json`` lines, scripts diff
``state``). This module reproduces the three encodings involved:

- ``quote``: ``strconv.Quote`` / ``%q`` (logrus text values, flag errors);
- ``dumps``: ``encoding/json`` ``Marshal`` / ``MarshalIndent`` with its
  HTML escaping (``<`` → ``\\u003c``) and Go 1.19's escapes for control
  characters (``state``, ``list --format json``, ``spec``, json log lines);
- ``rfc3339_now`` / ``rfc3339nano``: ``time.RFC3339`` of the local clock
  (logrus timestamps) and the ``RFC3339Nano`` normal form of a stored
  timestamp (``state``/``list`` ``created``).

Pure functions; imports nothing beyond the ``time`` builtin so the CLI's hot
path stays small.
"""

from __future__ import annotations

import time

_HEX = "0123456789abcdef"

# encoding/json: the characters a Go string encoder (escapeHTML=true) rewrites.
_JSON_ESCAPES: dict[str, str] = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                                 "<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                                 "\u2028": "\\u2028", "\u2029": "\\u2029"}
for _c in range(0x20):
    _JSON_ESCAPES.setdefault(chr(_c), "\\u00" + _HEX[_c >> 4] + _HEX[_c & 0xF])
_JSON_TABLE = str.maketrans(_JSON_ESCAPES)


def json_string(s: str) -> str:
    """``s`` as a Go ``encoding/json`` string literal (quotes included).

    Lone surrogates (undecodable bytes that Python kept with
    ``surrogateescape``) become U+FFFD, as Go writes invalid UTF-8.
    """
    out = s.translate(_JSON_TABLE)
    if not out.isascii():
        out = "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in out)
    return '"' + out + '"'


def dumps(obj: object, indent: str | None = None, _level: int = 0) -> str:
    """``obj`` (dict/list/str/int/float/bool/None) as Go's json.Marshal or
    ``json.MarshalIndent(obj, "", indent)`` writes it. Dict order is kept
    (Go structs keep field order); sort maps yourself where Go has a map."""
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if isinstance(obj, str):
        return json_string(obj)
    if isinstance(obj, int):
        return str(int(obj))
    if isinstance(obj, float):
        return _json_float(obj)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [json_string(str(k)) + (": " if indent is not None else ":")
                 + dumps(v, indent, _level + 1) for k, v in obj.items()]
        return _join("{", items, "}", indent, _level)
    if isinstance(obj, (list, tuple)):
        if not obj:
            return "[]"
        return _join("[", [dumps(v, indent, _level + 1) for v in obj], "]", indent, _level)
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


def _join(open_: str, items: list[str], close: str, indent: str | None, level: int) -> str:
    if indent is None:
        return open_ + ",".join(items) + close
    inner = "\n" + indent * (level + 1)
    return open_ + inner + ("," + inner).join(items) + "\n" + indent * level + close


def _json_float(f: float) -> str:
    """strconv.FormatFloat as encoding/json uses it (shortest digits; 'e' form
    outside [1e-6, 1e21) with a one-digit negative exponent kept short)."""
    if f != f or f in (float("inf"), float("-inf")):
        raise ValueError(f"unsupported value: {f!r}")
    a = abs(f)
    if a == 0 or 1e-6 <= a < 1e21:
        from decimal import Decimal  # only reached for floats, which runc output never has

        text = format(Decimal(repr(f)), "f")
        return text[:-2] if text.endswith(".0") else text
    text = repr(f)
    if len(text) >= 4 and text[-4:-1] == "e-0":
        text = text[:-2] + text[-1]
    return text


def quote(s: str) -> str:
    """``strconv.Quote(s)``: a double-quoted Go string literal.

    Printable characters stay as they are; ``\\a \\b \\f \\n \\r \\t \\v``, quote
    and backslash are escaped; other control characters become ``\\xNN``,
    other unprintable ones ``\\uNNNN``/``\\UNNNNNNNN``; bytes that were not
    UTF-8 (surrogate-escaped) become ``\\xNN``.
    """
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif 0x20 <= o < 0x7F:
            out.append(ch)
        elif ch in _QUOTE_SHORT:
            out.append(_QUOTE_SHORT[ch])
        elif o < 0x20 or o == 0x7F:
            out.append("\\x" + _HEX[o >> 4] + _HEX[o & 0xF])
        elif 0xDC80 <= o <= 0xDCFF:  # surrogateescape'd byte
            b = o - 0xDC00
            out.append("\\x" + _HEX[b >> 4] + _HEX[b & 0xF])
        elif 0xD800 <= o <= 0xDFFF:
            out.append("\\ufffd")
        elif ch.isprintable():
            out.append(ch)
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


_QUOTE_SHORT = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                "\t": "\\t", "\v": "\\v"}


def rfc3339_now(now: float | None = None) -> str:
    """Go's ``time.Now().Format(time.RFC3339)`` on the local clock (logrus' timestamp)."""
    t = time.time() if now is None else now
    lt = time.localtime(t)
    return time.strftime("%Y-%m-%dT%H:%M:%S", lt) + _offset(lt.tm_gmtoff)


def _offset(seconds: int | None) -> str:
    if not seconds:
        return "Z"
    sign = "+" if seconds > 0 else "-"
    minutes = abs(seconds) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def rfc3339nano(stamp: str) -> str:
    """A stored RFC 3339 timestamp in Go's ``time.RFC3339Nano`` form.

    Go prints a parsed time back in the offset it was read with, keeping at
    most nine fractional digits and dropping trailing zeros (and the dot when
    nothing is left); ``+00:00`` reads back as ``Z``. Text that does not parse
    is returned unchanged.
    """
    if len(stamp) < 20 or stamp[10] not in "Tt":
        return stamp
    head, rest = stamp[:19], stamp[19:]
    frac = ""
    if rest.startswith("."):
        i = 1
        while i < len(rest) and rest[i].isdigit():
            i += 1
        frac, rest = rest[1:i], rest[i:]
    if rest in ("Z", "z", "+00:00", "-00:00"):
        zone = "Z"
    elif len(rest) == 6 and rest[0] in "+-" and rest[3] == ":":
        zone = rest
    else:
        return stamp
    frac = frac[:9].rstrip("0")
    return head[:10] + "T" + head[11:] + ("." + frac if frac else "") + zone

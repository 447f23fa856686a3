"""Go's encodings: strconv.Quote, encoding/json, RFC 3339 times."""

from __future__ import annotations

import pytest

from ketch.runtime.cli.gofmt import dumps, json_string, quote, rfc3339nano


@pytest.mark.parametrize("text, expected", [
    ("plain", '"plain"'),
    ('a"b\\c', r'"a\"b\\c"'),
    ("\a\b\f\n\r\t\v", r'"\a\b\f\n\r\t\v"'),
    ("\x00\x1b\x7f", r'"\x00\x1b\x7f"'),
    ("é世😀", '"é世😀"'),
    ("\u200b\u00a0", r'"\u200b\u00a0"'),
    ("\U000e0001", r'"\U000e0001"'),
    ("bad\udcff", r'"bad\xff"'),  # a byte that was not UTF-8 (surrogateescape)
])
def test_quote(text: str, expected: str) -> None:
    assert quote(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("<&>", r'"\u003c\u0026\u003e"'),
    ("\n\r\t\b\f\x01\x7f", '"\\n\\r\\t\\u0008\\u000c\\u0001\x7f"'),  # Go 1.19: \u0008, \u000c
    ("\u2028\u2029", r'"\u2028\u2029"'),
    ('"\\', r'"\"\\"'),
    ("é", '"é"'),
    ("x\udcff", '"x\ufffd"'),
])
def test_json_string(text: str, expected: str) -> None:
    assert json_string(text) == expected


def test_dumps_compact_and_indent() -> None:
    doc = {"a": [1, True, None], "b": {}, "c": [], "d": {"e": "f"}}
    assert dumps(doc) == '{"a":[1,true,null],"b":{},"c":[],"d":{"e":"f"}}'
    assert dumps(doc, "  ") == ('{\n  "a": [\n    1,\n    true,\n    null\n  ],\n  "b": {},\n'
                                '  "c": [],\n  "d": {\n    "e": "f"\n  }\n}')
    assert dumps([{"x": 1}], "\t") == '[\n\t{\n\t\t"x": 1\n\t}\n]'


@pytest.mark.parametrize("value, expected", [
    (0.5, "0.5"), (3.0, "3"), (1e20, "100000000000000000000"), (1e21, "1e+21"),
    (1e-7, "1e-7"), (1.5e-7, "1.5e-7"), (0.000001, "0.000001"), (-2.25, "-2.25"),
])
def test_dumps_floats_like_go(value: float, expected: str) -> None:
    assert dumps(value) == expected


def test_dumps_rejects_other_types() -> None:
    with pytest.raises(TypeError):
        dumps({"x": object()})


@pytest.mark.parametrize("stamp, expected", [
    ("2026-11-29T11:40:32.740740953Z", "2026-11-29T11:40:32.740740953Z"),
    ("2026-11-29T11:40:32.740740950Z", "2026-11-29T11:40:32.74074095Z"),
    ("2026-11-29T11:40:32.000000000Z", "2026-11-29T11:40:32Z"),
    ("2026-11-29T11:40:32Z", "2026-11-29T11:40:32Z"),
    ("2026-11-29T11:40:32.5+00:00", "2026-11-29T11:40:32.5Z"),
    ("2026-11-29T11:40:32.1234567891+01:00", "2026-11-29T11:40:32.123456789+01:00"),
    ("2026-11-29t11:40:32z", "2026-11-29T11:40:32Z"),
    ("not a time", "not a time"),
    ("", ""),
])
def test_rfc3339nano(stamp: str, expected: str) -> None:
    assert rfc3339nano(stamp) == expected

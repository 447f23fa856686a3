"""Programmatic mutations of JSON documents, guided by a JSON Schema.

``mutations(doc, schema)`` walks ``doc`` and, at every node, yields copies of the
document with that node replaced by values of every other JSON type, boundary
numbers (each ``minimum``/``maximum`` and one past it), bad enum / const values,
strings that break patterns, emptied / extended arrays, and objects with each key
removed or an extra (unknown, wrongly typed, empty-named) key added.  Some
mutations stay valid (unknown keys, ``1.0`` for an integer): the tests only
require the generated validator and ``jsonschema`` to agree on each.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

Path = tuple[str | int, ...]
_OTHER_TYPES: tuple[Any, ...] = (None, True, 7, 1.5, "str", [], {})


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(v)]


def replace_at(doc: Any, path: Path, value: Any, delete: bool = False) -> Any:
    """A copy of ``doc`` with the node at ``path`` replaced (or deleted); shares the rest."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy = list(doc) if isinstance(doc, list) else dict(doc)
    if delete and not rest:
        del copy[head]
    else:
        copy[head] = replace_at(doc[head], rest, value, delete)
    return copy


class _Schemas:
    def __init__(self, root: dict) -> None:
        self.root = root

    def resolve(self, s: Any) -> dict:
        """``s`` with local ``$ref`` chains merged in (own keywords win)."""
        if not isinstance(s, dict):
            return {}
        merged = dict(s)
        while "$ref" in merged:
            ref = merged.pop("$ref")
            target: Any = self.root
            for part in ref.lstrip("#").strip("/").split("/"):
                if part:
                    target = target[part]
            merged = {**target, **merged}
        return merged

    def child(self, s: dict, key: str | int) -> dict:
        if isinstance(key, int):
            return self.resolve(s.get("items"))
        if key in s.get("properties", {}):
            return self.resolve(s["properties"][key])
        extra = s.get("additionalProperties")
        return self.resolve(extra) if isinstance(extra, dict) else {}


def mutations(doc: Any, schema: dict) -> Iterator[tuple[str, Any]]:
    """Yield ``(description, mutated document)`` for every node of ``doc``."""
    schemas = _Schemas(schema)
    yield from _walk(doc, doc, (), schemas.resolve(schema), schemas)


def _walk(doc: Any, node: Any, path: Path, s: dict, schemas: _Schemas) -> Iterator[tuple[str, Any]]:
    where = "/".join(map(str, path)) or "(root)"
    for desc, value in _values(node, s):
        yield f"{where}: {desc}", replace_at(doc, path, value)
    if isinstance(node, dict):
        for key in node:
            yield f"{where}: delete {key}", replace_at(doc, (*path, key), None, delete=True)
        yield f"{where}: unknown key", replace_at(doc, path, {**node, "x-unknown": {"a": 1}})
        extra = s.get("additionalProperties")
        if isinstance(extra, dict) or "propertyNames" in s:
            yield f"{where}: empty key", replace_at(doc, path, {**node, "": "v"})
            yield f"{where}: new entry of wrong type", replace_at(doc, path, {**node, "k": 7})
            if node:
                first = next(iter(node.values()))
                yield f"{where}: new entry", replace_at(doc, path, {**node, "new.key": first})
        for key, child in node.items():
            yield from _walk(doc, child, (*path, key), schemas.child(s, key), schemas)
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from _walk(doc, child, (*path, i), schemas.child(s, i), schemas)


def _values(node: Any, s: dict) -> Iterator[tuple[str, Any]]:
    kind = _json_type(node)
    for other in _OTHER_TYPES:
        if _json_type(other) != kind:
            yield f"type {_json_type(other)} {other!r}", other
    if kind == "number" and isinstance(node, int):
        yield "as float", float(node)
        yield "fraction", node + 0.5
        yield "bool", False
    for kw in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if kw in s:
            for delta in (-1, 0, 1):
                yield f"{kw}{delta:+d}", s[kw] + delta
    if "enum" in s:
        yield "bogus enum value", "BOGUS"
        yield "enum value in lower case", str(s["enum"][0]).lower()
        yield "last enum value", s["enum"][-1]
    if "const" in s:
        yield "bogus const", "BOGUS"
    if kind == "string":
        yield "empty", ""
        yield "trailing newline", node + "\n"
        yield "relative", node.lstrip("/") or "x"
        yield "upper case", node.upper()
        yield "space", node + " x"
        if "pattern" in s:
            yield "NUL", node + "\0"
            yield "prefix", "X" + node
    if kind == "array":
        yield "empty", []
        if node:
            yield "duplicate first", [*node, node[0]]
            yield "drop first", node[1:]
        yield "append null", [*node, None]
        yield "append string", [*node, "extra"]
    if kind == "number" and "minimum" not in s:
        yield "negative", -1
        yield "huge", 2**64


def parse_field(field: str) -> Path:
    """``mounts[2].destination`` / ``linux.sysctl["a.b"]`` -> ``("mounts", 2, "destination")``."""
    parts: list[str | int] = []
    for name, index, key in re.findall(r'([^.\[\]]+)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]', field):
        if index:
            parts.append(int(index))
        elif name:
            parts.append(name)
        else:
            parts.append(key.replace('\\"', '"').replace("\\\\", "\\"))
    return tuple(parts)

"""Compile the config.json JSON Schema into a plain-Python validator module.

Implements the structural half of runtime-spec ``config.md`` / ``config-linux.md``
as written down in ``spec-schemas/runtime/config-schema.json``: the schema is
translated, once, at build time, into ``runtime/spec/_generated_config_validator.py``
so that ``ketch create`` never imports ``jsonschema`` (which costs ~120 ms).

The generated module exposes ``validate(doc) -> None``; it raises
``ketch.runtime.errors.ConfigError(field, message)`` on the first violation, where
``field`` is the dotted path of the offender (``process.args``,
``mounts[2].destination``, ``linux.sysctl["net.ipv4.ip_forward"]``) and ``message``
a short phrase (``is required``, ``must be a string``, ``must be a non-empty array``).
For the root document the field is empty and the message names the document.

Supported JSON Schema (draft 2020-12) keywords: ``type``, ``enum``, ``const``,
``required``, ``properties``, ``patternProperties``, ``additionalProperties``,
``propertyNames``, ``dependentRequired``, ``minProperties``, ``maxProperties``,
``items``, ``minItems``, ``maxItems``, ``uniqueItems``, ``minLength``, ``maxLength``,
``pattern``, ``minimum``, ``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum``,
``$ref`` (local JSON pointers only), ``$defs``, ``allOf``, ``anyOf``, ``oneOf``,
``not``, ``if``/``then``/``else``.  Annotation keywords are ignored (``format``
too, as ``jsonschema`` does by default); ``errorMessage`` (the ajv-errors
convention) supplies the message for ``pattern``/``anyOf``/``oneOf``/``not``
failures.  Any other keyword is a ``CodegenError``: the build fails rather than
silently accepting documents ``jsonschema`` would reject.

Acceptance matches ``jsonschema``: ``1.0`` is an integer, ``True`` is not, and
``pattern`` uses ``re.search``.

This module is stdlib-only: ``setup.py`` loads it by file path at build time.
Command line: ``python -m ketch.runtime.spec.codegen [--schema F] [--output F] [--check]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Any

GENERATOR_VERSION = 1
MODULE_NAME = "_generated_config_validator.py"
ROOT_LABEL = "config.json"

_ANNOTATIONS = frozenset({
    "$schema", "$id", "$comment", "$defs", "definitions", "title", "description",
    "examples", "default", "deprecated", "readOnly", "writeOnly", "format", "errorMessage",
})
_ASSERTIONS = frozenset({
    "$ref", "type", "enum", "const", "required", "properties", "patternProperties",
    "additionalProperties", "propertyNames", "dependentRequired", "minProperties",
    "maxProperties", "items", "minItems", "maxItems", "uniqueItems", "minLength",
    "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "allOf", "anyOf", "oneOf", "not", "if", "then", "else",
})
_TYPE_TESTS = {
    "object": "isinstance({v}, dict)",
    "array": "isinstance({v}, list)",
    "string": "isinstance({v}, str)",
    "boolean": "isinstance({v}, bool)",
    "null": "{v} is None",
    "integer": "_is_int({v})",
    "number": "_is_num({v})",
}
_TYPE_NAMES = {
    "object": "an object", "array": "an array", "string": "a string",
    "boolean": "a boolean", "null": "null", "integer": "an integer", "number": "a number",
}
_ENUM_LIST_MAX = 8

class CodegenError(Exception):
    """The schema uses something this generator cannot translate faithfully."""


def _num(x: Any) -> str:
    return repr(x)


class _Compiler:
    """Turns one schema document into the source of a validator module."""

    def __init__(self, root: dict) -> None:
        self.root = root
        self.functions: list[str] = []
        self.constants: list[str] = []
        self._const_names: dict[str, str] = {}
        self._ref_names: dict[str, str] = {}
        self._bodies: dict[str, str] = {}
        self._used_names: set[str] = set()
        self._counter = 0

    # -- names and constants -------------------------------------------------

    def _new_name(self, hint: str) -> str:
        base = "_v_" + "".join(c if c.isalnum() else "_" for c in hint).strip("_")
        name = base
        while name in self._used_names:
            self._counter += 1
            name = f"{base}_{self._counter}"
        self._used_names.add(name)
        return name

    def _const(self, expr: str, prefix: str) -> str:
        if expr not in self._const_names:
            name = f"_{prefix}{len(self._const_names)}"
            self._const_names[expr] = name
            self.constants.append(f"{name} = {expr}")
        return self._const_names[expr]

    def _resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise CodegenError(f"only local $ref is supported, got {ref!r}")
        node: Any = self.root
        for part in ref[1:].split("/")[1:] if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise CodegenError(f"unresolvable $ref {ref!r}")
            node = node[part]
        return node

    def ref(self, ref: str) -> str:
        """Name of the function for a ``$ref`` target (compiled once, recursion-safe)."""
        if ref not in self._ref_names:
            hint = ref.rsplit("/", 1)[-1] or "root"
            name = self._new_name(hint)
            self._ref_names[ref] = name
            self._append(name, self.body(self._resolve(ref), hint, key_mode=False))
        return self._ref_names[ref]

    # -- functions -----------------------------------------------------------

    def child(self, schema: Any, hint: str, key_mode: bool = False) -> str | None:
        """Name of a function validating ``schema``, or None when it asserts nothing."""
        if schema is True or (isinstance(schema, dict) and not (set(schema) & _ASSERTIONS)):
            self._check_keywords(schema if isinstance(schema, dict) else {})
            return None
        if isinstance(schema, dict) and set(schema) & _ASSERTIONS == {"$ref"} and not key_mode:
            self._check_keywords(schema)
            return self.ref(schema["$ref"])
        lines = self.body(schema, hint, key_mode)
        if not lines:
            return None
        text = "\n".join(lines)
        if text not in self._bodies:  # identical checks share one function
            name = self._new_name(hint)
            self._bodies[text] = name
            self._append(name, lines)
        return self._bodies[text]

    def _append(self, name: str, lines: list[str]) -> None:
        src = [f"def {name}(v: object, p: str) -> None:"]
        src += ["    " + ln for ln in lines or ["return None"]]
        self.functions.append("\n".join(src))

    def _simple(self, schema: Any) -> tuple[str, str] | None:
        """(test, message) when ``schema`` only asserts one type and can be inlined."""
        if isinstance(schema, dict) and set(schema) & _ASSERTIONS == {"$ref"}:
            schema = self._resolve(schema["$ref"])
        if not isinstance(schema, dict) or set(schema) & _ASSERTIONS != {"type"}:
            return None
        t = schema["type"]
        if not isinstance(t, str) or t not in _TYPE_TESTS:
            return None
        self._check_keywords(schema)
        return _TYPE_TESTS[t], "must be " + _TYPE_NAMES[t]

    @staticmethod
    def _check_keywords(schema: dict) -> None:
        unknown = set(schema) - _ASSERTIONS - _ANNOTATIONS
        if unknown:
            raise CodegenError(f"unsupported JSON Schema keyword(s): {sorted(unknown)}")

    def body(self, s: Any, hint: str, key_mode: bool) -> list[str]:
        if s is True:
            return []
        if s is False:
            return [f"_fail(p, {self._msg('is not allowed', key_mode)})"]
        if not isinstance(s, dict):
            raise CodegenError(f"a schema must be an object or a boolean, got {s!r}")
        self._check_keywords(s)
        out: list[str] = []
        if "$ref" in s:
            fn = self.ref(s["$ref"])
            out.append(f"{fn}(v, p)")
        types = s.get("type")
        known: str | None = None
        if types is not None:
            tlist = [types] if isinstance(types, str) else list(types)
            for t in tlist:
                if t not in _TYPE_TESTS:
                    raise CodegenError(f"unknown type {t!r}")
            known = tlist[0] if len(tlist) == 1 else None
            cond = " or ".join(_TYPE_TESTS[t].format(v="v") for t in tlist)
            cond = f"({cond})" if len(tlist) > 1 else cond
            if known == "array" and s.get("minItems", 0) >= 1 and "maxItems" not in s:
                what = "must be a non-empty array"
            else:
                what = "must be " + " or ".join(_TYPE_NAMES[t] for t in tlist)
            out += [f"if not {cond}:", f"    _fail(p, {self._msg(what, key_mode)})"]
        out += self._const_enum(s, known, key_mode)
        out += self._guarded(known, ("integer", "number"), "_is_num(v)", self._numeric(s, key_mode))
        out += self._guarded(known, ("string",), "isinstance(v, str)", self._string(s, key_mode))
        out += self._guarded(known, ("array",), "isinstance(v, list)",
                             self._array(s, hint, key_mode))
        out += self._guarded(known, ("object",), "isinstance(v, dict)",
                             self._object(s, hint, key_mode))
        out += self._combinators(s, hint, key_mode)
        return out

    @staticmethod
    def _guarded(known: str | None, kinds: tuple[str, ...], guard: str,
                 lines: list[str]) -> list[str]:
        if not lines:
            return []
        if known in kinds:
            return lines
        if known is not None:
            return []  # the type check already failed for anything this block applies to
        if len(lines) == 2 and lines[0].startswith("if ") and lines[0].endswith(":"):
            cond = lines[0][3:-1]
            cond = f"({cond})" if " or " in cond else cond
            return [f"if {guard} and {cond}:", lines[1]]  # one `if`, not two nested ones
        return [f"if {guard}:"] + ["    " + ln for ln in lines]

    @staticmethod
    def _msg(text: str, key_mode: bool) -> str:
        return repr(("key " + text) if key_mode else text)

    # -- keyword groups ------------------------------------------------------

    def _const_enum(self, s: dict, known: str | None, key_mode: bool) -> list[str]:
        out: list[str] = []
        if "const" in s:
            c = s["const"]
            text = "must be " + json.dumps(c)
            if isinstance(c, str):
                out += [f"if v != {c!r}:", f"    _fail(p, {self._msg(text, key_mode)})"]
            else:
                lit = self._const(repr(c), "C")
                out += [f"if not _equal(v, {lit}):", f"    _fail(p, {self._msg(text, key_mode)})"]
        if "enum" in s:
            values = s["enum"]
            if not isinstance(values, list) or not values:
                raise CodegenError("enum must be a non-empty array")
            if all(isinstance(x, str) for x in values):
                lit = self._const("frozenset((" + ", ".join(repr(x) for x in values) + ",))", "E")
                test = f"v not in {lit}" if known == "string" else \
                    f"not (isinstance(v, str) and v in {lit})"
            else:
                lit = self._const("(" + ", ".join(repr(x) for x in values) + ",)", "E")
                test = f"not any(_equal(v, x) for x in {lit})"
            if len(values) <= _ENUM_LIST_MAX:
                text = "must be one of " + ", ".join(json.dumps(x) for x in values)
                out += [f"if {test}:", f"    _fail(p, {self._msg(text, key_mode)})"]
            else:
                prefix = ("key " if key_mode else "") + "unknown value "
                out += [f"if {test}:", f"    _fail(p, {prefix!r} + _show(v))"]
        return out

    def _numeric(self, s: dict, key_mode: bool) -> list[str]:
        out: list[str] = []
        for kw, op, text in (("minimum", "<", "must be at least {}"),
                             ("maximum", ">", "must be at most {}"),
                             ("exclusiveMinimum", "<=", "must be greater than {}"),
                             ("exclusiveMaximum", ">=", "must be less than {}")):
            if kw in s:
                bound = s[kw]
                if isinstance(bound, bool) or not isinstance(bound, (int, float)):
                    raise CodegenError(f"{kw} must be a number")
                msg = "must not be negative" if kw == "minimum" and bound == 0 \
                    else text.format(_num(bound))
                out += [f"if v {op} {_num(bound)}:", f"    _fail(p, {self._msg(msg, key_mode)})"]
        return out

    def _string(self, s: dict, key_mode: bool) -> list[str]:
        out: list[str] = []
        if "minLength" in s:
            n = s["minLength"]
            msg = "must not be empty" if n == 1 else f"must be at least {n} characters long"
            out += [f"if len(v) < {n}:", f"    _fail(p, {self._msg(msg, key_mode)})"]
        if "maxLength" in s:
            n = s["maxLength"]
            msg = f"must be at most {n} characters long"
            out += [f"if len(v) > {n}:", f"    _fail(p, {self._msg(msg, key_mode)})"]
        if "pattern" in s:
            rx = self._const(f"re.compile({s['pattern']!r})", "R")
            msg = s.get("errorMessage") or f"must match {s['pattern']}"
            out += [f"if {rx}.search(v) is None:", f"    _fail(p, {self._msg(msg, key_mode)})"]
        return out

    def _array(self, s: dict, hint: str, key_mode: bool) -> list[str]:
        out: list[str] = []
        if "prefixItems" in s:
            raise CodegenError("prefixItems is not supported")
        if "minItems" in s:
            n = s["minItems"]
            msg = "must be a non-empty array" if n == 1 else f"must have at least {n} items"
            out += [f"if len(v) < {n}:", f"    _fail(p, {self._msg(msg, key_mode)})"]
        if "maxItems" in s:
            n = s["maxItems"]
            out += [f"if len(v) > {n}:",
                    f"    _fail(p, {self._msg(f'must have at most {n} items', key_mode)})"]
        if s.get("uniqueItems") is True:
            out += ["if not _unique(v):",
                    f"    _fail(p, {self._msg('must not contain duplicates', key_mode)})"]
        if "items" in s:
            simple = self._simple(s["items"])
            fn = None if simple else self.child(s["items"], hint + "_item")
            if simple:
                test, msg = simple
                out += ["for i, x in enumerate(v):", f"    if not {test.format(v='x')}:",
                        f"        _fail(f'{{p}}[{{i}}]', {msg!r})"]
            elif fn:
                out += ["for i, x in enumerate(v):", f"    {fn}(x, f'{{p}}[{{i}}]')"]
        return out

    def _object(self, s: dict, hint: str, key_mode: bool) -> list[str]:
        out: list[str] = []
        props: dict = s.get("properties", {})
        required: list = s.get("required", [])
        for k, sub in props.items():
            simple = self._simple(sub)
            fn = None if simple else self.child(sub, f"{hint}_{k}")
            path = f"_key(p, {k!r})"
            if k in required:
                out += [f"x = v.get({k!r}, _MISSING)", "if x is _MISSING:",
                        f"    _fail({path}, {self._msg('is required', key_mode)})"]
                if simple:
                    out += [f"if not {simple[0].format(v='x')}:", f"    _fail({path}, {simple[1]!r})"]
                elif fn:
                    out.append(f"{fn}(x, {path})")
            elif simple:
                out += [f"x = v.get({k!r}, _MISSING)",
                        f"if x is not _MISSING and not {simple[0].format(v='x')}:",
                        f"    _fail({path}, {simple[1]!r})"]
            elif fn:
                out += [f"x = v.get({k!r}, _MISSING)", "if x is not _MISSING:",
                        f"    {fn}(x, {path})"]
        for k in required:
            if k not in props:
                out += [f"if {k!r} not in v:",
                        f"    _fail(_key(p, {k!r}), {self._msg('is required', key_mode)})"]
        for k, deps in s.get("dependentRequired", {}).items():
            for d in deps:
                msg = f"is required when {k} is set"
                out += [f"if {k!r} in v and {d!r} not in v:",
                        f"    _fail(_key(p, {d!r}), {self._msg(msg, key_mode)})"]
        for kw, op, text in (("minProperties", "<", "must have at least {} properties"),
                             ("maxProperties", ">", "must have at most {} properties")):
            if kw in s:
                msg = "must not be empty" if kw == "minProperties" and s[kw] == 1 \
                    else text.format(s[kw])
                out += [f"if len(v) {op} {s[kw]}:", f"    _fail(p, {self._msg(msg, key_mode)})"]
        out += self._map_entries(s, hint, props)
        return out

    def _map_entries(self, s: dict, hint: str, props: dict) -> list[str]:
        names = self.child(s["propertyNames"], hint + "_key", key_mode=True) \
            if "propertyNames" in s else None
        patterns = [(self._const(f"re.compile({pat!r})", "R"), self.child(sub, hint + "_pat"))
                    for pat, sub in s.get("patternProperties", {}).items()]
        extra = s.get("additionalProperties", True)
        extra_fn = None if extra is False else self.child(extra, hint + "_value")
        if names is None and not patterns and extra is not False and extra_fn is None:
            return []
        loop: list[str] = []
        if names:
            loop.append(f"{names}(k, _mkey(p, k))")
        if patterns and (extra is False or extra_fn):
            loop.append("matched = False")
        for rx, fn in patterns:
            loop.append(f"if {rx}.search(k) is not None:")
            if extra is False or extra_fn:
                loop.append("    matched = True")
            loop.append(f"    {fn}(x, _mkey(p, k))" if fn else "    pass")
        if extra is False or extra_fn:
            conds = []
            if props:
                names_lit = "frozenset((" + ", ".join(repr(k) for k in props) + ",))"
                conds.append(f"k not in {self._const(names_lit, 'P')}")
            if patterns:
                conds.append("not matched")
            action = "_fail(_mkey(p, k), 'is not allowed')" if extra is False \
                else f"{extra_fn}(x, _mkey(p, k))"
            if conds:
                loop += [f"if {' and '.join(conds)}:", f"    {action}"]
            else:
                loop.append(action)
        return ["for k, x in v.items():"] + ["    " + ln for ln in loop]

    def _combinators(self, s: dict, hint: str, key_mode: bool) -> list[str]:
        out: list[str] = []
        for i, sub in enumerate(s.get("allOf", [])):
            fn = self.child(sub, f"{hint}_all{i}", key_mode)
            if fn:
                out.append(f"{fn}(v, p)")
        for kw in ("anyOf", "oneOf"):
            if kw not in s:
                continue
            branches = s[kw]
            fns = [self.child(b, f"{hint}_{kw}{i}", key_mode) for i, b in enumerate(branches)]
            msg = self._alternatives_message(s, branches)
            tup = "(" + ", ".join(f or "None" for f in fns) + ",)"
            if kw == "anyOf":
                if any(f is None for f in fns):
                    continue
                out += [f"if not any(_matches(f, v, p) for f in {tup}):",
                        f"    _fail(p, {self._msg(msg, key_mode)})"]
            else:
                count = f"sum(1 if f is None else _matches(f, v, p) for f in {tup})"
                many = s.get("errorMessage") or "matches more than one allowed form"
                out += [f"n = {count}", "if n == 0:", f"    _fail(p, {self._msg(msg, key_mode)})",
                        "if n > 1:", f"    _fail(p, {self._msg(many, key_mode)})"]
        if "not" in s:
            fn = self.child(s["not"], hint + "_not", key_mode)
            msg = s.get("errorMessage") or "is not allowed"
            test = f"_matches({fn}, v, p)" if fn else "True"
            out += [f"if {test}:", f"    _fail(p, {self._msg(msg, key_mode)})"]
        if "if" in s:
            cond = self.child(s["if"], hint + "_if", key_mode)
            then = self.child(s.get("then", True), hint + "_then", key_mode)
            other = self.child(s.get("else", True), hint + "_else", key_mode)
            if cond is None:
                if then:
                    out.append(f"{then}(v, p)")
            elif then:
                out += [f"if _matches({cond}, v, p):", f"    {then}(v, p)"]
                if other:
                    out += ["else:", f"    {other}(v, p)"]
            elif other:
                out += [f"if not _matches({cond}, v, p):", f"    {other}(v, p)"]
        return out

    @staticmethod
    def _alternatives_message(s: dict, branches: list) -> str:
        if s.get("errorMessage"):
            return s["errorMessage"]
        names: list[str] = []
        for b in branches:
            if not (isinstance(b, dict) and set(b) - _ANNOTATIONS == {"required"}):
                return "does not match any allowed form"
            names += b["required"]
        return "must set at least one of " + ", ".join(names)


_SUPPORT = ("MISSING", "equal", "is_int", "is_num", "key", "matches", "mkey", "show", "unique")
_FAIL = f'''
def _fail(p: str, msg: str) -> None:
    if p:
        raise ConfigError(p, msg)
    raise ConfigError("", {ROOT_LABEL + " "!r} + msg)
'''.strip("\n")


def _imports(code: str) -> list[str]:
    """Import lines for what the generated ``code`` actually uses (keeps it lint-clean)."""
    lines = ["from __future__ import annotations", ""]
    if "re.compile(" in code:
        lines += ["import re", ""]
    lines.append("from ketch.runtime.errors import ConfigError")
    lines += [f"from ketch.runtime.spec._schema_support import {n} as _{n}"
              for n in _SUPPORT if re.search(rf"\b_{n}\b", code)]
    return lines


def generate(schema: dict, source: bytes = b"", source_name: str = "") -> str:
    """Return the source text of the validator module for ``schema`` (a parsed JSON Schema).

    ``source`` (the schema file's bytes) is fingerprinted as ``SCHEMA_SHA256`` and
    ``SCHEMA_CRC32`` (the runtime compares the cheap CRC to notice a stale module
    without importing hashlib); ``source_name`` only appears in the header comment.
    Raises ``CodegenError`` for schemas using keywords outside the supported subset.
    """
    comp = _Compiler(schema)
    root = comp.child(schema, "root")
    entry = "\n".join([
        "def validate(doc: object) -> None:",
        '    """Raise ConfigError(field, message) on the first schema violation in ``doc``."""',
        f'    {root}(doc, "")' if root else "    return None",
    ])
    body = ["\n".join(comp.constants)] if comp.constants else []
    body += [_FAIL, *comp.functions, entry]
    code = "\n\n\n".join(body)
    header = [
        f"# Generated by ketch.runtime.spec.codegen (v{GENERATOR_VERSION})"
        + (f" from {source_name}." if source_name else "."),
        "# Do not edit: setup.py (build_py) rebuilds it, or run",
        "# `python -m ketch.runtime.spec.codegen`.",
        '"""Structural validator for config.json (runtime-spec config.md, config-linux.md).',
        "",
        "Generated from spec-schemas/runtime/config-schema.json; imports no jsonschema.",
        '"""',
        "",
        *_imports(code),
        "",
        f"SCHEMA_SHA256 = {hashlib.sha256(source).hexdigest()!r}",
        f"SCHEMA_CRC32 = {zlib.crc32(source)}",
        f"GENERATOR_VERSION = {GENERATOR_VERSION}",
    ]
    return "\n".join(header) + "\n\n\n" + code + "\n"


def generate_from_file(schema_path: str | os.PathLike[str]) -> str:
    """Read a schema file and return the generated module source (see ``generate``)."""
    raw = Path(schema_path).read_bytes()
    return generate(json.loads(raw), raw, Path(schema_path).name)


def write_module(schema_path: str | os.PathLike[str], out_path: str | os.PathLike[str]) -> bool:
    """Generate ``out_path`` from ``schema_path``; return True if the file changed.

    The file is replaced atomically and left alone when already up to date.
    """
    src = generate_from_file(schema_path)
    out = Path(out_path)
    try:
        if out.read_text(encoding="utf-8") == src:
            return False
    except OSError:
        pass
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".codegen-", suffix=".py", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(src)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def default_schema_path() -> Path:
    """The config schema of this source tree (``spec-schemas/runtime/config-schema.json``)."""
    return Path(__file__).resolve().parents[2] / "spec-schemas" / "runtime" / "config-schema.json"


def default_output_path() -> Path:
    """Where the generated module lives beside this file."""
    return Path(__file__).resolve().with_name(MODULE_NAME)


def main(argv: list[str] | None = None) -> int:
    """CLI: regenerate the module, or with ``--check`` exit 1 if it is out of date."""
    ap = argparse.ArgumentParser(prog="python -m ketch.runtime.spec.codegen",
                                 description=__doc__.split("\n", 1)[0])
    ap.add_argument("--schema", default=str(default_schema_path()))
    ap.add_argument("--output", default=str(default_output_path()))
    ap.add_argument("--check", action="store_true", help="only report whether --output is stale")
    args = ap.parse_args(argv)
    if args.check:
        try:
            current = Path(args.output).read_text(encoding="utf-8")
        except OSError:
            current = None
        if current != generate_from_file(args.schema):
            print(f"{args.output} is out of date with {args.schema}", file=sys.stderr)
            return 1
        return 0
    changed = write_module(args.schema, args.output)
    print(f"{'wrote' if changed else 'up to date:'} {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

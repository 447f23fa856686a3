"""ketch.runtime.spec.codegen: the build-time compiler from JSON Schema to Python.

Covers the installed module being up to date with spec-schemas/runtime/config-schema.json,
the CLI, unsupported keywords, and agreement with jsonschema on synthetic schemas
using keywords the config schema itself does not (yet) use.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

import ketch.schemas
from ketch.runtime.errors import ConfigError
from ketch.runtime.spec import _generated_config_validator, codegen, validate

SCHEMA = Path(ketch.schemas.SCHEMA_DIR, "runtime", "config-schema.json")


def test_installed_module_is_up_to_date(tmp_path):
    fresh = tmp_path / codegen.MODULE_NAME
    assert codegen.write_module(SCHEMA, fresh) is True
    installed = Path(_generated_config_validator.__file__).read_text(encoding="utf-8")
    assert installed == fresh.read_text(encoding="utf-8"), (
        "the generated validator is stale: reinstall (pip install -e .) or run "
        "python -m ketch.runtime.spec.codegen")


def test_runtime_uses_the_generated_module():
    assert validate.structural_validator_origin() == "generated"


def test_generation_is_deterministic():
    source = SCHEMA.read_bytes()
    first = codegen.generate(json.loads(source), source, SCHEMA.name)
    assert codegen.generate(json.loads(source), source, SCHEMA.name) == first


def test_write_module_leaves_an_up_to_date_file_alone(tmp_path):
    out = tmp_path / "v.py"
    assert codegen.write_module(SCHEMA, out) is True
    mtime = out.stat().st_mtime_ns
    assert codegen.write_module(SCHEMA, out) is False
    assert out.stat().st_mtime_ns == mtime


def test_cli_check_and_write(tmp_path):
    out = tmp_path / "v.py"
    cmd = [sys.executable, "-m", "ketch.runtime.spec.codegen", "--schema", str(SCHEMA),
           "--output", str(out)]
    assert subprocess.run([*cmd, "--check"], capture_output=True).returncode == 1
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    assert subprocess.run([*cmd, "--check"], capture_output=True).returncode == 0


def test_generated_module_passes_ruff(tmp_path):
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed in this environment")
    out = tmp_path / "_generated_config_validator.py"
    codegen.write_module(SCHEMA, out)
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([str(ruff), "check", "--no-respect-gitignore", "--config",
                           str(root / "pyproject.toml"), str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_stale_module_is_replaced_in_memory(monkeypatch):
    monkeypatch.setattr(_generated_config_validator, "SCHEMA_CRC32", -1)
    monkeypatch.setattr(validate, "_structural", None)
    assert validate.structural_validator_origin() == "in-memory"
    with pytest.raises(ConfigError, match="ociVersion: is required"):
        validate.validate_config({"root": {"path": "rootfs"}})
    monkeypatch.setattr(validate, "_structural", None)  # let later tests reload


@pytest.mark.parametrize("schema", [
    {"type": "object", "contains": {"type": "string"}},
    {"prefixItems": [{"type": "string"}]},
    {"$ref": "https://example.com/other.json"},
    {"$ref": "#/$defs/missing"},
    {"type": "decimal"},
    {"multipleOf": 2},
    {"unevaluatedProperties": False},
])
def test_unsupported_schemas_fail_the_build(schema):
    with pytest.raises(codegen.CodegenError):
        codegen.generate(schema)


def _compile(schema: dict):
    namespace: dict = {}
    exec(compile(codegen.generate(schema), "<test>", "exec"), namespace)
    return namespace["validate"]


_INSTANCES = [None, True, False, 0, 1, 1.0, 2, 2.5, -3, 10, 11, "", "a", "ab", "abc", "A1",
              "x\n", [], [1], [1, 1], [1, True], [1, 2, 3], ["a", "b"], {}, {"a": 1},
              {"a": "x"}, {"b": 1}, {"a": 1, "b": 2}, {"aa": 1, "c": True}, {"": 1},
              {"a": {"a": {"a": None}}}, {"kind": "p"}, {"kind": "c", "n": 1}]

_SCHEMAS = {
    "multi-type": {"type": ["string", "null"], "minLength": 2},
    "const-int": {"const": 1},
    "const-object": {"const": {"a": 1}},
    "enum-mixed": {"enum": [1, "a", None, [1, 1]]},
    "exclusive": {"exclusiveMinimum": 0, "exclusiveMaximum": 10},
    "number": {"type": "number", "minimum": -3, "maximum": 2.5},
    "unique": {"type": "array", "uniqueItems": True, "maxItems": 2},
    "closed-object": {"properties": {"a": {"type": "integer"}}, "additionalProperties": False},
    "pattern-properties": {"patternProperties": {"^a": {"type": "string"}},
                           "additionalProperties": {"type": "boolean"}},
    "pattern-closed": {"patternProperties": {"^a+$": True}, "additionalProperties": False},
    "property-count": {"minProperties": 1, "maxProperties": 1},
    "property-names": {"propertyNames": {"pattern": "^[a-z]+$", "maxLength": 1}},
    "one-of": {"oneOf": [{"type": "integer"}, {"minimum": 2}]},
    "any-of": {"anyOf": [{"type": "string", "maxLength": 1}, {"type": "array"}]},
    "all-of": {"allOf": [{"minimum": 0}, {"maximum": 10}, True]},
    "not": {"not": {"type": "string"}},
    "not-empty-schema": {"properties": {"a": {"not": {}}}},
    "if-then-else": {"if": {"properties": {"kind": {"const": "p"}}},
                     "then": {"maxProperties": 1}, "else": {"required": ["n"]}},
    "if-then": {"if": {"type": "string"}, "then": {"minLength": 2}},
    "false-schema": {"properties": {"a": False}},
    "recursive": {"$defs": {"node": {"type": ["object", "null"],
                                     "properties": {"a": {"$ref": "#/$defs/node"}}}},
                  "$ref": "#/$defs/node"},
    "root-ref": {"type": ["object", "integer"], "properties": {"a": {"$ref": "#"}}},
    "dependent": {"dependentRequired": {"a": ["b"]}},
    "string-bounds": {"type": "string", "minLength": 1, "maxLength": 2, "pattern": "^[a-z]"},
    "items-of-objects": {"type": "array", "minItems": 2,
                         "items": {"type": "object", "required": ["a"]}},
    "format-is-annotation": {"type": "string", "format": "email"},
}


@pytest.mark.parametrize("name", sorted(_SCHEMAS))
def test_synthetic_schemas_agree_with_jsonschema(name):
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **_SCHEMAS[name]}
    check = _compile(schema)
    reference = jsonschema.Draft202012Validator(schema)
    wrong = []
    for doc in _INSTANCES:
        try:
            check(doc)
            accepted = True
        except ConfigError:
            accepted = False
        if accepted != reference.is_valid(doc):
            wrong.append(f"{doc!r}: generated {'accepts' if accepted else 'rejects'}")
    assert wrong == []

"""load_config(bundle): reading config.json from a bundle (runtime-spec bundle.md, config.md).

Also checks the hot path's import discipline: loading and validating a config in a
fresh interpreter must not import jsonschema (it costs ~120 ms at container start).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from ketch.runtime.errors import ConfigError
from ketch.runtime.spec import validate
from ketch.runtime.spec.default import default_spec
from ketch.runtime.spec.validate import load_config, parse_config


def _bundle(tmp_path, content: bytes | str) -> str:
    data = content.encode() if isinstance(content, str) else content
    (tmp_path / "config.json").write_bytes(data)
    return str(tmp_path)


def _message(bundle) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(bundle)
    assert info.value.field == ""
    assert "\n" not in str(info.value)
    return str(info.value)


def test_loads_and_returns_the_document(tmp_path):
    doc = default_spec()
    assert load_config(_bundle(tmp_path, json.dumps(doc))) == doc


def test_loads_runc_bundle(tmp_path, runc_spec):
    assert load_config(_bundle(tmp_path, json.dumps(runc_spec)))["hostname"] == "runc"


def test_accepts_pathlike(tmp_path):
    _bundle(tmp_path, json.dumps(default_spec()))
    assert load_config(tmp_path)["ociVersion"] == "1.0.2-dev"


def test_missing_bundle(tmp_path):
    missing = tmp_path / "nope"
    assert _message(missing) == f"bundle {missing} does not exist"


def test_missing_config(tmp_path):
    assert _message(tmp_path) == f"cannot read {tmp_path}/config.json: no such file or directory"


def test_config_is_a_directory(tmp_path):
    (tmp_path / "config.json").mkdir()
    assert _message(tmp_path) == f"cannot read {tmp_path}/config.json: is a directory"


def test_unreadable_config(tmp_path, monkeypatch):
    _bundle(tmp_path, "{}")

    def denied(path: str) -> bytes:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(validate, "_read_bytes", denied)
    assert _message(tmp_path) == f"cannot read {tmp_path}/config.json: permission denied"


@pytest.mark.parametrize(("content", "detail"), [
    ("", "Expecting value (line 1, column 1)"),
    ('{\n  "ociVersion": "1.0.0"\n  "root": {}\n}', "Expecting ',' delimiter (line 3, column 3)"),
    ('{"ociVersion": "1.0.0"', "Expecting ',' delimiter (line 1, column 23)"),
    ('{"a": "b', "Unterminated string starting at (line 1, column 7)"),
    ('{"a": NaN}', "NaN is not a JSON value"),
    ('{"a": -Infinity}', "-Infinity is not a JSON value"),
    ("\ufeff{}", "Unexpected UTF-8 BOM (decode using utf-8-sig) (line 1, column 1)"),
    (b'{"a":\n "\xff"}', "not UTF-8 (line 2, column 3)"),
    ("[" * 100000 + "]" * 100000, "nested too deeply"),
], ids=["empty", "missing-comma", "truncated", "unterminated", "nan", "infinity", "bom",
        "latin1", "deep"])
def test_invalid_json(tmp_path, content, detail):
    assert _message(_bundle(tmp_path, content)) == \
        f"invalid JSON in {tmp_path}/config.json: {detail}"


def test_not_an_object(tmp_path):
    assert _message(_bundle(tmp_path, "[]")) == "config.json must be an object"


def test_schema_error_after_parse(tmp_path):
    doc = default_spec()
    doc["mounts"][2]["destination"] = 7
    with pytest.raises(ConfigError, match=r"^mounts\[2\]\.destination: must be a string$"):
        load_config(_bundle(tmp_path, json.dumps(doc)))


def test_parse_config_names_the_source():
    with pytest.raises(ConfigError, match=r"^invalid JSON in x\.json: Expecting value \(line 1, column 1\)$"):
        parse_config(b"", "x.json")


def test_hot_path_does_not_import_jsonschema(tmp_path):
    _bundle(tmp_path, json.dumps(default_spec()))
    code = textwrap.dedent(f"""
        import sys
        from ketch.runtime.spec.validate import load_config, structural_validator_origin
        load_config({str(tmp_path)!r})
        heavy = sorted(m for m in sys.modules
                       if m.split(".")[0] in ("jsonschema", "referencing", "rpds")
                       or m in ("ketch.runtime.spec.codegen", "hashlib"))
        print(structural_validator_origin(), heavy)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["generated", "[]"]

"""Load and validate a bundle's config.json (runtime-spec ``bundle.md``, ``config.md``, ``config-linux.md``).

Two passes, both raising ``ketch.runtime.errors.ConfigError(field, message)`` on the
first problem (``str(err)`` is ``"<field>: <message>"``):

1. structure: the module ``_generated_config_validator``, generated at build time
   from ``spec-schemas/runtime/config-schema.json`` by ``codegen.py`` (no
   ``jsonschema`` import at container start);
2. meaning: ``semantics.check_semantics`` (runc's validator rules).

If the generated module is missing, or was generated from a different schema file
than the one installed (an editable checkout whose schema changed since
``pip install -e .``), the validator is regenerated in memory from the schema;
``structural_validator_origin()`` tells which one is in use.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable

from ketch.runtime.errors import ConfigError
from ketch.runtime.spec.semantics import check_semantics

__all__ = ["CONFIG_NAME", "load_config", "parse_config", "structural_validator_origin",
           "validate_config"]

CONFIG_NAME = "config.json"

_structural: Callable[[object], None] | None = None
_origin = ""


def validate_config(doc: dict) -> None:
    """Check a parsed config.json document against the runtime-spec.

    ``doc`` is the decoded JSON (normally a dict; a non-object is reported as an
    error, not a crash). Raises ``ConfigError`` with ``field`` the dotted path of
    the offender (``process.args``, ``mounts[2].destination``,
    ``linux.namespaces[0].type``; empty for the whole document) and ``message`` a
    short phrase, e.g. ``ociVersion: is required``, ``root.path: must be a
    string``, ``hostname: cannot be set without a private UTS namespace``.
    Spec: runtime-spec ``config.md`` and ``config-linux.md``.
    """
    _load_structural()(doc)
    check_semantics(doc)


def load_config(bundle: str | os.PathLike[str]) -> dict:
    """Read, parse and validate ``<bundle>/config.json``; return the document.

    Raises ``ConfigError`` (empty ``field``) with a one-line message when the bundle
    or file is missing or unreadable (``cannot read /b/config.json: no such file or
    directory``) or the file is not JSON (``invalid JSON in /b/config.json: Expecting
    ',' delimiter (line 3, column 5)``), then whatever ``validate_config`` raises.
    Spec: runtime-spec ``bundle.md`` (config.json at the bundle root), ``config.md``.
    """
    bundle = os.fspath(bundle)
    path = os.path.join(bundle, CONFIG_NAME)
    try:
        raw = _read_bytes(path)
    except FileNotFoundError:
        if not os.path.isdir(bundle):
            raise ConfigError("", f"bundle {bundle} does not exist") from None
        raise ConfigError("", f"cannot read {path}: no such file or directory") from None
    except OSError as err:
        reason = (err.strerror or str(err)).lower()
        raise ConfigError("", f"cannot read {path}: {reason}") from None
    doc = parse_config(raw, path)
    validate_config(doc)
    return doc


def parse_config(raw: bytes, path: str = CONFIG_NAME) -> object:
    """Decode config.json bytes (UTF-8 JSON, no NaN/Infinity); ``path`` names it in errors.

    Raises ``ConfigError`` (empty ``field``) saying where the JSON is broken.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise ConfigError(
            "", f"invalid JSON in {path}: not UTF-8 (line {line}, column {column})") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise ConfigError("", f"invalid JSON in {path}: {err.msg} (line {err.lineno}, "
                              f"column {err.colno})") from None
    except _NotJSON as err:
        raise ConfigError("", f"invalid JSON in {path}: {err} is not a JSON value") from None
    except RecursionError:
        raise ConfigError("", f"invalid JSON in {path}: nested too deeply") from None


def structural_validator_origin() -> str:
    """``"generated"`` (the built module) or ``"in-memory"`` (regenerated from the schema)."""
    _load_structural()
    return _origin


class _NotJSON(ValueError):
    pass


def _reject_constant(name: str) -> object:
    raise _NotJSON(name)


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _schema_file() -> str | None:
    import ketch.schemas  # stdlib-only package; locates the installed JSON files

    path = os.path.join(ketch.schemas.SCHEMA_DIR, "runtime", "config-schema.json")
    return path if os.path.isfile(path) else None


def _load_structural() -> Callable[[object], None]:
    global _structural, _origin
    if _structural is not None:
        return _structural
    try:
        from ketch.runtime.spec import _generated_config_validator as generated
    except ImportError:
        generated = None
    schema = _schema_file()
    if schema is not None:
        raw = _read_bytes(schema)
        if generated is None or zlib.crc32(raw) != generated.SCHEMA_CRC32:
            _structural, _origin = _compile_in_memory(raw, os.path.basename(schema)), "in-memory"
            return _structural
    if generated is None:
        raise ImportError("ketch.runtime.spec._generated_config_validator is missing and "
                          "config-schema.json was not found: reinstall ketch")
    _structural, _origin = generated.validate, "generated"
    return _structural


def _compile_in_memory(raw: bytes, name: str) -> Callable[[object], None]:
    from ketch.runtime.spec import codegen

    source = codegen.generate(json.loads(raw), raw, name)
    namespace: dict[str, object] = {"__name__": "ketch.runtime.spec._config_validator_in_memory"}
    exec(compile(source, f"<generated from {name}>", "exec"), namespace)
    return namespace["validate"]  # type: ignore[return-value]

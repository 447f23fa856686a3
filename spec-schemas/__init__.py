"""Ketch's JSON Schemas for OCI documents (package ``ketch.schemas``; the JSON files are package data).

Written by Ketch from the specification texts (not copies of the upstream schema files):

- ``runtime/config-schema.json``: runtime-spec ``config.md`` + ``config-linux.md`` (config.json);
- ``runtime/state-schema.json``: runtime-spec ``runtime.md#state``;
- ``runtime/features-schema.json``: runtime-spec ``features.md`` + ``features-linux.md``;
- ``image/descriptor-schema.json``: image-spec ``descriptor.md`` (+ ``image-index.md`` platform);
- ``image/manifest-schema.json``: image-spec ``manifest.md``;
- ``image/index-schema.json``: image-spec ``image-index.md``;
- ``image/config-schema.json``: image-spec ``config.md``;
- ``image/oci-layout-schema.json``: image-spec ``image-layout.md#oci-layout-file``;
- ``image/layout-index-schema.json``: image-spec ``image-layout.md#indexjson-file``.

All are JSON Schema draft 2020-12; image schemas ``$ref`` each other by relative URI.
This module imports only the stdlib: ``validator()`` imports ``jsonschema`` when
called, so the runtime's hot path (which uses the generated validator of
``ketch.runtime.spec``) never loads it.
"""

from __future__ import annotations

import json
import os

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~2 ms at container start
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

# A str, not a Path: importing pathlib costs milliseconds on the runtime's start path.
SCHEMA_DIR = os.path.dirname(os.path.abspath(__file__))
KINDS = ("runtime", "image")


def schema_path(kind: str, name: str) -> Path:
    """Path of ``<kind>/<name>-schema.json``, e.g. ``schema_path("image", "manifest")``."""
    from pathlib import Path

    if kind not in KINDS:
        raise ValueError(f"unknown schema kind {kind!r}; expected one of {KINDS}")
    path = Path(SCHEMA_DIR, kind, f"{name}-schema.json")
    if not path.is_file():
        raise FileNotFoundError(f"no schema {kind}/{name}-schema.json in {SCHEMA_DIR}")
    return path


def schema_names(kind: str) -> list[str]:
    """Names of the schemas of ``kind`` (``["config", "features", "state"]`` for runtime)."""
    suffix = "-schema.json"
    return sorted(f[: -len(suffix)] for f in os.listdir(os.path.join(SCHEMA_DIR, kind))
                  if f.endswith(suffix))


def load_schema(kind: str, name: str) -> dict[str, Any]:
    """The parsed schema document ``<kind>/<name>-schema.json``."""
    return json.loads(schema_path(kind, name).read_text(encoding="utf-8"))


def validator(kind: str, name: str) -> Any:
    """A ``jsonschema.Draft202012Validator`` for ``<kind>/<name>``.

    Every schema of the same kind is registered by its ``$id`` so that cross-file
    ``$ref`` (manifest -> descriptor) resolves offline. Imports ``jsonschema``.
    """
    import jsonschema

    docs = [load_schema(kind, n) for n in schema_names(kind)]
    schema = load_schema(kind, name)
    try:
        from referencing import Registry, Resource
    except ImportError:  # jsonschema < 4.18 has no referencing library
        store = {d["$id"]: d for d in docs}
        resolver = jsonschema.RefResolver.from_schema(schema, store=store)
        return jsonschema.Draft202012Validator(schema, resolver=resolver)
    registry = Registry().with_resources((d["$id"], Resource.from_contents(d)) for d in docs)
    return jsonschema.Draft202012Validator(schema, registry=registry)


def errors(kind: str, name: str, doc: Any) -> list[str]:
    """Human-readable schema violations of ``doc`` (empty when valid), sorted by path."""
    found = validator(kind, name).iter_errors(doc)
    return sorted(f"{e.json_path}: {e.message}" for e in found)

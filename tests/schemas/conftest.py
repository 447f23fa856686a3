"""Fixtures for the schema tests: jsonschema validators (the reference) and runc's output."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import ketch.schemas


@pytest.fixture(scope="session")
def config_jsonschema():
    """jsonschema's validator for spec-schemas/runtime/config-schema.json (the reference)."""
    return ketch.schemas.validator("runtime", "config")


@pytest.fixture(scope="session")
def runc_spec(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The config.json that ``runc spec`` writes."""
    return _runc_spec(tmp_path_factory.mktemp("runc-spec"), [])


@pytest.fixture(scope="session")
def runc_spec_rootless(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The config.json that ``runc spec --rootless`` writes."""
    return _runc_spec(tmp_path_factory.mktemp("runc-spec-rootless"), ["--rootless"])


def _runc_spec(bundle: Path, flags: list[str]) -> dict:
    if shutil.which("runc") is None:
        pytest.skip("runc is not installed")
    subprocess.run(["runc", "spec", *flags, "--bundle", str(bundle)], check=True)
    return json.loads((bundle / "config.json").read_text())

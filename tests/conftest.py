"""Fixtures shared by every test directory."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

import pytest


def _installed(pkg: str) -> bool:
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
    return p.returncode == 0 and "ok installed" in p.stdout


def _ensure(*pkgs: str) -> None:
    missing = [p for p in pkgs if not _installed(p)]
    if not missing:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


@pytest.fixture(scope="session")
def ensure_debian_packages() -> Callable[..., None]:
    """``ensure_debian_packages(*names)``: apt-get install what is missing (the tests
    run as root, as CI does); a package that cannot be installed fails, never skips."""
    return _ensure

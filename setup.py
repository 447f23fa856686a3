"""Build glue that pyproject.toml cannot express.

- The sources of ``ketch.runtime`` and ``ketch.image`` live in ``runtime/`` and
  ``image/`` (the project layout), so packages and package_dir are computed here.
- ``spec-schemas/`` ships as package data of ``ketch.schemas``.
- The syscall seam is a cffi API-mode (out-of-line) extension compiled at
  install time (``runtime/syscalls/_build.py``).
"""

import os

from setuptools import setup

SOURCE_ROOTS = {"ketch.runtime": "runtime", "ketch.image": "image"}


def _packages() -> tuple[list[str], dict[str, str]]:
    packages: list[str] = []
    package_dir: dict[str, str] = {"ketch.schemas": "spec-schemas"}
    for name, root in SOURCE_ROOTS.items():
        package_dir[name] = root
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith((".", "__"))]
            if "__init__.py" in filenames:
                rel = os.path.relpath(dirpath, root)
                packages.append(name if rel == "." else name + "." + rel.replace(os.sep, "."))
    packages.append("ketch.schemas")
    return packages, package_dir


packages, package_dir = _packages()

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={"ketch.schemas": ["*.json", "*/*.json"]},
    cffi_modules=["runtime/syscalls/_build.py:ffibuilder"],
)

"""Build glue that pyproject.toml cannot express.

- The sources of ``ketch.runtime`` and ``ketch.image`` live in ``runtime/`` and
  ``image/`` (the project layout), so packages and package_dir are computed here.
- ``spec-schemas/`` ships as package data of ``ketch.schemas``.
- The syscall seam is a cffi API-mode (out-of-line) extension compiled at
  install time (``runtime/syscalls/_build.py``).
- The config.json validator ``ketch.runtime.spec._generated_config_validator`` is
  generated from ``spec-schemas/runtime/config-schema.json`` by
  ``runtime/spec/codegen.py`` (stdlib only, loaded by file path): ``build_py``
  writes it into the build directory for wheels, and into ``runtime/spec/`` for
  editable installs (setuptools' editable_wheel sets ``editable_mode`` and maps
  the packages to the source tree).
"""

import importlib.util
import os

from setuptools import setup
from setuptools.command.build_py import build_py as _build_py

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG_SCHEMA = os.path.join(HERE, "spec-schemas", "runtime", "config-schema.json")

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
    # the schema folders hold only JSON: data packages of ketch.schemas
    packages += ["ketch.schemas", "ketch.schemas.runtime", "ketch.schemas.image"]
    return packages, package_dir


packages, package_dir = _packages()


def _codegen():
    """runtime/spec/codegen.py, loaded by path (the package is not importable yet)."""
    path = os.path.join(HERE, "runtime", "spec", "codegen.py")
    spec = importlib.util.spec_from_file_location("_ketch_codegen", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class build_py(_build_py):
    """build_py that also generates the config.json validator module."""

    def _generated_target(self, module_name: str) -> str:
        if getattr(self, "editable_mode", False):  # editable: packages map to the source tree
            return os.path.join(HERE, "runtime", "spec", module_name)
        return os.path.join(self.build_lib, "ketch", "runtime", "spec", module_name)

    def run(self) -> None:
        super().run()  # first: it would copy an in-tree (editable) module over ours
        codegen = _codegen()
        target = self._generated_target(codegen.MODULE_NAME)
        if codegen.write_module(CONFIG_SCHEMA, target):
            self.announce(f"generated {target}", level=2)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        if not getattr(self, "editable_mode", False):
            target = self._generated_target(_codegen().MODULE_NAME)
            if target not in outputs:
                outputs.append(target)
        return outputs


setup(
    packages=packages,
    package_dir=package_dir,
    package_data={"ketch.schemas": ["*.json", "*/*.json"]},
    cffi_modules=["runtime/syscalls/_build.py:ffibuilder"],
    cmdclass={"build_py": build_py},
)

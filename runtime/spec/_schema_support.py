"""Helpers shared by the generated config.json validator (see ``codegen.py``).

Part of the structural check of runtime-spec ``config.md`` / ``config-linux.md``.
The predicates follow JSON Schema's data model as ``jsonschema`` implements it:
``1.0`` is an integer, booleans are neither integers nor numbers, and ``const`` /
``enum`` / ``uniqueItems`` compare with ``_equal`` (``True`` differs from ``1``).
Stdlib only, imported at container start.
"""

from __future__ import annotations

from collections.abc import Callable

from ketch.runtime.errors import ConfigError

MISSING = object()


def key(p: str, k: str) -> str:
    """Path of declared property ``k`` under ``p`` (``process`` + ``cwd`` -> ``process.cwd``)."""
    return p + "." + k if p else k


def mkey(p: str, k: str) -> str:
    """Path of map entry ``k`` under ``p`` (``linux.sysctl["net.ipv4.ip_forward"]``)."""
    return p + '["' + k.replace("\\", "\\\\").replace('"', '\\"') + '"]'


def is_int(v: object) -> bool:
    """JSON Schema ``integer``: an int that is not a bool, or an integral float."""
    if isinstance(v, bool):
        return False
    return isinstance(v, int) or (isinstance(v, float) and v.is_integer())


def is_num(v: object) -> bool:
    """JSON Schema ``number``: int or float, not bool."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def equal(a: object, b: object) -> bool:
    """JSON equality as JSON Schema defines it (``True != 1``, ``1 == 1.0``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
        return False
    return a == b


def unique(v: list) -> bool:
    """True when no two items of ``v`` are ``equal``."""
    return all(not equal(v[i], v[j]) for i in range(len(v)) for j in range(i + 1, len(v)))


def matches(fn: Callable[[object, str], None], v: object, p: str) -> bool:
    """Whether the generated check ``fn`` accepts ``v`` (used by anyOf/oneOf/not/if)."""
    try:
        fn(v, p)
    except ConfigError:
        return False
    return True


def show(v: object) -> str:
    """A short rendering of an offending value for a message."""
    s = '"' + v + '"' if isinstance(v, str) else repr(v)
    return s if len(s) <= 60 else s[:57] + "..."

"""The seam between the verbs and the runtime library.

Verbs call ``get().Container`` and ``get().list_containers``, which are
``ketch.runtime.container``'s (runtime-spec ``runtime.md`` operations:
create, start, state, kill, delete). Tests install a stand-in with ``use``.
The library is imported on first use, so ``ketch spec`` and ``--help`` never
load it.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

_override: object = None


def use(backend: object) -> None:
    """Serve ``backend`` (an object with ``Container`` and ``list_containers``)
    instead of ``ketch.runtime.container``; ``None`` restores the library."""
    global _override
    _override = backend


def get() -> ModuleType:
    """The object whose ``Container`` / ``list_containers`` the verbs call."""
    if _override is not None:
        return _override  # type: ignore[return-value]
    from ketch.runtime import container

    return container

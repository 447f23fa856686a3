"""Start-up of a ``ketch-image`` process: the console-script entry point, and the
cyclic garbage collector while the command's code loads.

Nearly every object created while the interpreter loads click, a command's module
and the HTTP stack (requests, urllib3, http.client, ssl) lives as long as the
process, yet the collector scans them: about 12 ms of collections in a ``push``.
Pausing the collector only defers that work (the first collection after it is
enabled again scans everything created meanwhile), so start-up pauses it and then
``gc.freeze()`` moves those objects to the permanent generation that collections
skip. Only a process started by :func:`main` (or ``cli.main``) does this: a
process that merely imports the package keeps its collector as it was.

Standard library only, so that the pause begins before click is imported.
"""

from __future__ import annotations

import gc
import sys

# not typing.TYPE_CHECKING: typing is imported later, with the collector paused
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

_owns_process = False  # main() runs this process: its collector is ours to handle
_paused = False  # the collector is paused by begin()


def main() -> NoReturn:
    """Console-script entry point of ``ketch-image``: :func:`ketch.image.cli.main`
    with the collector paused from before the CLI's imports."""
    begin()
    from ketch.image.cli import main as cli_main

    cli_main()


def begin() -> None:
    """Pause the collector until :func:`end` (idempotent)."""
    global _owns_process, _paused
    _owns_process = True
    if gc.isenabled():
        gc.disable()
        _paused = True


def end() -> None:
    """The command's code is loaded: freeze the objects alive now and resume the
    collector. Does nothing unless :func:`begin` paused it."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()


def load_http_stack() -> None:
    """Import ``requests`` as part of start-up, for a command about to talk to a
    registry: with the collector paused and, in a process run by :func:`main`,
    the new objects frozen as in :func:`end`. Elsewhere (a library user) the import
    is left to the registry client, which pauses the collector around it."""
    if not _owns_process or "requests" in sys.modules:
        return
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        import requests.adapters  # noqa: F401 (what registry.client uses)
        import urllib3.util.retry  # noqa: F401
    finally:
        if was_enabled:
            gc.freeze()
            gc.enable()

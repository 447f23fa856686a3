"""``ketch``: runc's command line (the OCI runtime-spec operations plus run,
list and spec) over the ``ketch.runtime.container`` library.

``main`` is the console script. The package keeps its import cost low: the
argv grammar, the log formats and only the chosen verb's module are loaded
(no click, jsonschema or requests on this path).
"""

from __future__ import annotations

import gc
import sys

# Start-up: the collector is paused from main() until the chosen verb's module has
# loaded (end_start_up). Nearly everything the imports create lives as long as the
# process; gc.freeze() moves it to the permanent generation that collections, and
# the final one at interpreter exit, skip. Pausing alone would only defer the scan.
_start_up_paused = False


def main(argv: list[str] | None = None) -> int:
    """Run ``ketch`` with ``argv`` (default ``sys.argv``); returns the exit status."""
    global _start_up_paused
    if gc.isenabled():
        gc.disable()
        _start_up_paused = True
    try:
        if sys.stdin is None or sys.stdout is None or sys.stderr is None:
            from ketch.runtime.stdio import fill_closed_stdio

            fill_closed_stdio()
        from ketch.runtime.cli.app import run

        return run(list(sys.argv if argv is None else argv))
    finally:
        end_start_up()  # when no verb ran (help, usage errors)


def end_start_up() -> None:
    """The verb's module is loaded: freeze what start-up created and resume the
    collector. Does nothing unless :func:`main` paused it (a process that only
    imports the CLI modules keeps its collector as it was)."""
    global _start_up_paused
    if _start_up_paused:
        _start_up_paused = False
        gc.freeze()
        gc.enable()



"""``ketch``: runc's command line (the OCI runtime-spec operations plus run,
list and spec) over the ``ketch.runtime.container`` library.

``main`` is the console script. The package keeps its import cost low: the
argv grammar, the log formats and only the chosen verb's module are loaded
(no click, jsonschema or requests on this path).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run ``ketch`` with ``argv`` (default ``sys.argv``); returns the exit status."""
    from ketch.runtime.cli.app import run

    return run(list(sys.argv if argv is None else argv))

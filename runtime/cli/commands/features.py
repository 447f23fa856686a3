"""``ketch features``: the runtime-spec features document (features.md), indented like runc's."""

from __future__ import annotations

import json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ketch.runtime.cli.app import Context


def run(ctx: Context) -> int:
    from ketch.runtime.cli import output
    from ketch.runtime.features import features

    output.write(json.dumps(features(), indent=4) + "\n")
    return 0

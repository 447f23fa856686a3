"""``python -m ketch.runtime.cli``: the ``ketch`` command."""

import sys

from ketch.runtime.cli import main

sys.exit(main())

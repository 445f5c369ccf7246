"""``python -m stfield``: the command line (for ``torchrun -m stfield ...`` and environments
without the console script on PATH)."""

import sys

from .cli import main

sys.exit(main())

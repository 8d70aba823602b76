"""``python -m frameflex``: the same as the ``frameflex`` command."""

import sys

from frameflex.cli import main

sys.exit(main())

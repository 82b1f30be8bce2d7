"""``python -m components.report``: the drift report's command line."""

import sys

from .cli import main

sys.exit(main())

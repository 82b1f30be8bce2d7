"""``python -m components.report``: the drift report's command line."""

import sys

from components.report.cli import main

sys.exit(main())

"""``python -m components.cli``: the ``cdn-prefetch`` command."""

import sys

from components.cli.main import main

sys.exit(main())

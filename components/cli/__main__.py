"""``python -m components.cli``: the ``cdn-prefetch`` command."""

import sys

from .main import main

sys.exit(main())

"""``python -m gift.serve``: the watchdog of one server, ``stop`` and ``list`` (:mod:`gift.serve.watchdog`)."""

import sys

from .watchdog import main

sys.exit(main())

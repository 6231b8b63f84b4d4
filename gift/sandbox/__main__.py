"""``python -m gift.sandbox IN.jsonl OUT.jsonl [--workers N] [--progress]``"""

import sys

from .run import main

sys.exit(main())

"""``python -m ingest.cli``: the same as the ``mechtrade`` console script."""

import sys

from ingest.cli import main

sys.exit(main())

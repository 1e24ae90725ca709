"""`python -m bench`: run the whole benchmark and write bench/results.md."""

from __future__ import annotations

import sys

from bench.run import main

sys.exit(main())

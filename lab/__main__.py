"""`python -m lab`: the same command line as `ironclad-lab` (lab.cli)."""

from __future__ import annotations

import sys

from lab.cli import main

if __name__ == "__main__":
    sys.exit(main())

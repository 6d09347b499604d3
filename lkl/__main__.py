"""``python -m lkl``: the command line (see lkl.cli)."""

import sys

from lkl.cli import main

if __name__ == "__main__":
    sys.exit(main())

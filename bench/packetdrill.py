"""make conformance: the kernel's packetdrill suite on lkl and on the host.

The runner lives in harness/packetdrill.py (tests/test_packetdrill.py runs
the CI-sized part of it); this is its command line.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.packetdrill import main

if __name__ == "__main__":
    sys.exit(main())

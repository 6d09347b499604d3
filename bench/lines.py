"""Line-driven child processes: harness.lines under its old name.

Kept for tests/test_native_net.py (``from lines import LineProcess`` with
bench/ on its path); new code imports harness.lines.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.lines import LineProcess

__all__ = ["LineProcess"]

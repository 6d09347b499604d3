"""The tests' network namespaces: harness.netns under its old name.

Kept for tests/test_native_net.py (``from netns import ...``); new code
imports harness.netns.
"""

from harness.netns import Netns, ping

__all__ = ["Netns", "ping"]

"""test_ssl.py and test_resolver.py again, on a kernel in direct syscall mode."""

from pathlib import Path

import pytest
from helpers import run_pytest

pytestmark = pytest.mark.isolated

HERE = Path(__file__).parent


@pytest.mark.watchdog(200)
def test_tls_and_names_in_direct_mode() -> None:
    proc = run_pytest(HERE / "test_ssl.py", HERE / "test_resolver.py",
                      env={"LKL_TEST_SYSCALL_MODE": "direct"}, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout

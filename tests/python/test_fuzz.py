"""Fuzzing (hypothesis) in its own interpreter: see isolated/fuzz_cases.py."""

from pathlib import Path

import pytest
from helpers import run_pytest

pytestmark = pytest.mark.isolated


@pytest.mark.watchdog(200)
def test_fuzzing_never_crashes_the_interpreter():
    pytest.importorskip("hypothesis")
    proc = run_pytest(Path(__file__).parent / "isolated" / "fuzz_cases.py", timeout=180)
    assert proc.returncode == 0, (
        f"fuzzing failed or crashed (exit {proc.returncode})\n"
        f"--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-3000:]}")

"""Timer precision in host time (issue 15): HZ=1000 and the host clockevent.

A 1 ms nanosleep is an hrtimer; a 1 ms SO_RCVTIMEO and TCP's RTO are
jiffies timeouts, rounded up to the tick: at HZ=100 they took 20 ms and
29.6 ms (for a 5 ms rto_min), which broke packetdrill's 4 ms tolerance.
Medians of 21 samples each (tests/native/timer_precision.c), both
syscall modes.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
PROGRAM = BUILD / "tests" / "native" / "timer_precision"

# name: (lower bound, upper bound) of the median, in µs.
# Upper bounds with room for a loaded machine, still well below what a
# HZ=100 tick gives (SO_RCVTIMEO 1 ms -> 20 ms, RTO 5 ms -> ~30 ms).
LIMITS = {"nanosleep_1ms": (1000, 5000), "rcvtimeo_1ms": (1000, 10000),
          "tcp_rto_min_5ms": (5000, 20000)}


@pytest.fixture(scope="module", autouse=True)
def program() -> None:
    """Build the C test programs against the current liblkl.a."""
    subprocess.run(["make", "-s", "-C", str(ROOT / "tests" / "native"), f"BUILD={BUILD}"],
                   check=True, timeout=300)


@pytest.mark.parametrize("mode", ["shadow", "direct"])
def test_timers_fire_within_a_millisecond_or_two(mode: str) -> None:
    env = dict(os.environ, LKL_TEST_CMDLINE=f"lkl.syscall_mode={mode}")
    proc = subprocess.run([str(PROGRAM)], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    medians = {}
    for line in proc.stdout.splitlines():
        name, median, _worst = line.split()
        medians[name] = float(median)
    assert set(medians) == set(LIMITS), proc.stdout
    for name, (low, high) in LIMITS.items():
        assert low <= medians[name] <= high, (name, medians[name], proc.stdout)

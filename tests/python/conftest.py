"""Shared fixtures of the lkl Python tests.

A kernel boots once per process and cannot boot again after a halt, so:

- most tests share one session kernel (the ``kernel`` fixture), booted in
  the pytest process on first use and halted at the end;
- lifecycle tests (boot, halt, refusals, console, fork) and the fuzzing run
  in fresh interpreters through ``run_python`` / ``run_pytest``.

Every test is bounded: a faulthandler watchdog dumps every thread's stack
and ends the process if one test outlives its limit (60 s or $LKL_TEST_WATCHDOG, or
``@pytest.mark.watchdog(seconds)``), so CI never hangs.
"""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
import time
from collections.abc import Iterator

import pytest

SESSION_MEMORY = os.environ.get("LKL_TEST_MEMORY", "256M")
# The session kernel's syscall mode (test_direct_mode.py reruns suites with "direct").
SESSION_MODE = os.environ.get("LKL_TEST_SYSCALL_MODE", "shadow")
# Seconds a test may run (unless marked @pytest.mark.watchdog(seconds)).
WATCHDOG = float(os.environ.get("LKL_TEST_WATCHDOG", "60"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "watchdog(seconds): per-test time limit")
    config.addinivalue_line("markers", "isolated: runs in a fresh interpreter")


class _Watchdog:
    """Ends the process, with every thread's stack on the real stderr, when
    a test outlives its limit.  A Python thread, so that it can lift
    pytest's output capture first; faulthandler's C watchdog backs it up
    (30 s later) in case the GIL itself is stuck."""

    def __init__(self, config: pytest.Config) -> None:
        self.capman = config.pluginmanager.getplugin("capturemanager")
        self.cond = threading.Condition()
        self.deadline: float | None = None
        self.label = ""
        threading.Thread(target=self._run, name="test-watchdog", daemon=True).start()

    def arm(self, label: str, seconds: float) -> None:
        with self.cond:
            self.label = label
            self.deadline = time.monotonic() + seconds
            self.cond.notify()
        faulthandler.dump_traceback_later(seconds + 30, exit=True)

    def disarm(self) -> None:
        with self.cond:
            self.deadline = None
        faulthandler.cancel_dump_traceback_later()

    def _run(self) -> None:
        with self.cond:
            while True:
                if self.deadline is None:
                    self.cond.wait()
                    continue
                left = self.deadline - time.monotonic()
                if left > 0:
                    self.cond.wait(left)
                    continue
                if self.capman is not None:
                    self.capman.suspend_global_capture(in_=False)
                sys.stderr.write(f"\n*** watchdog: {self.label} ran too long; "
                                 "stacks of every thread:\n")
                sys.stderr.flush()
                faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
                sys.stderr.flush()
                os._exit(3)


@pytest.fixture(scope="session")
def _watchdog_thread(pytestconfig: pytest.Config) -> _Watchdog:
    return _Watchdog(pytestconfig)


@pytest.fixture(autouse=True)
def _watchdog(request: pytest.FixtureRequest, _watchdog_thread: _Watchdog) -> Iterator[None]:
    marker = request.node.get_closest_marker("watchdog")
    _watchdog_thread.arm(request.node.nodeid, marker.args[0] if marker else WATCHDOG)
    yield
    _watchdog_thread.disarm()


@pytest.fixture(scope="session")
def kernel(_watchdog_thread: _Watchdog) -> Iterator[object]:
    """The session's kernel (booted once, halted at the end)."""
    import lkl

    k = lkl.boot(memory=SESSION_MEMORY, syscall_mode=SESSION_MODE)
    yield k
    _watchdog_thread.arm("halting the session kernel", 30)
    k.halt()
    _watchdog_thread.disarm()

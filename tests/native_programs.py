"""The C test programs of tests/native/, built into build/tests/native/.

Each boots its own kernel (one per process); ``LKL_TEST_CMDLINE`` picks
the syscall mode.  Shared by the tests in this folder.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
BIN = BUILD / "tests" / "native"
MODES = ["shadow", "direct"]


def build(*targets: Path) -> None:
    """Build the C test programs (only ``targets`` if given) against the
    current liblkl.a."""
    subprocess.run(["make", "-s", "-C", str(ROOT / "tests" / "native"), f"BUILD={BUILD}",
                    *map(str, targets)], check=True, timeout=300)


def mode_env(mode: str) -> dict[str, str]:
    """The environment in which a program's kernel uses syscall ``mode``."""
    return dict(os.environ, LKL_TEST_CMDLINE=f"lkl.syscall_mode={mode}")


def run(name: str, *args: str, mode: str = "shadow", timeout: float = 60) -> str:
    """Run C test program ``name`` with ``args`` in a syscall mode; its
    stdout (AssertionError with its output unless it exits 0)."""
    proc = subprocess.run([str(BIN / name), *args], capture_output=True, text=True,
                          timeout=timeout, env=mode_env(mode))
    assert proc.returncode == 0, (
        f"{name} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout

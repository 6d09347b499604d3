"""Helpers for tests that need a fresh interpreter (one kernel per process)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def run_python(code: str, *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (its own kernel); return the
    finished process (stdout, stderr, returncode)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=_env())


def run_ok(code: str, *, timeout: float = 60) -> str:
    """run_python that must exit 0; returns its stdout."""
    proc = run_python(code, timeout=timeout)
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    return proc.stdout


def run_pytest(*args: str | Path, timeout: float = 150,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run pytest with ``args`` (paths, options) in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=_env(**(env or {})))

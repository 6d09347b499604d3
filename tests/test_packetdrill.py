"""The kernel's own packetdrill selftests against lkl (issue 15).

Every script of tools/testing/selftests/net/packetdrill/, MSG_ZEROCOPY
ones included (issue 16), for IPv4 and IPv6 with the kernel runner's
options, through build/lib/liblkl-packetdrill.so; each run is
bounded by a timeout.  The full table with the host-kernel reference is
``make conformance`` (bench/packetdrill.py).  Needs root (packetdrill
locks its memory and takes a real-time priority) and packetdrill's
source beside the repository (shared/vendor/packetdrill).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
from harness import packetdrill as pd  # noqa: E402

TIMEOUT = 60.0
SLOW_MACHINE_USECS = 14000


def _cases() -> list[tuple[str, str]]:
    try:
        return [(s.name, ip) for s in pd.scripts() for ip in ("ipv4", "ipv6")]
    except FileNotFoundError:
        return []


CASES = _cases()


@pytest.fixture(scope="module", autouse=True)
def built() -> None:
    """packetdrill (from a copy of its source) and the adapter."""
    if os.geteuid() != 0:
        pytest.skip("packetdrill needs root")
    try:
        pd.packetdrill_source()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    pd.build()


def test_the_suite_is_there() -> None:
    assert len(CASES) == 48, CASES


def run_with_the_runners_tolerance(script: Path, ip: str) -> pd.Case:
    """The kernel's 4 ms tolerance, twice.  A timing error (a packet early or
    late) then gets the tolerance the kernel's own runner gives slow
    machines (ksft_runner.sh, KSFT_MACHINE_SLOW: 14 ms): a 2-core virtual
    machine running the whole suite is one.  A case fails if it fails
    every run.  make conformance reports the strict 4 ms results."""
    case = pd.run_case(script, ip, "lkl", TIMEOUT, None)
    if not case.passed:
        # Once more as it was (a loaded 2-core host also reorders what a
        # packet and a call race for: payload splits, not only timing).
        case = pd.run_case(script, ip, "lkl", TIMEOUT, None)
    if not case.passed and "timing error" in case.error:
        case = pd.run_case(script, ip, "lkl", TIMEOUT, SLOW_MACHINE_USECS)
    return case


@pytest.mark.parametrize(("script", "ip"), CASES, ids=[f"{s[:-4]}-{ip}" for s, ip in CASES])
def test_kernel_selftest_passes_on_lkl(script: str, ip: str) -> None:
    case = run_with_the_runners_tolerance(pd.selftests_dir() / script, ip)
    assert case.passed, case.error


OURS = pd.our_scripts()


@pytest.mark.parametrize(("script", "ip"), OURS, ids=[s.stem for s, _ in OURS])
def test_our_script_passes_on_lkl(script: Path, ip: str) -> None:
    """Ours, e.g. path MTU discovery on an established connection (both IP versions)."""
    case = run_with_the_runners_tolerance(script, ip)
    assert case.passed, case.error


def test_unknown_shell_command_does_not_reach_the_host(tmp_path: Path) -> None:
    """A backtick command the adapter has no lkl path for fails; it is not run."""
    marker = tmp_path / "ran"
    script = tmp_path / "shell.pkt"
    script.write_text(f"`touch {marker}`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    case = pd.run_case(script, "ipv4", "lkl", TIMEOUT, None)
    assert not case.passed
    assert not marker.exists()


def test_adapter_refuses_to_run_without_preload(tmp_path: Path) -> None:
    """Without LD_PRELOAD the scripts' commands would hit the host: refused."""
    script = tmp_path / "noop.pkt"
    script.write_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    proc = subprocess.run([str(pd.PACKETDRILL), f"--so_filename={pd.ADAPTER}",
                           f"--so_flags={pd.SO_FLAGS['ipv4']}", *pd.IPV4_ARGS, script.name],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode != 0
    assert "LD_PRELOAD" in proc.stderr

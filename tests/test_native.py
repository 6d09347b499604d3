"""The kernel library from C: boot, syscalls, threads, halt, symbols.

Each C program in tests/native/ boots its own kernel (one per process)
and prints "ok <check>" lines; it exits non-zero on the first failure.
Programs that make syscalls run in both syscall modes (shadow threads and
the direct fast path) and must give the same results.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
BIN = BUILD / "tests" / "native"
LIB = BUILD / "lib" / "liblkl.a"


@pytest.fixture(scope="session", autouse=True)
def native_programs() -> None:
    """Build the C test programs against the current liblkl.a."""
    subprocess.run(["make", "-s", "-C", str(ROOT / "tests" / "native"), f"BUILD={BUILD}"],
                   check=True, timeout=300)


MODES = ["shadow", "direct"]


def run(name: str, mode: str = "shadow", timeout: float = 60) -> str:
    """Run one C test program in a syscall mode; fail with its output if it fails."""
    env = dict(os.environ, LKL_TEST_CMDLINE=f"lkl.syscall_mode={mode}")
    proc = subprocess.run([str(BIN / name)], capture_output=True, text=True,
                          timeout=timeout, env=env)
    assert proc.returncode == 0, (
        f"{name} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


@pytest.mark.parametrize("mode", MODES)
def test_boot_files_procfs_bad_input_and_halt(mode: str) -> None:
    out = run("boot_basic", mode)
    for check in ("banner", "uname", "getpid", "mounts", "files", "procfs", "nanosleep",
                  "timer wheel", "pipe2+epoll", "bad input", "halt joins every kernel thread",
                  "after halt"):
        assert f"ok {check}\n" in out


def test_busy_poll_policy_stays_bounded() -> None:
    """The adaptive busy poll of a thread serving a device: the spin it
    learns from the waits never leaves [0, cap], stops on an idle device
    and starts again on quick answers (serve_spin.c; no timing)."""
    out = run("serve_spin")
    for check in ("quick answers make it spin, within the cap",
                  "the spin stays within [0, cap]"):
        assert f"ok {check}\n" in out
    assert "ok an idle device stops spinning after" in out


@pytest.mark.parametrize("mode", MODES)
def test_loopback_tcp_udp(mode: str) -> None:
    out = run("net_loopback", mode)
    assert "ok tcp 127.0.0.1" in out
    assert "ok tcp ::1" in out
    assert "ok udp" in out


@pytest.mark.parametrize("mode", MODES)
def test_threads_blocked_and_short_lived(mode: str) -> None:
    out = run("threads", mode)
    assert "ok 8 threads" in out
    assert "ok 64 short-lived threads" in out


@pytest.mark.parametrize("mode", MODES)
def test_halt_while_threads_are_blocked_in_the_kernel(mode: str) -> None:
    out = run("halt_blocked", mode)
    assert "ok blocked calls return ENODEV at halt" in out
    assert "ok halt joins every kernel thread" in out


@pytest.mark.parametrize("mode", MODES)
def test_shadow_allocation_failure_returns_enomem(mode: str) -> None:
    """The host ops fail the Nth allocation of one thread's first syscall:
    -ENOMEM, no crash, and the thread's next call works."""
    out = run("shadow_oom", mode)
    assert "ok a shadow that cannot be allocated fails with ENOMEM\n" in out
    assert "ok halt\n" in out


@pytest.mark.parametrize("mode", MODES)
def test_kernel_threads_pinned_app_threads_untouched(mode: str) -> None:
    out = run("pinning", mode)
    assert "kernel threads pinned to CPU 0" in out


@pytest.mark.parametrize("mode", MODES)
def test_fifty_boot_halt_cycles_never_hang(mode: str) -> None:
    # 20 s for any one cycle, 120 s for all fifty (each takes well under 1 s).
    deadline = time.monotonic() + 120
    for i in range(50):
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"fifty boot/halt cycles took over 120 s ({i} done)")
        try:
            out = run("boot_halt", mode, timeout=min(20, left))
        except subprocess.TimeoutExpired:
            pytest.fail(f"boot/halt cycle {i} hung")
        assert out.startswith("boot_ns=")


def test_only_lkl_symbols_are_global() -> None:
    nm = subprocess.run(["nm", "-g", "--defined-only", str(LIB)], capture_output=True,
                        text=True, check=True).stdout
    names = [line.split()[-1] for line in nm.splitlines() if len(line.split()) == 3]
    assert names, "no global symbols at all"
    strays = [n for n in names if not n.startswith("lkl_")]
    assert not strays, f"global symbols outside the lkl_ API: {strays[:20]}"
    assert "lkl_syscall" in names and "lkl_start_kernel" in names


def test_shared_object_has_no_textrel(tmp_path: Path) -> None:
    so = tmp_path / "liblkl_test.so"
    subprocess.run(["gcc", "-shared", "-o", str(so), "-Wl,--whole-archive", str(LIB),
                    "-Wl,--no-whole-archive", "-lpthread"], check=True, timeout=120)
    dynamic = subprocess.run(["readelf", "-d", str(so)], capture_output=True, text=True,
                             check=True).stdout
    assert "TEXTREL" not in dynamic


@pytest.mark.parametrize("mode", MODES)
def test_tick_stops_when_idle_unless_nohz_off(mode: str) -> None:
    """Dyntick-idle: an idle kernel takes few ticks.  nohz=off (the paper's
    choice for direct syscalls): HZ=1000 while idle."""
    out = run("tick_mode", mode)
    ticks = int(out.split("timer_irqs_per_500ms=")[1])
    assert ticks < 25, f"{ticks} timer interrupts in 500 ms of idleness with dyntick-idle"
    env = dict(os.environ, LKL_TEST_CMDLINE=f"lkl.syscall_mode={mode}")
    proc = subprocess.run([str(BIN / "tick_mode"), "nohz=off"], capture_output=True,
                          text=True, timeout=30, env=env, check=True)
    periodic = int(proc.stdout.split("timer_irqs_per_500ms=")[1])
    assert 350 <= periodic <= 600, f"{periodic} timer interrupts in 500 ms with nohz=off"


@pytest.mark.parametrize("mode", MODES)
def test_many_short_connections_beside_a_sleeping_thread(mode: str) -> None:
    out = run("connect_loop", mode, timeout=120)
    assert "ok 20000 connections" in out

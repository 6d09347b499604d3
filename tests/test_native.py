"""The kernel library from C: boot, syscalls, threads, halt, symbols.

Each C program in tests/native/ boots its own kernel (one per process)
and prints "ok <check>" lines; it exits non-zero on the first failure.
Programs that make syscalls run in both syscall modes (shadow threads and
the direct fast path) and must give the same results.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from native_programs import BUILD, MODES, build, run

LIB = BUILD / "lib" / "liblkl.a"


@pytest.fixture(scope="session", autouse=True)
def native_programs() -> None:
    build()


def assert_prints(program: str, mode: str, *lines: str, timeout: float = 60) -> None:
    """Run ``program`` in ``mode``: each of ``lines`` is in its output."""
    out = run(program, mode=mode, timeout=timeout)
    for line in lines:
        assert line in out, (line, out)


@pytest.mark.parametrize("mode", MODES)
def test_boot_files_procfs_bad_input_and_halt(mode: str) -> None:
    assert_prints("boot_basic", mode, *(
        f"ok {check}\n" for check in (
            "banner", "uname", "getpid", "mounts", "files", "procfs", "nanosleep",
            "timer wheel", "pipe2+epoll", "bad input", "halt joins every kernel thread",
            "after halt")))


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
    assert_prints("net_loopback", mode, "ok tcp 127.0.0.1", "ok tcp ::1", "ok udp")


@pytest.mark.parametrize("mode", MODES)
def test_threads_blocked_and_short_lived(mode: str) -> None:
    assert_prints("threads", mode, "ok 8 threads", "ok 64 short-lived threads")


@pytest.mark.parametrize("mode", MODES)
def test_halt_while_threads_are_blocked_in_the_kernel(mode: str) -> None:
    assert_prints("halt_blocked", mode, "ok blocked calls return ENODEV at halt",
                  "ok halt joins every kernel thread")


@pytest.mark.parametrize("mode", MODES)
def test_shadow_allocation_failure_returns_enomem(mode: str) -> None:
    """The host ops fail the Nth allocation of one thread's first syscall:
    -ENOMEM, no crash, and the thread's next call works."""
    assert_prints("shadow_oom", mode,
                  "ok a shadow that cannot be allocated fails with ENOMEM\n", "ok halt\n")


@pytest.mark.parametrize("mode", MODES)
def test_kernel_threads_pinned_app_threads_untouched(mode: str) -> None:
    assert_prints("pinning", mode, "kernel threads pinned to CPU 0")


@pytest.mark.parametrize("mode", MODES)
def test_fifty_boot_halt_cycles_never_hang(mode: str) -> None:
    # 20 s for any one cycle, 120 s for all fifty (each takes well under 1 s).
    deadline = time.monotonic() + 120
    for i in range(50):
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"fifty boot/halt cycles took over 120 s ({i} done)")
        try:
            out = run("boot_halt", mode=mode, timeout=min(20, left))
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
    out = run("tick_mode", mode=mode)
    ticks = int(out.split("timer_irqs_per_500ms=")[1])
    assert ticks < 25, f"{ticks} timer interrupts in 500 ms of idleness with dyntick-idle"
    out = run("tick_mode", "nohz=off", mode=mode, timeout=30)
    periodic = int(out.split("timer_irqs_per_500ms=")[1])
    # 500 at HZ=1000; a loaded host delays the timer thread and its expiries
    # coalesce (317 seen at load 2.5), so the bound only tells periodic from idle.
    assert 200 <= periodic <= 600, f"{periodic} timer interrupts in 500 ms with nohz=off"


@pytest.mark.parametrize("mode", MODES)
def test_many_short_connections_beside_a_sleeping_thread(mode: str) -> None:
    assert_prints("connect_loop", mode, "ok 20000 connections", timeout=120)


@pytest.mark.parametrize("mode", MODES)
def test_zerocopy_receive_from_c(mode: str) -> None:
    """lkl_recv_zerocopy / lkl_zerocopy_release (tests/native/zerocopy_recv.c)."""
    assert_prints("zerocopy_recv", mode, *(
        f"ok {check}" for check in (
            "zerocopy 127.0.0.1", "zerocopy ::1", "partial reads mixed with read()",
            "EOF, release after close, in any order", "misuse: EINVAL, EBADF, ENOTCONN, EFAULT",
            "no kernel warnings", "halt with a token held")), timeout=120)


@pytest.mark.parametrize("mode", MODES)
def test_zerocopy_send_from_c(mode: str) -> None:
    """lkl_zerocopy_alloc / MSG_ZEROCOPY completions (tests/native/zerocopy_send.c)."""
    assert_prints("zerocopy_send", mode, *(
        f"ok {check}" for check in (
            "kernel-visible buffer: 64 sends acknowledged",
            "host heap: 64 sends acknowledged", "allocator: alloc, send, free",
            "no kernel warnings")), timeout=120)

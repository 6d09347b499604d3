"""The same sockets, servers and event loops with syscall_mode="direct".

The session kernel runs in shadow mode; these run in fresh interpreters
whose kernels run in direct mode (host threads run syscalls themselves
under the CPU lock).
"""

import subprocess
from pathlib import Path

import pytest
from helpers import run_ok, run_pytest, run_python

pytestmark = pytest.mark.isolated

HERE = Path(__file__).parent

def test_direct_mode_boots_and_reports_itself():
    out = run_ok("""
        import lkl
        with lkl.boot(syscall_mode="direct") as k:
            assert k.syscall_mode == "direct" and k.getpid() == 1
            print(k.uname().release)
    """)
    assert out.startswith("6.12")


def test_direct_mode_connection_loop_does_not_hang():
    try:
        proc = run_python("""
            import time, lkl
            k = lkl.boot(syscall_mode="direct")
            srv = k.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
            n, end = 0, time.monotonic() + 3
            while time.monotonic() < end:
                c = k.socket(); c.connect(srv.getsockname())
                a, _ = srv.accept()
                c.sendall(b"x" * 100); a.recv(100)
                c.close(); a.close()
                n += 1
            print(n)
        """, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("direct mode hung in a connect/accept/close loop")
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) > 100


@pytest.mark.watchdog(200)
def test_suites_in_direct_mode():
    proc = run_pytest(HERE / "test_traffic.py", HERE / "test_stdlib_servers.py",
                      HERE / "test_select.py", HERE / "test_asyncio.py",
                      HERE / "test_socket_behaviour.py",
                      HERE / "test_readiness.py", HERE / "test_stdlib_socket.py",
                      HERE / "test_patch.py",
                      env={"LKL_TEST_SYSCALL_MODE": "direct", "LKL_TEST_STACKS": "lkl",
                           "LKL_TEST_WATCHDOG": "30"}, timeout=180)
    assert proc.returncode == 0, f"{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"

"""Ctrl-C and other signal handlers during blocking calls.

Python runs signal handlers on the main thread, between bytecodes; a
blocking accept(), recv(), sendall() or connect() on a socket without a
timeout must still return to Python for them (within a wait slice, 0.25 s), and the socket
must stay usable afterwards.  Each case runs in a fresh interpreter.
"""

from __future__ import annotations

import pytest
from helpers import KERNEL_SLEEPERS, run_ok

pytestmark = pytest.mark.isolated

CASE = """
import os, signal, threading, time, lkl

k = lkl.boot(syscall_mode={mode!r})
srv = k.socket()
srv.bind(("127.0.0.1", 0)); srv.listen()
port = srv.getsockname()[1]

def interrupt_after(seconds, sig=signal.SIGINT):
    threading.Timer(seconds, os.kill, (os.getpid(), sig)).start()

def timed(call):
    t0 = time.monotonic()
    try:
        call()
    except KeyboardInterrupt:
        return time.monotonic() - t0
    raise AssertionError("not interrupted")

# accept() with no client: Ctrl-C ends it.
assert srv.gettimeout() is None
interrupt_after(0.3)
waited = timed(srv.accept)
assert 0.25 < waited < 1.5, waited

# The listening socket still works.
cli = k.socket(); cli.connect(("127.0.0.1", port))
conn, _ = srv.accept()

# recv() and recv_into() with nothing to read: Ctrl-C ends them.
interrupt_after(0.3)
assert 0.25 < timed(lambda: conn.recv(10)) < 1.5
interrupt_after(0.3)
assert 0.25 < timed(lambda: conn.recv_into(bytearray(10))) < 1.5

# Another handler runs too, and a handler that returns lets the call go on.
seen = []
signal.signal(signal.SIGUSR1, lambda *a: seen.append(time.monotonic()))
interrupt_after(0.2, signal.SIGUSR1)
threading.Timer(0.6, cli.sendall, (b"late",)).start()
assert conn.recv(10) == b"late"
assert len(seen) == 1

# Data already there: recv returns it at once; MSG_WAITALL still waits for all.
cli.sendall(b"abc")
assert conn.recv(10) == b"abc"
threading.Timer(0.2, cli.sendall, (b"def",)).start()
cli.sendall(b"abc")
assert conn.recv(6, lkl.MSG_WAITALL) == b"abcdef"

# Non-blocking sockets still never wait.
srv.setblocking(False)
try:
    srv.accept()
except BlockingIOError:
    pass
else:
    raise AssertionError("a non-blocking accept waited")

# Threads other than the main one block in the kernel as before.
out = []
asleep = kernel_sleepers(k)
t = threading.Thread(target=lambda: out.append(conn.recv(10)))
t.start()
wait_kernel_sleepers(k, asleep + 1)          # its recv sleeps in the kernel
cli.sendall(b"thread"); t.join(5)
assert out == [b"thread"]
# sendall() to a peer that does not read: Ctrl-C ends it.
interrupt_after(0.3)
assert 0.25 < timed(lambda: cli.sendall(bytes(64 << 20))) < 1.5

# connect() that gets no answer (netem drops everything on lo): Ctrl-C ends it.
k.set_qdisc("lo", "netem loss 100%")
late = k.socket()
interrupt_after(0.3)
assert 0.25 < timed(lambda: late.connect(("127.0.0.1", port))) < 1.5
assert late.gettimeout() is None and late.getblocking()
k.halt()
print("OK")
"""


@pytest.mark.parametrize("mode", ["shadow", "direct"])
def test_ctrl_c_ends_blocking_calls_on_the_main_thread(mode: str) -> None:
    assert run_ok(KERNEL_SLEEPERS + CASE.format(mode=mode), timeout=60).strip() == "OK"

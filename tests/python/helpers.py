"""Helpers for tests that need a fresh interpreter (one kernel per process)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from harness import sockets

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    """The environment of a child interpreter: the repository (``lkl``,
    ``harness``) and this folder (``from helpers import ...``) on its path."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), str(Path(__file__).parent), env.get("PYTHONPATH")) if p)
    return env


def tcp_pair(kernel: Any) -> tuple[Any, Any, Any]:
    """A connected (client, server-side) pair of kernel TCP sockets on
    127.0.0.1, and the listener."""
    return sockets.tcp_pair(kernel.socket)


async def echo_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An asyncio stream server's handler: every byte back until EOF, then close."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()
        await writer.wait_closed()


async def stream_round_trip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                            seed: int, size: int = 1 << 20, chunk: int = 16384) -> bool:
    """Send ``size`` seeded bytes in ``chunk``s while reading the echo to
    EOF, then close; True if what came back hashes like what went out."""
    payload = hashlib.shake_256(bytes([seed])).digest(size)

    async def send() -> None:
        for off in range(0, len(payload), chunk):
            writer.write(payload[off:off + chunk])
            await writer.drain()
        writer.write_eof()

    sender = asyncio.create_task(send())
    got = hashlib.sha256()
    while data := await reader.read(65536):
        got.update(data)
    await sender
    writer.close()
    await writer.wait_closed()
    return got.digest() == hashlib.sha256(payload).digest()


def assert_refuses(call: Callable[[Any], Any],
                   cases: tuple[tuple[Any, type[BaseException]], ...]) -> None:
    """``call(bad)`` raises ``exc`` for each ``(bad, exc)`` of ``cases``
    (AssertionError with the first ``bad`` that it took)."""
    for bad, exc in cases:
        try:
            call(bad)
        except exc:
            pass
        else:
            raise AssertionError(bad)


def in_threads(call: Callable[[int], T], count: int, timeout: float) -> list[T]:
    """``call(i)`` for i in range(count), each in a thread of its own,
    joined up to ``timeout`` s each; the results in the order they came
    (fewer if a call failed or had not returned)."""
    results: list[T] = []
    threads = [threading.Thread(target=lambda i=i: results.append(call(i)))
               for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return results


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


# Child code: wait, with a deadline, until threads sleep in kernel calls.
# The kernel shows it: a task blocked in a syscall (accept, recv, ppoll...)
# is in state S, while an idle shadow task waits in state I (TASK_IDLE).
KERNEL_SLEEPERS = """
import time as _time

def kernel_sleepers(k):
    \"\"\"How many of the kernel's tasks sleep in a syscall (state S).\"\"\"
    n = 0
    for tid in k.listdir("/proc/1/task"):
        try:
            stat = k.read_text(f"/proc/1/task/{tid}/stat")
        except FileNotFoundError:
            continue                       # a task that just ended
        n += stat[stat.rindex(")") + 2] == "S"
    return n

def wait_kernel_sleepers(k, n, timeout=10.0):
    \"\"\"Wait until at least n tasks sleep in a syscall; AssertionError at the deadline.\"\"\"
    deadline = _time.monotonic() + timeout
    while (now := kernel_sleepers(k)) < n:
        assert _time.monotonic() < deadline, f"{now} tasks asleep in the kernel, not {n}"
        _time.sleep(0.005)                 # a poll interval, not a synchronisation
"""


# Child code for tests with a kernel and a host peer in one namespace: TCP
# both ways between a kernel socket and a host socket, checked with
# SHA-256 on the receiving end.  ``timeout`` bounds every socket call.
TCP_BOTH_WAYS = """
import hashlib, socket, threading

def drain(sock):
    h, n = hashlib.sha256(), 0
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            return h.hexdigest(), n
        h.update(chunk)
        n += len(chunk)

def tcp_both_ways(k, host_ip, kernel_ip, data, timeout=20):
    want = hashlib.sha256(data).hexdigest()
    # kernel -> host
    srv = socket.socket()
    srv.bind((host_ip, 0)); srv.listen(); srv.settimeout(timeout)
    got = {}
    def host_recv():
        c, _ = srv.accept()
        c.settimeout(timeout)
        got["h"] = drain(c)
        c.close()
    t = threading.Thread(target=host_recv, daemon=True); t.start()
    s = k.socket(); s.settimeout(timeout)
    s.connect((host_ip, srv.getsockname()[1])); s.sendall(data); s.close()
    t.join(timeout + 10)
    assert got.get("h") == (want, len(data)), ("kernel->host", got)
    srv.close()
    # host -> kernel
    ks = k.socket(); ks.settimeout(timeout)
    ks.bind((kernel_ip, 0)); ks.listen()
    def host_send():
        c = socket.create_connection((kernel_ip, ks.getsockname()[1]), timeout=timeout)
        c.sendall(data); c.close()
    t = threading.Thread(target=host_send, daemon=True); t.start()
    a, _ = ks.accept(); a.settimeout(timeout)
    h = drain(a)
    t.join(timeout + 10)
    assert h == (want, len(data)), ("host->kernel", h)
    a.close(); ks.close()
"""


def in_netns(ns_name: str, body: str, timeout: float = 90) -> str:
    """run_ok ``body`` in a fresh interpreter inside network namespace
    ``ns_name`` (entered before the kernel boots), with TCP_BOTH_WAYS
    defined; returns its stdout."""
    code = (f"from pyroute2 import netns\nnetns.setns({ns_name!r})\n"
            + textwrap.dedent(TCP_BOTH_WAYS) + textwrap.dedent(body))
    return run_ok(code, timeout=timeout)


# Child code: one kernel on one end of an lkl.Pipe, TCP server or client.
# argv: fd, own address, server address, role, bytes, seed, qdisc spec
# ("" for none), timeout, kernel memory, wait.  Prints "<server's sha256> <bytes> <qdisc
# drops or -1> <RetransSegs>".
# ``timeout`` bounds progress, not the transfer: the server's recv calls,
# the client's connect and each SEND_CHUNK of its data (a socket timeout
# bounds a whole sendall, as the stdlib's does, and 64 MiB over the faulty
# link take about a minute, most of it in TCP's 200 ms retransmission
# timeouts).  ``wait`` bounds the waits that are not progress: the accept
# while the client boots, and the digest while the client's send buffer
# drains.
PIPE_PEER = """
import hashlib, os, random, sys, lkl
from lkl import tc
fd, me, server, role = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
nbytes, seed, spec, timeout = int(sys.argv[5]), int(sys.argv[6]), sys.argv[7], float(sys.argv[8])
wait = float(sys.argv[10])
SEND_CHUNK = 256 << 10
nic = lkl.Nic(lkl.Pipe(fd), offload=lkl.Offload.LARGE_SEGMENTS)
# The mode these tests were written for, stated (boot()'s default is direct).
k = lkl.boot(memory=sys.argv[9], nics=[nic],
             syscall_mode=os.environ.get("LKL_TEST_SYSCALL_MODE", "shadow"))
nic.up()
nic.add_address(me + "/24")
if spec:
    k.set_qdisc(nic, spec)

def state():
    # What a timeout leaves to look at: the socket (queues, timer, rto,
    # cwnd), TCP's recovery counters and the device's own.
    ext = k.snmp()["TcpExt"]
    return (k.read_text("/proc/net/tcp"), {c: ext[c] for c in (
        "TCPTimeouts", "TCPLossProbes", "TCPLostRetransmit", "TCPWinProbe",
        "TCPToZeroWindowAdv", "TCPFromZeroWindowAdv")}, nic.stats()["device"])

n = 0
try:
    if role == "server":
        srv = k.socket(); srv.settimeout(wait)
        srv.bind((me, 5001)); srv.listen()
        print("listening", flush=True)           # the parent starts the client now
        a, _ = srv.accept(); a.settimeout(timeout)
        h = hashlib.sha256()
        while chunk := a.recv(1 << 16):
            h.update(chunk); n += len(chunk)
        digest = h.hexdigest()
        a.sendall(digest.encode()); a.close()
    else:
        data = random.Random(seed).randbytes(nbytes)
        s = k.socket(); s.settimeout(timeout)
        s.connect((server, 5001))                # the server listens already
        view = memoryview(data)
        for n in range(0, nbytes, SEND_CHUNK):
            s.sendall(view[n:n + SEND_CHUNK])
        s.shutdown(1)
        s.settimeout(wait)
        digest, n = s.recv(100).decode(), len(data)
except (TimeoutError, KeyboardInterrupt) as e:   # SIGINT: the parent saw the peer fail
    what = "timed out" if isinstance(e, TimeoutError) else "interrupted"
    print(f"{role} {what} after {n} bytes:", *state(), sep="\\n", file=sys.stderr)
    raise
drops = tc.qdisc_stats(k, nic)["drops"] if spec else -1
print(digest, n, drops, k.snmp()["Tcp"]["RetransSegs"])
k.halt()
"""


def pipe_pair(net: str, nbytes: int, seed: int, spec: str = "", timeout: float = 30,
              wait: float = 90, memory: str = "64M") -> list[list[str]]:
    """Two kernels in two processes joined by an lkl.Pipe on ``net``.1 and
    ``net``.2: the client sends ``nbytes`` seeded bytes to the server.
    ``timeout`` is how long either side may go without progress; ``wait``
    bounds each process.  Returns each process's printed fields, server first."""
    import lkl

    a, b = lkl.Pipe.pair()
    server = f"{net}.1"
    procs = []
    try:
        for end, ip, role in ((a, server, "server"), (b, f"{net}.2", "client")):
            procs.append(subprocess.Popen(
                [sys.executable, "-c", PIPE_PEER, str(end.fileno()), ip, server, role,
                 str(nbytes), str(seed), spec, str(timeout), memory, str(wait)],
                pass_fds=(end.fileno(),), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, cwd=ROOT, env=_env()))
            end.close()
            if role == "server":
                _wait_line(procs[0], "listening", timeout=wait)
        outs, failed = _collect_pair(procs, ("server", "client"), wait)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert not failed, "\n".join(failed)
    return [out.split() for out, _ in outs]


def _collect_pair(procs: list[subprocess.Popen[str]], roles: tuple[str, str],
                  wait: float) -> tuple[list[tuple[str, str]], list[str]]:
    """Wait for both processes (each up to ``wait`` s, then killed); return
    their (stdout, stderr) and the failures, first to fail first.  When one
    fails the other is interrupted (SIGINT): it would only wait out its own
    timeout, a recv timeout that echoes the first failure, and it reports
    its state at once instead."""
    outs: list[tuple[str, str]] = [("", ""), ("", "")]
    failed: list[str] = []
    lock = threading.Lock()

    def collect(i: int) -> None:
        p = procs[i]
        try:
            outs[i] = p.communicate(timeout=wait)
        except subprocess.TimeoutExpired:
            p.kill()
            outs[i] = p.communicate()
        if p.returncode != 0:
            with lock:
                failed.append(f"{roles[i]} exit {p.returncode}:\n{outs[i][1]}")
                other = procs[1 - i]
                if other.poll() is None:
                    other.send_signal(signal.SIGINT)

    threads = [threading.Thread(target=collect, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outs, failed


def _wait_line(proc: subprocess.Popen[str], line: str, timeout: float) -> None:
    """Wait until ``proc`` prints ``line`` on its stdout (AssertionError at
    the deadline, or if it exits first)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()              # unbuffered: communicate() reads the rest
    got = b""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([fd], [], [], left)[0]:
            break
        byte = os.read(fd, 1)
        assert byte, f"exited before printing {line!r}: {proc.communicate(timeout=10)[1]}"
        if byte == b"\n":
            if got.decode().strip() == line:
                return
            got = b""
        else:
            got += byte
    raise AssertionError(f"no {line!r} within {timeout} s")

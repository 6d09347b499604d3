"""``python -m lkl [demo]``: boot, move data through the kernel's TCP, show counters.

This is what ``make demo`` runs.  Everything happens inside this process:
the kernel's own loopback interface, its own sockets, its own SNMP MIBs.
"""

from __future__ import annotations

import hashlib
import threading
import time

import lkl

PAYLOAD = 32 << 20  # bytes sent through the kernel's TCP
CHUNK = 256 << 10


def main() -> int:
    """Boot, transfer, print, halt; the exit code."""
    started = time.perf_counter()
    with lkl.boot(memory="128M") as kernel:
        booted = time.perf_counter()
        uname = kernel.uname()
        print(f"booted {uname.sysname} {uname.release} inside this process in "
              f"{1000 * (booted - started):.1f} ms (its init is pid {kernel.getpid()})")
        print("kernel log:", kernel.log.splitlines()[0])
        print("congestion control:", kernel.sysctl("net.ipv4.tcp_congestion_control"))

        listener = kernel.socket(lkl.AF_INET, lkl.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        received = hashlib.sha256()
        got = 0

        def serve() -> None:
            nonlocal got
            conn, _ = listener.accept()
            with conn:
                buf = bytearray(CHUNK)
                while n := conn.recv_into(buf):
                    received.update(memoryview(buf)[:n])
                    got += n

        before = kernel.snmp()
        server = threading.Thread(target=serve)
        server.start()
        sent = hashlib.sha256()
        block = bytes(range(256)) * (CHUNK // 256)
        t0 = time.perf_counter()
        with kernel.socket(lkl.AF_INET, lkl.SOCK_STREAM) as client:
            client.connect(("127.0.0.1", port))
            for _ in range(PAYLOAD // CHUNK):
                client.sendall(block)
                sent.update(block)
        server.join(timeout=60)
        elapsed = time.perf_counter() - t0
        listener.close()
        after = kernel.snmp()

        ok = "intact" if sent.digest() == received.digest() and got == PAYLOAD else "CORRUPT"
        print(f"TCP over the kernel's loopback: {got >> 20} MiB in {elapsed * 1000:.0f} ms "
              f"({8 * got / elapsed / 1e9:.2f} Gbit/s), SHA-256 {ok}")
        print("the kernel's SNMP counters, moved by that transfer:")
        for group, name in (("Tcp", "ActiveOpens"), ("Tcp", "PassiveOpens"),
                            ("Tcp", "InSegs"), ("Tcp", "OutSegs"), ("Tcp", "RetransSegs"),
                            ("TcpExt", "TCPHPHits"), ("TcpExt", "TCPOrigDataSent"),
                            ("Ip", "InReceives"), ("Ip", "OutRequests")):
            delta = after[group][name] - before[group][name]
            print(f"  {group}.{name:<16} +{delta}")
    print(f"halted; total {time.perf_counter() - started:.2f} s")
    return 0

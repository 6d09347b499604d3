"""Hostile guests against ``python -m lkl proxy``: it keeps serving the others.

A SYN flood (bounded count, spoofed from an address nobody answers for,
inside the test's namespace) met by the kernel's syncookies, hundreds of
idle (slowloris) connections, and peers that advertise a zero window; a
well-behaved guest is served meanwhile and the proxy's memory stays
bounded.  The figures are printed (pytest -s) and asserted loosely.
"""

from __future__ import annotations

import os
import random
import socket
import struct
import threading
import time

import psutil
import pytest
from proxyrig import PROXY_IP, guest_connect, guest_socket, rig, round_trip, stats, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="namespaces and TAP need root")
SPOOFED = "10.200.17.77"   # on the TAP's subnet, answered by nobody


def _rss_mib(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / (1 << 20)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _syn(src: str, dst: str, sport: int, dport: int, seq: int) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.randrange(65536), 0,
                     64, 6, 0, socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return ip + tcp


@pytest.mark.watchdog(180)
def test_syn_flood_with_syncookies_keeps_serving():
    with rig(["--sysctl", "net.ipv4.tcp_syncookies=1",
              "--sysctl", "net.ipv4.tcp_max_syn_backlog=128"]) as (ns, proxy, _, sp):
        # The spoofed source resolves to a MAC nobody has: SYN-ACKs go nowhere.
        assert ns.run(["ip", "neigh", "add", SPOOFED, "lladdr", "02:00:00:00:00:77",
                       "dev", "pxy0"]).returncode == 0
        with ns.entered():
            raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        sent = [0]
        stop = threading.Event()

        def flood() -> None:
            deadline = time.monotonic() + 20
            with raw:
                while sent[0] < 30000 and time.monotonic() < deadline and not stop.is_set():
                    raw.sendto(_syn(SPOOFED, PROXY_IP, random.randrange(1024, 65535), 8017,
                                    random.randrange(1 << 32)), (PROXY_IP, 0))
                    sent[0] += 1

        rss_before = _rss_mib(proxy.pid)
        t = threading.Thread(target=flood, daemon=True)
        t.start()
        try:
            wait_until(lambda: sent[0] > 3000, 20, "the flood under way")
            served = [round_trip(ns, 8017, 256 << 10, i) for i in range(5)]
        finally:
            stop.set()
            t.join(30)
        assert served == [True] * 5
        report = stats(sp)
        tcp, ext = report["kernel_tcp"], report["kernel_tcp_ext"]
        rss_after = _rss_mib(proxy.pid)
        print(f"\nSYN flood: {sent[0]} SYNs, 5 of 5 guests served; proxy RSS "
              f"{rss_before:.1f} -> {rss_after:.1f} MiB; kernel Tcp {tcp}, TcpExt {ext}")
        assert rss_after < rss_before + 64
        assert ext["SyncookiesSent"] > 0      # the backlog filled: cookies answered


@pytest.mark.watchdog(180)
def test_slowloris_and_zero_window_peers_keep_serving():
    held = threading.Event()

    def backend(conn: socket.socket) -> None:
        first = conn.recv(1)
        if first == b"S":              # a slow guest: wait, hold the connection open
            held.wait(60)
        elif first == b"Z":            # a guest that never reads: flood it
            conn.settimeout(5)
            try:
                for _ in range(4096):
                    conn.sendall(b"z" * 65536)
            except OSError:
                pass
            held.wait(60)
        else:
            while data := conn.recv(65536):
                conn.sendall(first + data if first else data)
                first = b""
    idle = 300
    with rig(["--max-connections", "2000", "--max-per-source", "2000",
              "--memory", "128M"], handler=backend) as (ns, proxy, _, sp):
        rss_before = _rss_mib(proxy.pid)
        socks = []
        try:
            for _ in range(idle):
                s = guest_connect(ns, 8017)
                s.send(b"S")
                socks.append(s)
            for _ in range(8):
                s = guest_socket(ns, timeout=10)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.connect((PROXY_IP, 8017))
                s.send(b"Z")
                socks.append(s)
            wait_until(lambda: stats(sp)["open"] == idle + 8, 30, "every hostile one open")
            served = [round_trip(ns, 8017, 256 << 10, i) for i in range(5)]
            rss_held = _rss_mib(proxy.pid)
            threads = psutil.Process(proxy.pid).num_threads()
            # What the held connections cost while nothing moves (250 ms slices).
            idle_cpu = psutil.Process(proxy.pid).cpu_percent(interval=1.0)
        finally:
            held.set()
            for s in socks:
                s.close()
        assert served == [True] * 5
        print(f"\nslowloris {idle} + zero-window 8: 5 of 5 guests served; proxy RSS "
              f"{rss_before:.1f} -> {rss_held:.1f} MiB, {threads} threads, {idle_cpu:.0f}% CPU "
              f"while they idle")
        assert rss_held < rss_before + 400
        wait_until(lambda: stats(sp)["open"] == 0, 60, "all closed")

"""Kernel.connections(): the kernel's sockets through sock_diag, as ss lists them."""

from __future__ import annotations

import socket
import time

import pytest

import lkl
from lkl.connections import Connection


def _find(k: lkl.Kernel, local: tuple[str, int], proto: str = "tcp") -> Connection:
    rows = [c for c in k.connections() if c.local == local and c.proto == proto
            and c.state != "LISTEN"]
    assert len(rows) == 1, rows
    return rows[0]


@pytest.mark.parametrize("family,host", [(lkl.AF_INET, "127.0.0.1"), (lkl.AF_INET6, "::1")])
def test_tcp_pair_with_tcp_info(kernel: lkl.Kernel, family: int, host: str) -> None:
    srv = kernel.socket(family, lkl.SOCK_STREAM)
    srv.bind((host, 0))
    srv.listen(7)
    cli = kernel.socket(family, lkl.SOCK_STREAM)
    cli.settimeout(10)
    cli.connect(srv.getsockname()[:2])
    conn, _ = srv.accept()
    conn.settimeout(10)
    try:
        cli.sendall(b"a" * 100_000)
        got = 0
        while got < 60_000:
            got += len(conn.recv(60_000 - got))
        # What is left unread sits in the receiver's queue.
        deadline = time.monotonic() + 5
        while True:
            rx = _find(kernel, conn.getsockname()[:2])
            if rx.recv_q == 40_000 or time.monotonic() > deadline:
                break
            time.sleep(0.01)  # the last segments may still be on their way
        assert rx.recv_q == 40_000, rx
        assert rx.bytes_received == 100_000, rx
        tx = _find(kernel, cli.getsockname()[:2])
        assert tx.family == family and tx.state == "ESTABLISHED"
        assert tx.remote == srv.getsockname()[:2]
        assert tx.bytes_acked is not None and tx.bytes_acked >= 100_000, tx
        assert tx.rtt_us is not None and 0 < tx.rtt_us < 1_000_000, tx
        assert tx.cwnd is not None and tx.cwnd >= 10 and tx.mss and tx.mss > 1000, tx
        assert tx.congestion == kernel.sysctl("net.ipv4.tcp_congestion_control")
        assert tx.inode > 0 and tx.inode != rx.inode
        listen = [c for c in kernel.connections() if c.local == srv.getsockname()[:2]
                  and c.state == "LISTEN"]
        assert len(listen) == 1 and listen[0].send_q == 7, listen  # the backlog, as ss shows
    finally:
        for s in (cli, conn, srv):
            s.close()


def test_udp_rows_and_filters(kernel: lkl.Kernel) -> None:
    u4 = kernel.socket(lkl.AF_INET, lkl.SOCK_DGRAM)
    u4.bind(("127.0.0.1", 0))
    u6 = kernel.socket(lkl.AF_INET6, lkl.SOCK_DGRAM)
    u6.bind(("::1", 0))
    u6.connect(("::1", 9))
    addr4 = u4.getsockname()
    try:
        u4.sendto(b"xyz", u4.getsockname())
        rows = kernel.connections(tcp=False)
        assert all(c.proto == "udp" for c in rows)
        r4 = [c for c in rows if c.local == u4.getsockname()]
        assert len(r4) == 1 and r4[0].state == "UNCONN" and r4[0].family == socket.AF_INET
        assert r4[0].recv_q > 0 and r4[0].rtt_us is None, r4
        r6 = [c for c in rows if c.local == u6.getsockname()[:2]]
        assert len(r6) == 1 and r6[0].state == "ESTABLISHED" and r6[0].remote == ("::1", 9)
        assert not [c for c in kernel.connections(udp=False) if c.proto == "udp"]
    finally:
        u4.close()
        u6.close()
    assert not [c for c in kernel.connections() if c.local == addr4]

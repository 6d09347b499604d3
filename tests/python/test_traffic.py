"""Data through the kernel's stack: TCP echo at scale, UDP, IPv6, AF_UNIX."""

import hashlib
import os
import threading
import time

import pytest
from helpers import tcp_pair

import lkl

CLIENTS = 16
PER_CLIENT = 4 << 20
CHUNK = 64 << 10


def _echo_server(kernel, family, host):
    srv = kernel.socket(family, lkl.SOCK_STREAM)
    srv.setsockopt(lkl.SOL_SOCKET, lkl.SO_REUSEADDR, 1)
    srv.bind((host, 0))
    srv.listen(64)
    threads = []
    stop = threading.Event()

    def handle(conn):
        with conn:
            buf = bytearray(CHUNK)
            view = memoryview(buf)
            while True:
                n = conn.recv_into(buf)
                if not n:
                    return
                conn.sendall(view[:n])

    def accept_loop():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            t = threading.Thread(target=handle, args=(conn,), daemon=True)
            t.start()
            threads.append(t)

    acceptor = threading.Thread(target=accept_loop, daemon=True)
    acceptor.start()

    def shutdown():
        stop.set()
        acceptor.join(10)
        for t in threads:
            t.join(10)
        srv.close()
        assert not acceptor.is_alive() and not any(t.is_alive() for t in threads)

    return srv.getsockname(), shutdown


def _client(kernel, family, address, seed, results):
    payload = hashlib.shake_256(seed.to_bytes(4, "big")).digest(PER_CLIENT)
    want = hashlib.sha256(payload).hexdigest()
    got = hashlib.sha256()
    with kernel.socket(family, lkl.SOCK_STREAM) as s:
        s.settimeout(60)
        s.connect(address)

        def send():
            view = memoryview(payload)
            for off in range(0, len(view), CHUNK):
                s.sendall(view[off:off + CHUNK])
            s.shutdown(lkl.SHUT_WR)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        buf = bytearray(CHUNK)
        total = 0
        while True:
            n = s.recv_into(buf)
            if not n:
                break
            got.update(memoryview(buf)[:n])
            total += n
        sender.join(30)
    results[seed] = (total, got.hexdigest() == want)


@pytest.mark.watchdog(150)
def test_threaded_tcp_echo_16_clients_4mib_each(kernel):
    address, shutdown = _echo_server(kernel, lkl.AF_INET, "127.0.0.1")
    results = {}
    t0 = time.monotonic()
    clients = [threading.Thread(target=_client, args=(kernel, lkl.AF_INET, address, i, results),
                                daemon=True) for i in range(CLIENTS)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(120)
    elapsed = time.monotonic() - t0
    shutdown()
    assert not any(c.is_alive() for c in clients), "clients hung"
    assert results == {i: (PER_CLIENT, True) for i in range(CLIENTS)}
    print(f"\n16 x 4 MiB echo: {elapsed:.2f} s, "
          f"{2 * CLIENTS * PER_CLIENT / elapsed / 1e6:.0f} MB/s through the kernel")


def test_tcp_echo_ipv6(kernel):
    address, shutdown = _echo_server(kernel, lkl.AF_INET6, "::1")
    assert address[0] == "::1" and len(address) == 4
    results = {}
    _client(kernel, lkl.AF_INET6, address, 99, results)
    shutdown()
    assert results == {99: (PER_CLIENT, True)}


def test_udp_datagrams(kernel):
    with kernel.socket(lkl.AF_INET, lkl.SOCK_DGRAM) as a, \
            kernel.socket(lkl.AF_INET, lkl.SOCK_DGRAM) as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        a.settimeout(5)
        b.settimeout(5)
        messages = [os.urandom(n) for n in (0, 1, 100, 1400, 8000, 65507)]
        for m in messages:
            assert b.sendto(m, a.getsockname()) == len(m)
        for m in messages:
            data, addr = a.recvfrom(65536)
            assert data == m and addr == b.getsockname()
        # connected UDP, recv_into, recvfrom_into
        b.connect(a.getsockname())
        b.send(b"hello")
        buf = bytearray(16)
        n, addr = a.recvfrom_into(buf)
        assert bytes(buf[:n]) == b"hello" and addr == b.getsockname()
        a.sendto(b"back", b.getsockname())
        assert b.recv_into(buf, 4) == 4 and bytes(buf[:4]) == b"back"
        # truncation: MSG_TRUNC in recvmsg flags
        b.send(b"x" * 100)
        data, anc, flags, addr = a.recvmsg(10)
        assert data == b"x" * 10 and flags & lkl.MSG_TRUNC and anc == []
        with pytest.raises(OSError) as info:
            b.send(b"x" * 70000)
        assert info.value.errno == 90          # EMSGSIZE


def test_udp_ipv6_and_sendmsg_recvmsg(kernel):
    with kernel.socket(lkl.AF_INET6, lkl.SOCK_DGRAM) as a, \
            kernel.socket(lkl.AF_INET6, lkl.SOCK_DGRAM) as b:
        a.bind(("::1", 0))
        a.settimeout(5)
        a.setsockopt(lkl.IPPROTO_IPV6, lkl.IPV6_RECVPKTINFO, 1)
        assert b.sendmsg([b"ab", memoryview(b"cd"), bytearray(b"ef")], [], 0,
                         a.getsockname()) == 6
        data, anc, flags, addr = a.recvmsg(100, 1024)
        assert data == b"abcdef"
        assert addr[0] == "::1" and addr[1] == b.getsockname()[1]
        # IPV6_PKTINFO: the destination address and interface index.
        (level, kind, info), = anc
        assert level == lkl.IPPROTO_IPV6 and len(info) == 20
        assert info[:16] == b"\0" * 15 + b"\1"


def test_af_unix_stream_pair(kernel):
    path = "/tmp/echo.sock"
    with kernel.socket(lkl.AF_UNIX, lkl.SOCK_STREAM) as srv:
        srv.bind(path)
        srv.listen()
        assert srv.getsockname() == path
        with kernel.socket(lkl.AF_UNIX, lkl.SOCK_STREAM) as cli:
            cli.connect(path)
            conn, addr = srv.accept()
            with conn:
                assert addr == ""                    # an unnamed peer
                cli.sendall(b"over unix")
                assert conn.recv(100) == b"over unix"
    with kernel.socket(lkl.AF_UNIX, lkl.SOCK_DGRAM) as d:
        d.bind(b"\0abstract-name")
        assert d.getsockname() == b"\0abstract-name"


def test_makefile_and_large_sendall_zero_copy(kernel):
    cli, conn, srv = tcp_pair(kernel)
    with srv, cli, conn:
        w = cli.makefile("wb")
        r = conn.makefile("r", encoding="ascii")
        w.write(b"line one\nline two\n")
        w.flush()
        assert r.readline() == "line one\n"
        assert r.readline() == "line two\n"
        w.close()
        r.close()
        # One 8 MiB memoryview passes to the kernel in place.
        blob = memoryview(bytearray(os.urandom(8 << 20)))
        t = threading.Thread(target=cli.sendall, args=(blob,), daemon=True)
        t.start()
        sink = bytearray(len(blob))
        view = memoryview(sink)
        got = 0
        while got < len(sink):
            got += conn.recv_into(view[got:])
        t.join(30)
        assert sink == blob

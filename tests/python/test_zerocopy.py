"""MSG_ZEROCOPY on lkl (issue 16): Linux semantics from any buffer.

Host memory has no struct page, so a zerocopy send from it is copied
into kernel pages (native/arch/lkl/kernel/zerocopy.c) and completes as
COPIED; a buffer from Kernel.alloc_buffer is kernel RAM with a VMA and
its pages are referenced.  Loopback always copies at delivery
(skb_orphan_frags_rx), so here every completion says COPIED too; the
not-copied path over a TAP is tests/test_zerocopy_tap.py.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from typing import Any

import pytest
from helpers import run_ok, tcp_pair

import lkl
from lkl import zerocopy

MSG_ZEROCOPY = lkl.MSG_ZEROCOPY


def _recv_exactly(sock: Any, n: int) -> bytes:
    parts, got = [], 0
    sock.settimeout(10)
    while got < n:
        chunk = sock.recv(min(1 << 20, n - got))
        assert chunk, "peer closed early"
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


@pytest.fixture
def pair(kernel: Any) -> Any:
    cli, conn, srv = tcp_pair(kernel)
    zerocopy.enable(cli)
    yield cli, conn
    for s in (cli, conn, srv):
        s.close()


def test_send_from_host_heap_succeeds_and_completes_copied(pair: Any) -> None:
    cli, conn = pair
    data = os.urandom(100_000)
    buf = bytearray(data)                      # host heap: no struct page
    assert cli.send(buf, MSG_ZEROCOPY) > 0
    sent = cli.send(memoryview(buf)[0:0], 0)   # a copy send in between is fine
    assert sent == 0
    done = zerocopy.wait_completions(cli, 1)
    assert done[0].first == 0 and done[0].copied


def test_sendall_from_heap_delivers_every_byte(pair: Any) -> None:
    cli, conn = pair
    data = os.urandom(3 << 20)
    t = threading.Thread(target=lambda: cli.sendall(data, MSG_ZEROCOPY))
    t.start()
    got = _recv_exactly(conn, len(data))
    t.join(10)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    done = zerocopy.wait_completions(cli, 1)
    assert all(c.copied for c in done)


def test_without_msg_zerocopy_no_completion(pair: Any) -> None:
    cli, conn = pair
    cli.sendall(b"x" * 5000)
    assert _recv_exactly(conn, 5000) == b"x" * 5000
    assert zerocopy.completions(cli) == []


def test_without_so_zerocopy_flag_is_ignored(kernel: Any) -> None:
    cli, conn, srv = tcp_pair(kernel)
    try:
        assert cli.send(b"y" * 4000, MSG_ZEROCOPY) == 4000
        assert _recv_exactly(conn, 4000) == b"y" * 4000
        assert zerocopy.completions(cli) == []
    finally:
        for s in (cli, conn, srv):
            s.close()


def test_completions_in_order_and_coalesced(pair: Any) -> None:
    cli, conn = pair
    n = 20
    for i in range(n):
        assert cli.send(bytes([i]) * 3000, MSG_ZEROCOPY) == 3000
    got = _recv_exactly(conn, n * 3000)
    assert got == b"".join(bytes([i]) * 3000 for i in range(n))
    done = zerocopy.wait_completions(cli, n)
    ids = [i for c in done for i in range(c.first, c.last + 1)]
    assert ids == list(range(n))               # each id once, in order
    assert len(done) < n                       # ranges were coalesced


def test_kernel_buffer_send_and_mutation_after_completion(kernel: Any, pair: Any) -> None:
    cli, conn = pair
    size = 1 << 20
    with kernel.alloc_buffer(size) as kb:
        view = memoryview(kb)
        original = os.urandom(size)
        view[:] = original
        sent = 0
        while sent < size:
            sent += cli.send(view[sent:], MSG_ZEROCOPY)
        first = _recv_exactly(conn, size // 2)
        done = zerocopy.wait_completions(cli, 1)   # needs the peer's ACKs: read first
        view[:] = b"\0" * size                 # after completion: sent bytes unchanged
        view.release()
        conn_data = first + _recv_exactly(conn, size - size // 2)
    assert hashlib.sha256(conn_data).digest() == hashlib.sha256(original).digest()
    assert done[0].first == 0


def test_heap_buffer_mutated_after_send_returns(pair: Any) -> None:
    """Host memory is copied during send: what was sent is what it held then."""
    cli, conn = pair
    data = os.urandom(200_000)
    buf = bytearray(data)
    sent = 0
    while sent < len(buf):
        sent += cli.send(memoryview(buf)[sent:], MSG_ZEROCOPY)
    buf[:] = b"\xff" * len(buf)               # before its completion, even
    got = _recv_exactly(conn, len(data))
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert all(c.copied for c in zerocopy.wait_completions(cli, 1))


def test_bad_pointer_is_efault(kernel: Any, pair: Any) -> None:
    cli, conn = pair
    with pytest.raises(OSError) as e:
        kernel.syscall("sendto", cli.kfd, 16, 4000, MSG_ZEROCOPY, 0, 0)
    assert e.value.errno == errno.EFAULT
    assert zerocopy.completions(cli) == []


def test_kernel_buffer_misuse(kernel: Any) -> None:
    with pytest.raises(ValueError):
        kernel.alloc_buffer(0)
    kb = kernel.alloc_buffer(4096)
    assert len(kb) == 4096 and not kb.closed
    view = memoryview(kb)
    with pytest.raises(BufferError):
        kb.close()                             # a view is alive
    view.release()
    kb.close()
    kb.close()                                 # idempotent
    assert kb.closed
    with pytest.raises(ValueError):
        memoryview(kb)
    with pytest.raises(ValueError):
        _ = kb.address


def test_halt_with_zerocopy_sends_in_flight() -> None:
    out = run_ok("""
        import os, threading, lkl
        from lkl import zerocopy
        k = lkl.boot(memory="128M")
        srv = k.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
        cli = k.socket(); cli.connect(srv.getsockname()); conn, _ = srv.accept()
        zerocopy.enable(cli)
        kb = k.alloc_buffer(1 << 20)
        memoryview(kb)[:] = os.urandom(1 << 20)
        heap = bytearray(1 << 20)
        errors = []
        def pump():
            try:
                for i in range(200):
                    cli.send(kb if i % 2 else heap, lkl.MSG_ZEROCOPY)
            except OSError as e:
                errors.append(e.errno)
        t = threading.Thread(target=pump); t.start()
        # nobody reads: the send queue fills and the pump blocks in the kernel
        k.halt()
        t.join(20)
        assert not t.is_alive()
        kb.close()                 # after halt: nothing to unmap, no error
        print("halted", errors[:1])
    """)
    assert "halted" in out


@pytest.mark.parametrize(("family", "addr"), [(lkl.AF_INET, "127.0.0.1"), (lkl.AF_INET6, "::1")])
def test_udp_zerocopy_from_heap_and_kernel_buffer(kernel: Any, family: int, addr: str) -> None:
    rx = kernel.socket(family, lkl.SOCK_DGRAM)
    tx = kernel.socket(family, lkl.SOCK_DGRAM)
    kb = kernel.alloc_buffer(4096)
    try:
        rx.bind((addr, 0))
        rx.settimeout(10)
        zerocopy.enable(tx)
        data = os.urandom(3000)
        heap = bytearray(data)
        assert tx.sendto(heap, MSG_ZEROCOPY, rx.getsockname()) == len(data)
        heap[:] = bytes(len(data))             # copied during sendto
        assert rx.recv(4096) == data
        view = memoryview(kb)
        view[:len(data)] = data
        assert tx.sendto(view[:len(data)], MSG_ZEROCOPY, rx.getsockname()) == len(data)
        assert rx.recv(4096) == data
        view.release()
        done = zerocopy.wait_completions(tx, 2)
        assert [i for c in done for i in range(c.first, c.last + 1)] == [0, 1]
        assert all(c.copied for c in done)     # loopback copies at delivery anyway
    finally:
        kb.close()
        rx.close()
        tx.close()

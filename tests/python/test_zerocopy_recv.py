"""Zero-copy receive (issue 16): Socket.recv_zerocopy reads the kernel's skbs in place.

Kernel memory is host memory, so the views are the received skbs' own
data (native/arch/lkl/kernel/zerocopy_rx.c), held by the kernel until
released and charged to the socket's receive buffer meanwhile.  The C
API is tests/native/zerocopy_recv.c (tests/test_native.py).
"""

from __future__ import annotations

import errno
import hashlib
import os
import random
import socket as stdsocket
import struct
import threading
import time
from typing import Any

import pytest
from conftest import SESSION_MODE
from helpers import run_ok, run_pytest, tcp_pair

import lkl
from lkl import _lkl
from lkl.zerocopy import ZeroCopyRecv

SOL_SOCKET = stdsocket.SOL_SOCKET
SO_RCVBUF = stdsocket.SO_RCVBUF
SO_RCVBUFFORCE = 33
TCP_INFO = 11
MSG_DONTWAIT = lkl.MSG_DONTWAIT
RELEASE_NR = 245            # __NR_lkl_zerocopy_release (uapi/asm/unistd.h)


@pytest.fixture
def pair(kernel: Any) -> Any:
    cli, conn, srv = tcp_pair(kernel)
    conn.settimeout(10)
    yield cli, conn
    for s in (cli, conn, srv):
        s.close()


def _big_rcvbuf(sock: Any, size: int = 4 << 20) -> None:
    """Room to hold reads while asking for more (held bytes stay charged;
    the window closes when less than a 64 KiB loopback segment is free)."""
    sock.setsockopt(SOL_SOCKET, SO_RCVBUFFORCE, size)


def _sender(sock: Any, data: bytes) -> threading.Thread:
    t = threading.Thread(target=sock.sendall, args=(data,), daemon=True)
    t.start()
    return t


def _assert_einval(token: int) -> None:
    """The kernel refuses to release ``token`` (unknown or released)."""
    with pytest.raises(OSError) as e:
        _lkl.syscall(RELEASE_NR, token)
    assert e.value.errno == errno.EINVAL


def _log_has_no_warnings(kernel: Any) -> None:
    log = kernel.log
    assert "WARNING" not in log and "BUG" not in log, log[-3000:]


def test_small_message_is_one_view_released_after(pair: Any) -> None:
    cli, conn = pair
    cli.sendall(b"hello, zero copy")
    z = conn.recv_zerocopy(1000)
    assert isinstance(z, ZeroCopyRecv)
    assert len(z) == z.nbytes == 16 and z.token > 0 and not z.released
    views = z.views
    assert [bytes(v) for v in views] == [b"hello, zero copy"]
    assert all(v.readonly for v in views)
    assert z.tobytes() == b"hello, zero copy"
    z.release()
    assert z.released
    with pytest.raises(ValueError):
        views[0][0]
    with pytest.raises(ValueError):
        bytes(views[0])
    with pytest.raises(ValueError):
        _ = z.views
    with pytest.raises(ValueError):
        z.tobytes()
    z.release()                                # a second release does nothing


def test_views_are_read_only(pair: Any) -> None:
    cli, conn = pair
    cli.sendall(b"abc")
    with conn.recv_zerocopy(10) as z:
        v = z.views[0]
        assert v.readonly
        with pytest.raises(TypeError):
            v[0] = 0
        with pytest.raises(TypeError):         # not a writable buffer
            conn.recv_into(v)
        del v
    assert z.released


@pytest.mark.watchdog(120)
def test_large_transfer_keeps_every_byte(pair: Any, kernel: Any) -> None:
    cli, conn = pair
    data = os.urandom(24 << 20)
    t = _sender(cli, data)
    h, got, segs = hashlib.sha256(), 0, 0
    while got < len(data):
        with conn.recv_zerocopy(1 << 16, max_segments=16) as z:
            assert len(z) > 0, "early EOF"
            assert len(z.views) <= 16
            assert sum(len(v) for v in z.views) == len(z)
            for v in z.views:
                h.update(v)
            segs += len(z.views)
            got += len(z)
    t.join(10)
    assert got == len(data)
    assert h.digest() == hashlib.sha256(data).digest()
    _log_has_no_warnings(kernel)


@pytest.mark.watchdog(120)
def test_held_reads_released_in_any_order(pair: Any) -> None:
    cli, conn = pair
    _big_rcvbuf(conn)
    data = os.urandom(6 << 20)
    t = _sender(cli, data)
    rng = random.Random(16)
    held: list[tuple[int, ZeroCopyRecv]] = []
    parts: dict[int, bytes] = {}
    got = 0
    while got < len(data):
        z = conn.recv_zerocopy(1 << 16)
        assert len(z) > 0
        held.append((got, z))
        got += len(z)
        if len(held) >= 6:                     # release a random one of the last six
            off, old = held.pop(rng.randrange(len(held)))
            parts[off] = old.tobytes()
            old.release()
    rng.shuffle(held)
    for off, z in held:
        parts[off] = z.tobytes()
        z.release()
    t.join(10)
    assert b"".join(parts[k] for k in sorted(parts)) == data


def test_partial_reads_mix_with_recv(pair: Any) -> None:
    cli, conn = pair
    data = bytes(range(256)) * 64              # 16 KiB in one write: one skb
    cli.sendall(data)
    out = bytearray()
    deadline = time.monotonic() + 10
    while len(out) < 6000 and time.monotonic() < deadline:
        out += conn.recv(6000 - len(out))      # a part of the skb
    z1 = conn.recv_zerocopy(100)               # the middle of an skb: a clone is held
    z2 = conn.recv_zerocopy(50, max_segments=1)
    out += conn.recv(10)
    with z1, z2:
        out[6000:6000] = z1.tobytes() + z2.tobytes()
    while len(out) < len(data) and time.monotonic() < deadline:
        with conn.recv_zerocopy(len(data)) as z:
            out += z.tobytes()
    assert len(z1) == 100 and len(z2) == 50
    assert bytes(out) == data


def test_segment_limit_returns_fewer_bytes(pair: Any) -> None:
    cli, conn = pair
    for _ in range(8):                         # separate skbs (no coalescing guarantee)
        cli.sendall(os.urandom(3000))
        time.sleep(0.005)
    got = bytearray()
    while len(got) < 24000:
        with conn.recv_zerocopy(1 << 20, max_segments=1) as z:
            assert len(z.views) == 1
            got += z.tobytes()
    assert len(got) == 24000


def test_end_of_stream(pair: Any) -> None:
    cli, conn = pair
    cli.sendall(b"last words")
    cli.shutdown(stdsocket.SHUT_WR)
    with conn.recv_zerocopy(100) as z:
        assert z.tobytes() == b"last words"
    for _ in range(2):
        eof = conn.recv_zerocopy(100)
        assert len(eof) == 0 and eof.views == [] and eof.token == 0 and eof.released
        eof.release()


def test_nonblocking_and_timeouts(pair: Any) -> None:
    cli, conn = pair
    conn.settimeout(0)
    with pytest.raises(BlockingIOError):
        conn.recv_zerocopy(100)
    conn.settimeout(0.2)
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        conn.recv_zerocopy(100)
    assert time.monotonic() - start >= 0.15
    conn.settimeout(None)
    with pytest.raises(BlockingIOError):       # MSG_DONTWAIT on a blocking socket
        conn.recv_zerocopy(100, MSG_DONTWAIT)
    cli.sendall(b"now")
    conn.settimeout(5)
    with conn.recv_zerocopy(100) as z:
        assert z.tobytes() == b"now"


def test_blocking_read_waits_for_data(pair: Any) -> None:
    cli, conn = pair
    conn.settimeout(None)
    threading.Timer(0.2, cli.sendall, args=(b"late",)).start()
    result: list[bytes] = []

    def reader() -> None:                      # off the main thread: waits in the kernel
        with conn.recv_zerocopy(100) as z:
            result.append(z.tobytes())

    t = threading.Thread(target=reader)
    t.start()
    t.join(10)
    assert result == [b"late"]


def test_release_refused_while_derived_views_live(pair: Any) -> None:
    cli, conn = pair
    cli.sendall(b"0123456789")
    z = conn.recv_zerocopy(100)
    view = z.views[0]
    part = view[2:5]
    with pytest.raises(BufferError):
        z.release()
    assert not z.released and bytes(part) == b"234"
    del part
    again = memoryview(view)
    with pytest.raises(BufferError):
        z.release()
    del again
    z.release()
    assert z.released
    with pytest.raises(ValueError):
        view.tobytes()


def test_release_after_close(kernel: Any) -> None:
    cli, conn, srv = tcp_pair(kernel)
    cli.sendall(b"x" * 5000)
    conn.settimeout(10)
    held = []
    got = 0
    while got < 5000:
        z = conn.recv_zerocopy(1000)
        held.append(z)
        got += len(z)
    for s in (cli, conn, srv):
        s.close()
    for z in reversed(held):
        assert z.tobytes().count(b"x") == len(z)
        z.release()
    _log_has_no_warnings(kernel)


def test_dropping_the_object_releases(pair: Any) -> None:
    cli, conn = pair
    cli.sendall(b"gone")
    z = conn.recv_zerocopy(10)
    token = z.token
    del z
    _assert_einval(token)


def test_a_view_keeps_the_data_alive(pair: Any) -> None:
    cli, conn = pair
    cli.sendall(b"outlives its object")
    z = conn.recv_zerocopy(100)
    token = z.token
    view = z.views[0]
    del z
    cli.sendall(b"x" * 100_000)                # the queue moves on meanwhile
    assert bytes(view) == b"outlives its object"
    del view                                   # the last reference: released
    _assert_einval(token)


def test_misuse_raises(pair: Any, kernel: Any) -> None:
    cli, conn = pair
    with pytest.raises(ValueError):
        conn.recv_zerocopy(0)
    with pytest.raises(ValueError):
        conn.recv_zerocopy(10, max_segments=0)
    with pytest.raises(ValueError):
        conn.recv_zerocopy(10, max_segments=_lkl.ZC_MAX_SEGMENTS + 1)
    with pytest.raises(OSError) as e:
        conn.recv_zerocopy(10, lkl.MSG_PEEK)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(TypeError):
        ZeroCopyRecv()
    # Unknown and released tokens are refused by the kernel.
    _assert_einval(0)
    _assert_einval(2**31 + 5)
    cli.sendall(b"t")
    z = conn.recv_zerocopy(10)
    token = z.token
    z.release()
    _assert_einval(token)


@pytest.mark.parametrize("kind", ["udp", "udp6", "listener", "unconnected", "closed"])
def test_sockets_that_cannot(kernel: Any, kind: str) -> None:
    if kind == "udp":
        s = kernel.socket(lkl.AF_INET, lkl.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        want: tuple[int, ...] = (errno.EINVAL, errno.EOPNOTSUPP)
    elif kind == "udp6":
        s = kernel.socket(lkl.AF_INET6, lkl.SOCK_DGRAM)
        want = (errno.EINVAL, errno.EOPNOTSUPP)
    elif kind == "listener":
        s = kernel.socket()
        s.bind(("127.0.0.1", 0))
        s.listen()
        want = (errno.ENOTCONN,)
    elif kind == "unconnected":
        s = kernel.socket()
        want = (errno.ENOTCONN,)
    else:
        s = kernel.socket()
        want = (errno.EBADF,)
    s.settimeout(0)
    if kind == "closed":
        s.close()
    try:
        with pytest.raises(OSError) as e:
            s.recv_zerocopy(100)
        assert e.value.errno in want
    finally:
        s.close()


def _tcp_info(sock: Any) -> tuple[int, int]:
    """(tcpi_snd_wnd, tcpi_rcv_wnd) of struct tcp_info (6.12 layout)."""
    info = sock.getsockopt(6, TCP_INFO, 256)
    return struct.unpack_from("=II", info, 228)


@pytest.mark.watchdog(120)
def test_held_views_close_the_window_and_release_reopens_it(pair: Any) -> None:
    """Held data stays charged: the window shrinks to zero and the sender
    stalls with most of its data unsent; releasing reopens the window."""
    cli, conn = pair
    data = os.urandom(32 << 20)
    t = _sender(cli, data)
    held: list[ZeroCopyRecv] = []
    got = 0
    conn.settimeout(0.5)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            z = conn.recv_zerocopy(1 << 16)
        except TimeoutError:
            break                              # stalled: nothing more arrives
        held.append(z)
        got += len(z)
    rcvbuf = conn.getsockopt(SOL_SOCKET, SO_RCVBUF)
    assert 0 < got <= rcvbuf + (64 << 10), (got, rcvbuf)  # TCP admits one skb over
    assert got < len(data) // 4
    assert t.is_alive()                        # the sender waits for the window
    assert _tcp_info(cli)[0] < (64 << 10), _tcp_info(cli)  # peer's window: < a segment
    h = hashlib.sha256()
    for z in held:
        for v in z.views:
            h.update(v)
        z.release()
    conn.settimeout(10)
    while got < len(data):
        with conn.recv_zerocopy(1 << 16) as z:
            assert len(z) > 0
            for v in z.views:
                h.update(v)
            got += len(z)
    t.join(10)
    assert not t.is_alive()
    assert h.digest() == hashlib.sha256(data).digest()


def test_halt_with_views_held() -> None:
    out = run_ok("""
        import lkl
        k = lkl.boot()
        srv = k.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
        cli = k.socket(); cli.connect(srv.getsockname())
        conn, _ = srv.accept()
        cli.sendall(b"held across the halt")
        z = conn.recv_zerocopy(100)
        view = z.views[0]
        assert bytes(view) == b"held across the halt"
        cli.sendall(b"orphan view")
        orphan = conn.recv_zerocopy(100).views[0]   # its object is only referenced by it
        k.halt()
        for v in (view, orphan):
            try:
                v[0]
            except ValueError:
                print("view released")
        assert z.released
        z.release()
        print("release after halt ok")
    """)
    assert out.count("view released") == 2 and "release after halt ok" in out


@pytest.mark.isolated
@pytest.mark.watchdog(200)
@pytest.mark.skipif(SESSION_MODE == "direct", reason="already the direct-mode run")
def test_this_file_in_direct_mode() -> None:
    proc = run_pytest(__file__, "-k", "not direct_mode",
                      env={"LKL_TEST_SYSCALL_MODE": "direct", "LKL_TEST_WATCHDOG": "60"},
                      timeout=180)
    assert proc.returncode == 0, f"{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"

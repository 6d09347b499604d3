"""Readiness both ways: ``fileno()`` is readable and writable exactly as the
kernel socket is.

Each test runs on three stacks that must agree: the host's own sockets
(``socket.socket`` on the host loopback), ``lkl.Socket`` and the
stdlib-compatible ``lkl.socket.socket``, both on the kernel's loopback.
"""

from __future__ import annotations

import errno
import os
import select
import selectors
import socket
import threading
import time
from typing import Any

import pytest
from helpers import run_ok

import lkl
import lkl.socket as lsocket
from harness import sockets

STACKS = os.environ.get("LKL_TEST_STACKS", "stdlib,lkl").split(",")
PARAMS = [p for p in ("host", "lkl.Socket", "lkl.socket") if (p == "host" and "stdlib" in STACKS)
          or (p != "host" and "lkl" in STACKS)]


@pytest.fixture(params=PARAMS)
def make(request: pytest.FixtureRequest) -> Any:
    """A socket factory of one stack: make(family=AF_INET, type=SOCK_STREAM)."""
    if request.param == "host":
        factory: Any = socket.socket
    else:
        kernel = request.getfixturevalue("kernel")
        factory = kernel.socket if request.param == "lkl.Socket" else lsocket.socket
    opened: list[Any] = []

    def new(family: int = socket.AF_INET, type: int = socket.SOCK_STREAM) -> Any:
        sock = factory(family, type)
        opened.append(sock)
        return sock

    new.opened = opened  # type: ignore[attr-defined]
    yield new
    for sock in opened:
        sock.close()


def shown(sock: Any, timeout: float = 0.0) -> tuple[bool, bool]:
    """(readable, writable) as the host's select() sees fileno()."""
    r, w, _ = select.select([sock], [sock], [], timeout)
    return bool(r), bool(w)


def wait_for(sock: Any, readable: bool | None = None, writable: bool | None = None,
             timeout: float = 5.0) -> tuple[bool, bool]:
    """Wait (select, with a deadline) until fileno() shows what is asked."""
    deadline = time.monotonic() + timeout
    while True:
        state = shown(sock)
        if (readable is None or state[0] == readable) and (writable is None
                                                           or state[1] == writable):
            return state
        left = deadline - time.monotonic()
        if left <= 0:
            return state
        if readable or writable:
            select.select([sock] if readable else [], [sock] if writable else [], [], left)
        else:
            time.sleep(0.01)  # waiting for "not ready": no event wakes it


def pair(make: Any) -> tuple[Any, Any, Any]:
    cli, conn, srv = sockets.tcp_pair(make)
    make.opened.append(conn)
    return cli, conn, srv


def test_fresh_and_listening_sockets_show_what_the_host_shows(make):
    fresh = make()
    assert shown(fresh) == (True, True)          # TCP_CLOSE: POLLOUT | POLLHUP
    udp = make(socket.AF_INET, socket.SOCK_DGRAM)
    assert shown(udp) == (False, True)
    srv = make()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    assert shown(srv) == (False, False)          # nothing to accept, never writable
    cli = make()
    cli.connect(srv.getsockname())
    assert wait_for(srv, readable=True) == (True, False)
    conn, _ = srv.accept()
    make.opened.append(conn)
    assert shown(srv) == (False, False)          # accept consumed it


def test_connecting_socket_shows_neither_until_the_handshake_completes(make):
    srv = make()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)                                # the accept queue holds one
    first = make()
    first.connect(srv.getsockname())
    assert wait_for(srv, readable=True)[0]
    late = make()
    late.setblocking(False)
    with pytest.raises(BlockingIOError):
        late.connect(srv.getsockname())          # its SYN is dropped: queue full
    assert shown(late, 0.3) == (False, False)    # SYN_SENT: neither
    conn, _ = srv.accept()                       # room again: the SYN retry gets in
    make.opened.append(conn)
    assert wait_for(late, writable=True, timeout=8) == (False, True)
    assert late.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
    late.getpeername()


def test_peer_that_does_not_read_makes_it_unwritable_until_drained(make):
    cli, conn, _ = pair(make)
    cli.setblocking(False)
    assert shown(cli) == (False, True)
    sent = 0
    with pytest.raises(BlockingIOError):
        for _ in range(10_000):
            sent += cli.send(b"x" * 65536)
    assert shown(cli) == (False, False)          # its own call re-checked it
    # The peer's data reaches its endpoint through the poller thread.
    assert wait_for(conn, readable=True) == (True, True)
    conn.settimeout(5)
    got = 0
    while got < sent:
        got += len(conn.recv(1 << 20))
    assert wait_for(cli, writable=True) == (False, True)
    assert shown(conn) == (False, True)


def test_data_eof_and_reset_show_as_select_reports_them(make):
    cli, conn, _ = pair(make)
    assert shown(conn) == (False, True)
    cli.sendall(b"hello")
    assert wait_for(conn, readable=True) == (True, True)
    assert conn.recv(2) == b"he"
    assert shown(conn) == (True, True)           # still 3 bytes
    assert conn.recv(10) == b"llo"
    assert shown(conn) == (False, True)
    cli.shutdown(socket.SHUT_WR)
    assert wait_for(conn, readable=True)[0]      # EOF
    assert conn.recv(10) == b""
    assert shown(conn)[0]                        # EOF stays readable
    # A reset: the peer closes with unread data, we get RST: both shown.
    cli2, conn2, _ = pair(make)
    cli2.sendall(b"unread")
    assert wait_for(conn2, readable=True)[0]
    conn2.close()
    assert wait_for(cli2, readable=True, writable=True) == (True, True)
    with pytest.raises(ConnectionResetError):
        cli2.recv(10)


def test_selectors_see_both_transitions(make):
    cli, conn, _ = pair(make)
    cli.setblocking(False)
    with selectors.DefaultSelector() as sel:
        sel.register(cli, selectors.EVENT_READ | selectors.EVENT_WRITE)
        events = sel.select(5)
        assert [(key.fileobj, ev) for key, ev in events] == [(cli, selectors.EVENT_WRITE)]
        with pytest.raises(BlockingIOError):
            for _ in range(10_000):
                cli.send(b"y" * 65536)
        assert sel.select(0.2) == []             # full and nothing to read: no spin
        conn.sendall(b"ping")
        events = sel.select(5)
        assert [(key.fileobj, ev) for key, ev in events] == [(cli, selectors.EVENT_READ)]
        assert cli.recv(10) == b"ping"
        assert sel.select(0.1) == []


def test_endpoint_is_lazy_and_closes_with_the_socket(kernel):
    fds = lambda: len(os.listdir("/proc/self/fd"))  # noqa: E731
    before = fds()
    socks = [kernel.socket() for _ in range(20)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
        s.listen()
    assert fds() == before                       # waiting in the kernel needs none
    numbers = [s.fileno() for s in socks]
    assert fds() == before + 2 * len(socks)      # the endpoint and its peer
    assert len(set(numbers)) == len(numbers)
    probe = socket.socket(fileno=os.dup(numbers[0]))  # a host AF_UNIX socket
    assert probe.family == socket.AF_UNIX and probe.type == socket.SOCK_STREAM
    probe.close()
    for s in socks:
        s.close()
    assert fds() == before
    assert all(s.fileno() == -1 for s in socks)


def test_many_watches_and_reused_slots_stay_true(kernel):
    srv = kernel.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(256)
    for _round in range(2):                      # the second round reuses slots
        pairs = []
        try:
            for _ in range(100):
                cli = kernel.socket()
                cli.connect(srv.getsockname())
                conn, _ = srv.accept()
                pairs.append((cli, conn))
                conn.fileno()
            for i, (cli, _conn) in enumerate(pairs):
                if i % 2:
                    cli.sendall(b"z")
            for i, (_cli, conn) in enumerate(pairs):
                assert wait_for(conn, readable=bool(i % 2), timeout=5)[0] == bool(i % 2)
        finally:
            for cli, conn in pairs:
                cli.close()
                conn.close()
    srv.close()


def test_concurrent_calls_leave_no_stale_readiness(kernel):
    """Threads send and receive on both ends while selects run: afterwards
    the endpoints show exactly what the kernel says."""
    cli, conn, srv = sockets.tcp_pair(kernel.socket)
    rounds = 2000
    errors: list[BaseException] = []

    def echo() -> None:
        try:
            conn.settimeout(10)
            for _ in range(rounds):
                conn.sendall(conn.recv(1))
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=echo)
    t.start()
    cli.settimeout(10)
    try:
        for i in range(rounds):
            cli.sendall(bytes([i & 0xFF]))
            select.select([conn, cli], [conn, cli], [], 0)
            assert cli.recv(1) == bytes([i & 0xFF])
    finally:
        t.join(20)
    assert not errors and not t.is_alive()
    for s in (cli, conn):
        kr, kw, _ = lkl.select([s], [s], [], 0)
        assert shown(s) == (bool(kr), bool(kw)) == s._shown()
    for s in (cli, conn, srv):
        s.close()


def test_fileno_of_a_closed_socket_is_minus_one(make):
    s = make()
    assert s.fileno() >= 0
    s.close()
    assert s.fileno() == -1


@pytest.mark.isolated
def test_a_failed_poller_is_loud():
    out = run_ok("""
        import errno, time, lkl
        k = lkl.boot()
        srv = k.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
        cli = k.socket(); cli.connect(srv.getsockname()); conn, _ = srv.accept()
        conn.fileno()
        assert lkl._lkl.poller_error() == 0 and lkl._lkl.poller_failures() == 0
        lkl._lkl._poller_break()          # the poller's next epoll_pwait fails
        cli.sendall(b"wake")              # an event ends its current wait
        deadline = time.monotonic() + 10
        while lkl._lkl.poller_error() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert lkl._lkl.poller_error() == errno.EBADF, lkl._lkl.poller_error()
        assert lkl._lkl.poller_failures() == 1
        for s in (conn, k.socket()):
            try:
                s.fileno()
            except OSError as e:
                assert e.errno == errno.EIO and "poller" in str(e), e
            else:
                raise AssertionError("fileno() worked after the poller failed")
        deadline = time.monotonic() + 5
        while "readiness poller stopped" not in k.log and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "readiness poller stopped" in k.log
        assert conn.recv(4) == b"wake"    # the sockets themselves still work
        print("ok")
        k.halt()
    """)
    assert out.strip() == "ok"


def test_errors_of_the_endpoint_api(kernel):
    s = kernel.socket()
    s.close()
    assert s.fileno() == -1
    with pytest.raises(OSError) as info:
        s.recv(1)
    assert info.value.errno == errno.EBADF

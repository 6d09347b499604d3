"""One socket suite, two stacks: the standard library on the host loopback
and lkl sockets on the kernel's loopback must behave the same (the
uvloop way: the same test class runs against both)."""

from __future__ import annotations

import errno
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

import lkl


@dataclass
class Stack:
    name: str
    socket: Callable[..., Any]
    ns: Any                  # where AF_INET, SOCK_STREAM, ... live

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ns, name)

    def tcp(self, family: Any = None) -> Any:
        return self.socket(family or self.ns.AF_INET, self.ns.SOCK_STREAM)

    def udp(self, family: Any = None) -> Any:
        return self.socket(family or self.ns.AF_INET, self.ns.SOCK_DGRAM)

    def pair(self, family: Any = None, host: str = "127.0.0.1") -> tuple[Any, Any, Any]:
        """A connected (client, server-side) TCP pair and the listener."""
        srv = self.tcp(family)
        srv.bind((host, 0))
        srv.listen()
        cli = self.tcp(family)
        cli.connect(srv.getsockname())
        conn, _ = srv.accept()
        return cli, conn, srv


STACKS = os.environ.get("LKL_TEST_STACKS", "stdlib,lkl").split(",")


@pytest.fixture(params=STACKS)
def stack(request):
    if request.param == "stdlib":
        s = Stack("stdlib", socket.socket, socket)
    else:
        k = request.getfixturevalue("kernel")
        s = Stack("lkl", k.socket, lkl)
    opened = []
    real = s.socket

    def tracked(*args, **kwargs):
        sock = real(*args, **kwargs)
        opened.append(sock)
        return sock

    s.socket = tracked
    yield s
    for sock in opened:
        sock.close()


def _closed_port(stack):
    with stack.tcp() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- connections -------------------------------------------------------------

def test_echo_and_addresses(stack):
    cli, conn, srv = stack.pair()
    assert cli.getpeername() == srv.getsockname() == conn.getsockname()
    assert conn.getpeername() == cli.getsockname()
    host, port = cli.getsockname()
    assert isinstance(host, str) and isinstance(port, int)
    assert cli.send(b"hello") == 5
    assert conn.recv(100) == b"hello"
    conn.sendall(b"world" * 1000)
    got = b""
    while len(got) < 5000:
        got += cli.recv(8192)
    assert got == b"world" * 1000
    assert cli.family == stack.AF_INET and cli.type == stack.SOCK_STREAM and cli.proto == 0


def test_ipv6_addresses(stack):
    cli, conn, srv = stack.pair(stack.AF_INET6, "::1")
    name = srv.getsockname()
    assert name[0] == "::1" and len(name) == 4 and name[2:] == (0, 0)
    assert cli.getpeername() == name
    with stack.tcp(stack.AF_INET6) as s:
        s.setsockopt(stack.IPPROTO_IPV6, stack.IPV6_V6ONLY, 1)
        assert s.getsockopt(stack.IPPROTO_IPV6, stack.IPV6_V6ONLY) == 1


def test_eof_after_shutdown(stack):
    cli, conn, _ = stack.pair()
    cli.shutdown(stack.SHUT_WR)
    assert conn.recv(10) == b""
    assert conn.recv(10) == b""              # EOF stays
    conn.sendall(b"still open the other way")
    assert cli.recv(100) == b"still open the other way"


def test_connection_refused(stack):
    port = _closed_port(stack)
    with stack.tcp() as s, pytest.raises(ConnectionRefusedError) as info:
        s.connect(("127.0.0.1", port))
    assert info.value.errno == errno.ECONNREFUSED
    with stack.tcp() as s:
        assert s.connect_ex(("127.0.0.1", port)) == errno.ECONNREFUSED


def test_address_in_use(stack):
    with stack.tcp() as a, stack.tcp() as b:
        a.bind(("127.0.0.1", 0))
        a.listen()
        with pytest.raises(OSError) as info:
            b.bind(a.getsockname())
        assert info.value.errno == errno.EADDRINUSE


def test_reset_and_broken_pipe(stack):
    cli, conn, _ = stack.pair()
    # SO_LINGER 0: close sends a RST.
    conn.setsockopt(stack.SOL_SOCKET, stack.SO_LINGER, b"\1\0\0\0\0\0\0\0")
    conn.close()
    time.sleep(0.05)
    with pytest.raises(ConnectionResetError):
        cli.recv(10)
    with pytest.raises(BrokenPipeError):
        for _ in range(100):
            cli.send(b"x" * 1000)


def test_not_connected(stack):
    with stack.tcp() as s:
        with pytest.raises(OSError) as info:
            s.shutdown(stack.SHUT_RDWR)
        assert info.value.errno == errno.ENOTCONN
        with pytest.raises(OSError) as info:
            s.getpeername()
        assert info.value.errno == errno.ENOTCONN
        with pytest.raises(OSError) as info:
            s.send(b"x")
        assert info.value.errno in (errno.EPIPE, errno.ENOTCONN)
        with pytest.raises(OSError) as info:
            s.accept()
        assert info.value.errno == errno.EINVAL


# ---- blocking, timeouts -----------------------------------------------------

def test_blocking_modes(stack):
    with stack.tcp() as s:
        assert s.gettimeout() is None and s.getblocking()
        s.settimeout(2.5)
        assert s.gettimeout() == 2.5 and s.getblocking()
        s.setblocking(False)
        assert s.gettimeout() == 0.0 and not s.getblocking()
        s.setblocking(True)
        assert s.gettimeout() is None
        s.settimeout(0)
        assert not s.getblocking()
        for bad, exc in ((-1, ValueError), (float("nan"), ValueError), ("1", TypeError)):
            with pytest.raises(exc):
                s.settimeout(bad)


def test_non_blocking_would_block(stack):
    cli, conn, srv = stack.pair()
    conn.setblocking(False)
    with pytest.raises(BlockingIOError) as info:
        conn.recv(10)
    assert info.value.errno == errno.EAGAIN
    srv.setblocking(False)
    with pytest.raises(BlockingIOError):
        srv.accept()
    assert conn.recv(10, stack.MSG_DONTWAIT) if False else True


def test_timeout_raises_timeout_error(stack):
    cli, conn, srv = stack.pair()
    conn.settimeout(0.1)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        conn.recv(10)
    assert 0.08 < time.monotonic() - t0 < 2
    assert str(info.value) == "timed out"
    assert info.value.errno is None
    srv.settimeout(0.05)
    with pytest.raises(socket.timeout):
        srv.accept()
    cli.sendall(b"x")
    assert conn.recv(10) == b"x"                # still usable


def test_accepted_socket_blocks(stack):
    _, conn, srv = stack.pair()
    assert conn.gettimeout() is None
    srv.settimeout(5)
    cli2 = stack.tcp()
    cli2.connect(srv.getsockname())
    conn2, _ = srv.accept()
    assert conn2.gettimeout() is None
    conn2.close()


def test_timeout_sendall_to_a_stalled_peer(stack):
    cli, conn, _ = stack.pair()
    cli.settimeout(0.3)
    with pytest.raises(TimeoutError):
        cli.sendall(b"x" * (64 << 20))          # nobody reads


def test_blocking_recv_releases_the_gil(stack):
    cli, conn, _ = stack.pair()
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    threading.Timer(0.2, cli.sendall, (b"late",)).start()
    assert conn.recv(10) == b"late"
    stop.set()
    t.join()
    assert len(ticks) > 20                      # the other thread ran meanwhile


# ---- options -------------------------------------------------------------------

def test_socket_options(stack):
    with stack.tcp() as s:
        assert s.getsockopt(stack.SOL_SOCKET, stack.SO_TYPE) == stack.SOCK_STREAM
        assert s.getsockopt(stack.SOL_SOCKET, stack.SO_ERROR) == 0
        assert s.getsockopt(stack.SOL_SOCKET, stack.SO_REUSEADDR) == 0
        s.setsockopt(stack.SOL_SOCKET, stack.SO_REUSEADDR, 1)
        assert s.getsockopt(stack.SOL_SOCKET, stack.SO_REUSEADDR) == 1
        s.setsockopt(stack.IPPROTO_TCP, stack.TCP_NODELAY, True)
        assert s.getsockopt(stack.IPPROTO_TCP, stack.TCP_NODELAY) == 1
        s.setsockopt(stack.IPPROTO_TCP, stack.TCP_CONGESTION, b"reno")
        assert s.getsockopt(stack.IPPROTO_TCP, stack.TCP_CONGESTION, 16).rstrip(b"\0") == b"reno"
        linger = s.getsockopt(stack.SOL_SOCKET, stack.SO_LINGER, 8)
        assert isinstance(linger, bytes) and len(linger) == 8
        with pytest.raises(OSError) as info:
            s.getsockopt(stack.SOL_SOCKET, stack.SO_REUSEADDR, 2000)
        with pytest.raises(OSError) as info:
            s.setsockopt(stack.SOL_SOCKET, 9999, 1)
        assert info.value.errno == errno.ENOPROTOOPT
        s.setsockopt(stack.SOL_SOCKET, stack.SO_RCVBUF, 65536)
        assert s.getsockopt(stack.SOL_SOCKET, stack.SO_RCVBUF) >= 65536


def test_tcp_info(stack):
    cli, conn, _ = stack.pair()
    info = cli.getsockopt(stack.IPPROTO_TCP, stack.TCP_INFO, 104)
    assert info[0] == 1                     # tcpi_state: TCP_ESTABLISHED


# ---- closing ---------------------------------------------------------------------

def test_closed_socket(stack):
    s = stack.tcp()
    s.close()
    s.close()                                     # twice is fine
    assert s.fileno() == -1
    for call in (lambda: s.recv(1), lambda: s.send(b"x"), lambda: s.bind(("127.0.0.1", 0)),
                 lambda: s.getsockname(), lambda: s.setsockopt(stack.SOL_SOCKET,
                                                               stack.SO_REUSEADDR, 1)):
        with pytest.raises(OSError) as info:
            call()
        assert info.value.errno == errno.EBADF


def test_context_manager_and_detach(stack):
    with stack.tcp() as s:
        pass
    assert s.fileno() == -1
    s = stack.tcp()
    kernel_fd = s.kfd if stack.name == "lkl" else s.fileno()
    assert s.detach() == kernel_fd
    assert s.fileno() == -1
    # family/type/proto come from the kernel
    again = lkl.Socket(kfd=kernel_fd) if stack.name == "lkl" else socket.socket(fileno=kernel_fd)
    assert again.type == stack.SOCK_STREAM and again.family == stack.AF_INET
    again.close()


def test_makefile_keeps_the_socket_open(stack):
    cli, conn, _ = stack.pair()
    f = conn.makefile("rb")
    conn.close()                                 # the file still holds it
    cli.sendall(b"via file\n")
    assert f.readline() == b"via file\n"
    f.close()
    assert conn.fileno() == -1


# ---- argument checking -------------------------------------------------------

def test_bad_arguments(stack):
    cli, conn, _ = stack.pair()
    with pytest.raises(ValueError):
        conn.recv(-1)
    with pytest.raises(ValueError):
        conn.recv_into(bytearray(4), -1)
    with pytest.raises(ValueError):
        conn.recv_into(bytearray(4), 5)
    with pytest.raises(TypeError):
        conn.recv_into(b"read-only")
    with pytest.raises(TypeError):
        conn.send("text")
    with pytest.raises(TypeError):
        conn.recv("10")
    with stack.tcp() as s:
        with pytest.raises(OverflowError):
            s.bind(("127.0.0.1", 70000))
        with pytest.raises(TypeError):
            s.bind(["127.0.0.1", 0])
        with pytest.raises(TypeError):
            s.bind(("127.0.0.1",))
        with pytest.raises(TypeError):
            s.bind(("127.0.0.1", "80"))
        with pytest.raises(TypeError):
            s.bind((127, 0))
        with pytest.raises(OSError):
            s.bind(("1.2.3.4", 0))                 # not a local address


# ---- datagrams -------------------------------------------------------------------

def test_udp(stack):
    a, b = stack.udp(), stack.udp()
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    b.sendto(b"datagram", a.getsockname())
    data, addr = a.recvfrom(100)
    assert data == b"datagram" and addr == b.getsockname()
    b.sendto(b"with flags", 0, a.getsockname())
    assert a.recv(100) == b"with flags"
    buf = bytearray(4)
    b.sendto(b"truncated", a.getsockname())
    n, addr = a.recvfrom_into(buf)
    assert n == 4 and buf == b"trun"
    a.setblocking(False)
    with pytest.raises(BlockingIOError):
        a.recvfrom(10)
    assert a.getsockopt(stack.SOL_SOCKET, stack.SO_TYPE) == stack.SOCK_DGRAM


def test_udp_peek_and_sendmsg(stack):
    a, b = stack.udp(), stack.udp()
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    assert b.sendmsg([b"one", b"two"], [], 0, a.getsockname()) == 6
    assert a.recv(100, stack.MSG_PEEK) == b"onetwo"
    data, anc, flags, addr = a.recvmsg(100)
    assert (data, anc, flags, addr) == (b"onetwo", [], 0, b.getsockname())


# ---- readiness ------------------------------------------------------------------

def test_host_select_on_fileno(stack):
    cli, conn, srv = stack.pair()
    assert select.select([conn], [], [], 0)[0] == []
    cli.sendall(b"ready")
    assert select.select([conn], [], [], 5)[0] == [conn]
    assert conn.recv(2) == b"re"
    assert select.select([conn], [], [], 0)[0] == [conn]      # still readable
    assert conn.recv(10) == b"ady"
    assert select.select([conn], [], [], 0)[0] == []          # drained
    c2 = stack.tcp()
    c2.connect(srv.getsockname())
    assert select.select([srv], [], [], 5)[0] == [srv]        # pending connection
    srv.accept()[0].close()
    assert select.select([srv], [], [], 0)[0] == []
    cli.close()
    assert select.select([conn], [], [], 5)[0] == [conn]      # EOF
    assert conn.recv(1) == b""
    p = select.poll()
    p.register(conn, select.POLLIN)
    assert p.poll(1000) == [(conn.fileno(), select.POLLIN)]


def test_error_is_readable(stack):
    port = _closed_port(stack)
    s = stack.tcp()
    s.setblocking(False)
    with pytest.raises(BlockingIOError):
        s.connect(("127.0.0.1", port))
    assert select.select([s], [], [], 5)[0] == [s]            # the refusal
    assert s.getsockopt(stack.SOL_SOCKET, stack.SO_ERROR) == errno.ECONNREFUSED


def test_dup_shares_the_socket(stack):
    cli, conn, _ = stack.pair()
    conn.settimeout(3)
    d = conn.dup()
    assert d.gettimeout() == 3 and d.fileno() != conn.fileno()
    cli.sendall(b"to both")
    assert d.recv(3) == b"to "
    assert conn.recv(10) == b"both"
    d.close()
    cli.sendall(b"!")
    assert conn.recv(1) == b"!"                                # still open


def _nonblocking_flag(stack, sock) -> bool:
    """O_NONBLOCK of the socket's file description, as the kernel has it."""
    if stack.name == "stdlib":
        import fcntl
        return bool(fcntl.fcntl(sock.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK)
    k = lkl.kernel()
    consts = lkl._lkl.internal_constants
    return bool(k.syscall("fcntl", sock.kfd, consts["F_GETFL"], 0) & consts["O_NONBLOCK"])


def test_main_thread_connect_leaves_the_file_flags_alone(stack):
    # The flags are shared with every thread and dup: a blocking connect on
    # the main thread (which waits in slices for signal handlers) must not
    # switch O_NONBLOCK on, or another thread's blocking call may fail with
    # BlockingIOError.  Another thread watches the flags during connects.
    assert threading.current_thread() is threading.main_thread()
    srv = stack.tcp()
    srv.bind(("127.0.0.1", 0))
    srv.listen(128)
    seen, checks = 0, 0
    for _ in range(100):
        s = stack.tcp()
        done = threading.Event()

        def watch(s=s, done=done) -> None:
            nonlocal seen, checks
            while not done.is_set():
                checks += 1
                seen += _nonblocking_flag(stack, s)

        t = threading.Thread(target=watch)
        t.start()
        s.connect(srv.getsockname())
        done.set()
        t.join(10)
        srv.accept()[0].close()
        s.close()
    assert checks > 0
    assert seen == 0, f"O_NONBLOCK seen {seen} times in {checks} looks"

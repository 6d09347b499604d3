"""lkl.socket.socket is a socket.socket: the same tests run on the host's
``socket`` module and on ``lkl.socket`` (the uvloop way), and must pass on
both.  The lkl side needs no patch: it is the class the patch installs.
"""

from __future__ import annotations

import errno
import os
import re
import selectors
import socket
import threading
from typing import Any

import pytest

import lkl
import lkl.socket as lsocket
from harness import sockets

STACKS = os.environ.get("LKL_TEST_STACKS", "stdlib,lkl").split(",")


@pytest.fixture(params=STACKS)
def mod(request: pytest.FixtureRequest) -> Any:
    """The module whose socket class is tested: socket, or lkl.socket."""
    if request.param == "stdlib":
        return socket
    request.getfixturevalue("kernel")
    return lsocket


@pytest.fixture
def tcp_pair(mod: Any) -> Any:
    cli, conn, srv = sockets.tcp_pair(mod.socket)
    yield cli, conn, srv
    for s in (cli, conn, srv):
        s.close()


def test_instances_enums_and_repr(mod, tcp_pair):
    cli, conn, srv = tcp_pair
    for s in (cli, conn, srv):
        assert isinstance(s, socket.socket)
        assert type(s) is mod.socket
        assert type(s.family) is socket.AddressFamily and s.family == socket.AF_INET
        assert type(s.type) is socket.SocketKind and s.type == socket.SOCK_STREAM
        assert s.proto == 0
    text = re.sub(r"\d+", "N", repr(conn))
    assert text == (f"<{mod.__name__}.socket fd=N, family=N, type=N, proto=N, "
                    "laddr=('N.N.N.N', N), raddr=('N.N.N.N', N)>")
    conn.close()
    assert "[closed]" in repr(conn) and "fd=-1" in repr(conn)
    udp = mod.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
    assert udp.type == socket.SOCK_DGRAM and udp.gettimeout() == 0.0
    udp.close()


def arrives(data: bytes, sender: Any, receiver: Any) -> None:
    """``data`` sent on ``sender`` is what ``receiver`` reads next (5 s at most)."""
    sender.sendall(data)
    receiver.settimeout(5)
    assert receiver.recv(100) == data


def test_accept_dup_and_independent_close(mod, tcp_pair):
    cli, conn, _srv = tcp_pair
    twin = conn.dup()
    assert type(twin) is mod.socket and twin.fileno() != conn.fileno()
    conn.close()
    arrives(b"still there", cli, twin)
    twin.close()


def test_timeouts_and_blocking_modes_match(mod, tcp_pair):
    cli, conn, _srv = tcp_pair
    assert conn.gettimeout() is None and conn.getblocking() and conn.timeout is None
    conn.settimeout(0.2)
    assert conn.timeout == 0.2 and conn.getblocking()
    with pytest.raises(TimeoutError):
        conn.recv(10)
    conn.setblocking(False)
    assert conn.gettimeout() == 0.0 and not conn.getblocking()
    with pytest.raises(BlockingIOError):
        conn.recv(10)
    with pytest.raises(ValueError):
        conn.settimeout(-1)
    with pytest.raises(TypeError):
        conn.settimeout("1")
    conn.setblocking(True)
    assert conn.gettimeout() is None
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(3.0)
    try:
        s = mod.socket()
        assert s.gettimeout() == 3.0
        s.close()
    finally:
        socket.setdefaulttimeout(old)


def test_makefile_lines_both_ways(mod, tcp_pair):
    cli, conn, _srv = tcp_pair
    wfile = cli.makefile("w", encoding="ascii")
    rfile = conn.makefile("rb")
    wfile.write("one\ntwo\n")
    wfile.flush()
    assert rfile.readline() == b"one\n" and rfile.readline() == b"two\n"
    cli.close()                                  # the file keeps it open
    wfile.write("three\n")
    wfile.close()                                # now it closes: EOF
    assert rfile.readline() == b"three\n" and rfile.readline() == b""
    rfile.close()


def test_sendfile_copies_through_send(mod, tcp_pair, tmp_path):
    cli, conn, _srv = tcp_pair
    data = os.urandom(300_000)
    path = tmp_path / "blob"
    path.write_bytes(data)
    got = bytearray()

    def drain() -> None:
        conn.settimeout(10)
        while len(got) < len(data) - 1000:
            got.extend(conn.recv(1 << 16))

    t = threading.Thread(target=drain)
    t.start()
    with open(path, "rb") as f:
        assert cli.sendfile(f, offset=1000) == len(data) - 1000
        assert f.tell() == len(data)
    t.join(20)
    assert bytes(got) == data[1000:]
    with open(path) as text, pytest.raises(ValueError):
        cli.sendfile(text)                       # not binary


def test_recvmsg_into_scatters(mod, tcp_pair):
    cli, conn, _srv = tcp_pair
    cli.sendall(b"abcdefgh")
    a, b = bytearray(3), memoryview(bytearray(10))
    conn.settimeout(5)
    n = 0
    while n == 0:
        n, anc, flags, _addr = conn.recvmsg_into([a, b])
    assert n == 8 and bytes(a) == b"abc" and bytes(b[:5]) == b"defgh" and anc == []
    with pytest.raises(TypeError):
        conn.recvmsg_into([b"read-only"])


def test_inheritable_flag(mod, tcp_pair):
    cli, _conn, _srv = tcp_pair
    assert cli.get_inheritable() is False
    cli.set_inheritable(True)
    assert cli.get_inheritable() is True


def test_fileno_form_and_fromfd(mod, tcp_pair):
    cli, conn, _srv = tcp_pair
    fd = conn.detach()
    assert conn.fileno() == -1
    with pytest.raises(OSError):
        conn.recv(1)                             # the object let it go
    back = mod.socket(fileno=fd)                 # the detached socket, adopted
    assert back.fileno() == fd and type(back) is mod.socket
    arrives(b"hi", cli, back)
    other = mod.fromfd(back.fileno(), socket.AF_INET, socket.SOCK_STREAM)
    assert type(other) is mod.socket and other.fileno() != back.fileno()
    back.close()
    arrives(b"yo", cli, other)
    other.close()


def test_fileno_form_on_a_live_socket_shares_it(mod, tcp_pair):
    cli, conn, _srv = tcp_pair
    alias = mod.socket(fileno=conn.fileno())     # http.client's response.fileno() use
    assert alias.fileno() == conn.fileno()
    arrives(b"via alias", alias, cli)
    alias.detach()                               # leaves the socket to conn
    conn.sendall(b"conn")
    assert cli.recv(100) == b"conn"
    conn.close()                                 # the one close: the peer sees EOF
    assert cli.recv(100) == b""


def test_unix_sockets_stay_on_the_host(mod):
    a, b = socket.socketpair()
    u = mod.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        assert type(u) is socket.socket          # the host's class
        h = mod.socket(fileno=os.dup(a.fileno()))   # a host fd: a host socket
        assert type(h) is socket.socket and h.family == socket.AF_UNIX
        h.sendall(b"u")
        assert b.recv(1) == b"u"
        h.close()
    finally:
        for s in (a, b, u):
            s.close()


def test_selectors_with_the_class(mod, tcp_pair):
    cli, conn, _srv = tcp_pair
    with selectors.DefaultSelector() as sel:
        sel.register(conn, selectors.EVENT_READ)
        assert sel.select(0) == []
        cli.sendall(b"!")
        [(key, ev)] = sel.select(5)
        assert key.fileobj is conn and ev == selectors.EVENT_READ


def test_create_connection_and_create_server(mod):
    srv = mod.create_server(("127.0.0.1", 0))
    try:
        assert type(srv) is mod.socket
        assert srv.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        port = srv.getsockname()[1]
        cli = mod.create_connection(("127.0.0.1", port), timeout=5)
        conn, _ = srv.accept()
        assert cli.gettimeout() == 5
        cli.sendall(b"c")
        assert conn.recv(1) == b"c"
        cli.close()
        conn.close()
        closed = mod.socket()
        closed.bind(("127.0.0.1", 0))
        dead = closed.getsockname()
        closed.close()
        with pytest.raises(ConnectionRefusedError):
            mod.create_connection(dead, timeout=5)
    finally:
        srv.close()


# ---- lkl only ------------------------------------------------------------------

def test_sockets_are_in_the_kernel_not_on_the_host(kernel):
    srv = lsocket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    hexport = f":{port:04X} "
    try:
        assert hexport in kernel.read_text("/proc/net/tcp")
        with open("/proc/net/tcp") as f:
            assert hexport not in f.read()
        assert srv.kfd >= 0 and srv.lkl_socket.kfd == srv.kfd
    finally:
        srv.close()


def test_unsupported_family_is_a_clear_error(kernel):
    with pytest.raises(OSError) as info:
        lsocket.socket(socket.AF_BLUETOOTH if hasattr(socket, "AF_BLUETOOTH") else 31)
    assert info.value.errno == errno.EAFNOSUPPORT and "lkl" in str(info.value)


def test_names_are_numeric_only_without_a_resolver(kernel):
    if lsocket._resolver() is not None:
        pytest.skip("lkl.resolver is installed: names go through it")
    assert lsocket.gethostbyname("127.0.0.1") == "127.0.0.1"
    assert lsocket.gethostbyname("localhost") == "127.0.0.1"
    infos = lsocket.getaddrinfo("localhost", 80, socket.AF_INET, socket.SOCK_STREAM)
    assert infos[0][4] == ("127.0.0.1", 80)
    with pytest.raises(socket.gaierror) as info:
        lsocket.getaddrinfo("no-such-host.invalid", 80)
    assert info.value.errno == socket.EAI_NONAME
    assert lsocket.getnameinfo(("127.0.0.1", 80), 0)[0] == "127.0.0.1"
    assert lsocket.gethostname() == kernel.uname().nodename


def test_lkl_fd_lookup(kernel):
    s = lsocket.socket()
    try:
        assert lsocket.is_lkl_fd(s.fileno())
        assert lsocket.lkl_socket_of(s.fileno()) is s.lkl_socket
        dup = os.dup(s.fileno())
        assert lsocket.lkl_socket_of(dup) is s.lkl_socket
        os.close(dup)
        a, b = socket.socketpair()
        assert not lsocket.is_lkl_fd(a.fileno()) and not lsocket.is_lkl_fd(10**6)
        a.close()
        b.close()
    finally:
        s.close()
    assert lkl.Socket is not lsocket.socket


def test_subclasses_made_while_patched_work_on_both_stacks(kernel):
    class Counting(lsocket.socket):              # as a library imported under the patch
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.sent = 0

        def send(self, data, flags=0):
            n = super().send(data, flags)
            self.sent += n
            return n

    a, b = socket.socketpair()
    host = Counting(socket.AF_UNIX, socket.SOCK_STREAM, 0, a.detach())
    try:
        assert isinstance(host, Counting) and host.kfd == -1 and host.family == socket.AF_UNIX
        assert host.send(b"host") == 4 and host.sent == 4
        assert b.recv(10) == b"host"
        host.settimeout(0.2)
        with pytest.raises(TimeoutError):
            host.recv(1)
        twin = host.dup()
        assert isinstance(twin, Counting) and twin.kfd == -1
        twin.close()
    finally:
        host.close()
        b.close()
    srv = Counting()
    try:
        assert srv.kfd >= 0 and isinstance(srv, Counting)
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        cli = lsocket.create_connection(srv.getsockname(), timeout=5)
        conn, _ = srv.accept()
        assert type(conn) is lsocket.socket and conn.kfd >= 0   # as the stdlib's accept
        twin = srv.dup()
        assert isinstance(twin, Counting) and twin.sent == 0 and twin.kfd >= 0
        assert conn.send(b"lkl") == 3
        assert cli.recv(10) == b"lkl"
        for s in (cli, conn, twin):
            s.close()
    finally:
        srv.close()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as lst:
        lst.bind("\0lkl-test-" + str(os.getpid()))
        lst.listen()
        c = Counting(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(lst.getsockname())
        conn, _ = lst.accept()
        c.sendall(b"u")
        assert conn.recv(1) == b"u"
        conn.close()
        c.close()

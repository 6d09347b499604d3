"""The session kernel: identity, files, sysctl, counters, raw syscalls."""

import ast
import errno
import os
import socket
import threading
import time
import types
from pathlib import Path

import pytest
from helpers import tcp_pair

import lkl
from lkl import _lkl


def test_version_and_uname(kernel):
    u = kernel.uname()
    assert isinstance(u, os.uname_result)
    assert u.sysname == "Linux"
    assert u.release == kernel.version
    assert kernel.version.startswith("6.12.")
    assert u.machine
    assert tuple(u)[:1] == ("Linux",)
    assert kernel.syscall_mode == "shadow"
    assert lkl.kernel() is kernel
    assert "running" in repr(kernel)


def test_read_text_proc_version(kernel):
    text = kernel.read_text("/proc/version")
    assert text.startswith("Linux version " + kernel.version)
    assert kernel.read_bytes("/proc/version") == text.encode()


def test_files_in_tmp_and_listdir(kernel):
    kernel.write_text("/tmp/hello.txt", "héllo\n")
    assert kernel.read_text("/tmp/hello.txt") == "héllo\n"
    kernel.write_text("/tmp/hello.txt", "x")               # truncates
    assert kernel.read_bytes("/tmp/hello.txt") == b"x"
    big = os.urandom(200_000)
    kernel.write_bytes("/tmp/big.bin", big)
    assert kernel.read_bytes("/tmp/big.bin") == big
    assert {"hello.txt", "big.bin"} <= set(kernel.listdir("/tmp"))
    assert {"proc", "sys", "tmp"} <= set(kernel.listdir("/"))
    assert "ipv4" in kernel.listdir("/proc/sys/net")
    assert "lo" in kernel.listdir("/sys/class/net")


def test_file_errors_carry_errno_and_filename(kernel):
    with pytest.raises(FileNotFoundError) as info:
        kernel.read_text("/proc/no-such-file")
    assert info.value.errno == errno.ENOENT
    assert info.value.filename == "/proc/no-such-file"
    with pytest.raises(NotADirectoryError):
        kernel.listdir("/proc/version")
    with pytest.raises(IsADirectoryError):
        kernel.read_bytes("/proc")
    with pytest.raises(TypeError):
        kernel.read_text(b"/proc/version")
    with pytest.raises(ValueError):
        kernel.read_text("/proc/ver\0sion")


def test_sysctl_read_and_write(kernel):
    assert kernel.sysctl("net.ipv4.tcp_congestion_control") in ("cubic", "bbr", "reno")
    old = kernel.sysctl("net.ipv4.tcp_congestion_control")
    try:
        kernel.sysctl("net.ipv4.tcp_congestion_control", "reno")
        assert kernel.sysctl("net.ipv4.tcp_congestion_control") == "reno"
    finally:
        kernel.sysctl("net.ipv4.tcp_congestion_control", old)
    somaxconn = int(kernel.sysctl("net.core.somaxconn"))
    kernel.sysctl("net.core.somaxconn", somaxconn + 1)
    assert kernel.sysctl("net/core/somaxconn") == str(somaxconn + 1)
    kernel.sysctl("net.core.somaxconn", somaxconn)
    rmem = kernel.sysctl("net.ipv4.tcp_rmem").split()
    kernel.sysctl("net.ipv4.tcp_rmem", rmem)                 # a list: tab-separated
    assert kernel.sysctl("net.ipv4.tcp_rmem").split() == rmem
    with pytest.raises(FileNotFoundError):
        kernel.sysctl("net.ipv4.no_such_knob")
    with pytest.raises(ValueError):
        kernel.sysctl("net..ipv4")
    with pytest.raises(ValueError):
        kernel.sysctl("../../proc/version")
    with pytest.raises(OSError) as info:
        kernel.sysctl("net.ipv4.tcp_congestion_control", "no-such-algorithm")
    assert info.value.errno in (errno.ENOENT, errno.EINVAL)


def test_snmp_counters_move_with_traffic(kernel):
    before = kernel.snmp()
    assert {"Ip", "Tcp", "Udp", "TcpExt", "Ip6", "Udp6", "Icmp6"} <= set(before)
    assert all(isinstance(v, int) for group in before.values() for v in group.values())
    assert "InReceives" in before["Ip6"] and "ActiveOpens" in before["Tcp"]

    cli, conn, srv = tcp_pair(kernel)
    cli.sendall(b"x" * 100_000)
    got = 0
    while got < 100_000:
        got += len(conn.recv(65536))
    u = kernel.socket(lkl.AF_INET6, lkl.SOCK_DGRAM)
    u.sendto(b"ping", ("::1", 9))        # nobody listens: an ICMPv6 unreachable
    for s in (cli, conn, srv, u):
        s.close()

    after = kernel.snmp()
    assert after["Tcp"]["ActiveOpens"] >= before["Tcp"]["ActiveOpens"] + 1
    assert after["Tcp"]["PassiveOpens"] >= before["Tcp"]["PassiveOpens"] + 1
    assert after["Tcp"]["OutSegs"] > before["Tcp"]["OutSegs"]
    assert after["Ip"]["InReceives"] > before["Ip"]["InReceives"]
    assert after["Udp6"]["OutDatagrams"] >= before["Udp6"]["OutDatagrams"] + 1
    assert after["Icmp6"]["OutMsgs"] > before["Icmp6"]["OutMsgs"]


def test_getpid_and_raw_syscalls(kernel):
    assert kernel.getpid() == 1
    assert kernel.syscall("getpid") == 1
    assert kernel.syscall(lkl.syscall_numbers["getpid"]) == 1
    # The same pid from every host thread: they are all threads of init.
    pids = []
    t = threading.Thread(target=lambda: pids.append(kernel.getpid()))
    t.start()
    t.join(10)
    assert pids == [1]
    buf = bytearray(4096)
    n = kernel.syscall("getcwd", buf, len(buf))
    assert bytes(buf[:n]) == b"/\0"
    fd = kernel.syscall("openat", -100, "/proc/version", 0, 0)
    try:
        n = kernel.syscall("read", fd, buf, 64)
        assert bytes(buf[:n]).startswith(b"Linux version")
    finally:
        kernel.syscall("close", fd)


def test_raw_syscall_never_writes_into_read_only_buffers(kernel):
    # bytes and read-only views are inputs: the kernel gets a copy.
    data = b"x" * 64
    frozen = memoryview(bytearray(64)).toreadonly()
    fd = kernel.syscall("openat", -100, "/proc/version", 0, 0)
    try:
        assert kernel.syscall("read", fd, data, 64) > 0
        assert kernel.syscall("pread64", fd, frozen, 64, 0) > 0
    finally:
        kernel.syscall("close", fd)
    assert data == b"x" * 64
    assert bytes(frozen) == bytes(64)
    # As inputs they still work: write() sends their bytes.
    fd = kernel.syscall("openat", -100, "/tmp/ro-input", 0o1101, 0o644)  # O_WRONLY|O_CREAT|O_TRUNC
    try:
        assert kernel.syscall("write", fd, b"hello", 5) == 5
        assert kernel.syscall("write", fd, memoryview(b" world").toreadonly(), 6) == 6
    finally:
        kernel.syscall("close", fd)
    assert kernel.read_bytes("/tmp/ro-input") == b"hello world"
    with pytest.raises(TypeError):
        kernel.syscall("write", 1, [1, 2, 3], 3)   # not a buffer at all


def test_raw_syscall_errors(kernel):
    with pytest.raises(OSError) as info:
        kernel.syscall("close", 100_000)
    assert info.value.errno == errno.EBADF
    with pytest.raises(OSError) as info:
        kernel.syscall("exit", 0)           # refused: it would end init
    assert info.value.errno == errno.ENOSYS
    with pytest.raises(OSError) as info:
        kernel.syscall(100_000)
    assert info.value.errno == errno.ENOSYS
    with pytest.raises(OSError) as info:
        kernel.syscall(-1)
    assert info.value.errno == errno.ENOSYS
    with pytest.raises(ValueError):
        kernel.syscall("no_such_syscall")
    with pytest.raises(TypeError):
        kernel.syscall("getpid", 1, 2, 3, 4, 5, 6, 7)
    with pytest.raises(TypeError):
        kernel.syscall("getpid", 1.5)
    with pytest.raises(TypeError):
        kernel.syscall(1.5)
    with pytest.raises(OverflowError):
        kernel.syscall("close", 2**64)
    with pytest.raises(ValueError):
        kernel.syscall("openat", -100, "a\0b", 0, 0)


def test_tcp_timers_run(kernel):
    """Timer-wheel timers fire with the default (tickless) tick: keepalive
    probes after 1 s idle, every 1 s.  They also drive retransmission and
    delayed ACKs, without which one lost segment hangs a connection."""
    with kernel.socket() as a, kernel.socket() as b:
        a.bind(("127.0.0.1", 0))
        a.listen()
        b.setsockopt(lkl.SOL_SOCKET, lkl.SO_KEEPALIVE, 1)
        b.setsockopt(lkl.IPPROTO_TCP, lkl.TCP_KEEPIDLE, 1)
        b.setsockopt(lkl.IPPROTO_TCP, lkl.TCP_KEEPINTVL, 1)
        before = kernel.snmp()["TcpExt"]["TCPKeepAlive"]
        b.connect(a.getsockname())
        conn, _ = a.accept()
        with conn:
            deadline = time.monotonic() + 10
            while kernel.snmp()["TcpExt"]["TCPKeepAlive"] < before + 2:
                assert time.monotonic() < deadline, "no keepalive probes: timers do not run"
                time.sleep(0.2)


def test_loopback_is_up(kernel):
    flags = int(kernel.read_text("/sys/class/net/lo/flags"), 16)
    assert flags & 1                     # IFF_UP


def test_constants_are_the_kernels_and_match_linux(kernel):
    # On Linux hosts the kernel's socket ABI numbers match the C library's.
    for name in ("AF_INET", "AF_INET6", "AF_UNIX", "SOCK_STREAM", "SOCK_DGRAM", "SOL_SOCKET",
                 "SO_REUSEADDR", "SO_ERROR", "SO_RCVBUF", "SO_KEEPALIVE", "IPPROTO_TCP",
                 "IPPROTO_UDP", "IPPROTO_IPV6", "IPV6_V6ONLY", "TCP_NODELAY", "TCP_INFO",
                 "TCP_CONGESTION", "MSG_PEEK", "MSG_DONTWAIT", "MSG_WAITALL", "SHUT_RD",
                 "SHUT_WR", "SHUT_RDWR", "SOMAXCONN", "SOL_IP", "IP_TTL", "SOCK_NONBLOCK"):
        assert getattr(lkl, name) == getattr(socket, name), name
    assert lkl.POLLIN == 1 and lkl.POLLOUT == 4
    assert set(lkl.constants.__all__) == set(_lkl.constants)
    assert all(getattr(lkl, n) == v for n, v in _lkl.constants.items())


def test_stub_lists_the_extension_api():
    stub = Path(_lkl.__file__).with_name("_lkl.pyi")
    if not stub.exists():
        stub = Path(lkl.__file__).with_name("_lkl.pyi")
    tree = ast.parse(stub.read_text())
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    names |= {n.target.id for n in tree.body if isinstance(n, ast.AnnAssign)}
    public = {n for n in dir(_lkl)
              if not n.startswith("__") and not isinstance(getattr(_lkl, n), types.ModuleType)}
    assert public - names == set(), "stub misses names"
    sock_stub = next(n for n in tree.body
                     if isinstance(n, ast.ClassDef) and n.name == "_SocketBase")
    methods = {n.name for n in sock_stub.body if isinstance(n, ast.FunctionDef)}
    real = {n for n in dir(_lkl._SocketBase) if not n.startswith("__")}
    assert real - methods == set()


def test_public_names_have_docstrings():
    import lkl.asyncio

    for mod in (lkl, lkl.asyncio):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if callable(obj) and not isinstance(obj, int):
                assert obj.__doc__, f"{mod.__name__}.{name}"
    for cls in (lkl.Socket, lkl.Kernel, lkl.Poll, lkl.asyncio.Server, lkl.asyncio.LklTransport):
        for name, member in vars(cls).items():
            if not name.startswith("_") and callable(member):
                assert member.__doc__, f"{cls.__name__}.{name}"
    for name in dir(_lkl._SocketBase):
        if not name.startswith("_"):
            assert getattr(_lkl._SocketBase, name).__doc__, f"Socket.{name}"

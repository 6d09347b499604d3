"""lkl.patch(): the standard library, unchanged, on the lkl kernel."""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import importlib
import os
import socket
import socketserver
import ssl
import sys
import threading
import types
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import run_ok

import lkl
import lkl.socket as lsocket
from lkl.patch import PATCHES, _resolve, get_original, is_patched


@pytest.fixture
def patched(kernel: lkl.Kernel) -> Iterator[Any]:
    handle = lkl.patch(kernel)
    try:
        yield handle
    finally:
        handle.undo()
    assert not is_patched()


def _kernel_ports(kernel: lkl.Kernel) -> str:
    return kernel.read_text("/proc/net/tcp") + kernel.read_text("/proc/net/tcp6")


def _host_ports() -> str:
    text = ""
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            text += f.read()
    return text


# ---- the table ----------------------------------------------------------------

def test_the_table_is_applied_and_undone(kernel):
    before = {(p.owner, p.name): vars(_resolve(p.owner))[p.name] for p in PATCHES}
    assert not is_patched()
    handle = lkl.patch(kernel)
    try:
        assert is_patched() and handle.active and handle.kernel is kernel
        for p in PATCHES:
            owner = _resolve(p.owner)
            assert vars(owner)[p.name] is _resolve(p.replacement), p
            assert vars(owner)[p.name] is not before[(p.owner, p.name)], p
            assert get_original(owner, p.name) is before[(p.owner, p.name)], p
            assert get_original(p.owner, p.name) is before[(p.owner, p.name)], p
            assert is_patched(owner, p.name), p
        assert socket.socketpair is get_original(socket, "socketpair")  # stays
    finally:
        handle.undo()
    assert not handle.active and not is_patched()
    for p in PATCHES:
        assert vars(_resolve(p.owner))[p.name] is before[(p.owner, p.name)], p
        assert not is_patched(_resolve(p.owner), p.name)
    handle.undo()                                # twice: harmless


def test_names_bound_with_from_socket_are_found_and_restored(kernel):
    early = types.ModuleType("lkl_test_early")
    exec("from socket import socket, create_connection, getaddrinfo as gai", early.__dict__)
    sys.modules[early.__name__] = early
    original_socket = early.socket
    try:
        with lkl.patched(kernel):
            assert early.socket is lsocket.socket
            assert early.create_connection is lsocket.create_connection
            assert early.gai is lsocket.getaddrinfo
            late = types.ModuleType("lkl_test_late")
            exec("from socket import socket, gethostname", late.__dict__)
            sys.modules[late.__name__] = late
            assert late.socket is lsocket.socket
        assert early.socket is original_socket is socket.socket
        assert early.gai is socket.getaddrinfo
        assert late.socket is socket.socket and late.gethostname is socket.gethostname
    finally:
        sys.modules.pop("lkl_test_early", None)
        sys.modules.pop("lkl_test_late", None)


def test_patching_is_idempotent_and_counted(kernel):
    first = lkl.patch()
    second = lkl.patch(kernel)
    try:
        assert socket.socket is lsocket.socket
        assert get_original(socket, "socket") is lsocket._StdSocket
        first.undo()
        assert socket.socket is lsocket.socket   # the second hold keeps it
    finally:
        second.undo()
        first.undo()
    assert socket.socket is lsocket._StdSocket
    assert lkl.patch is sys.modules["lkl.patch"] and callable(lkl.patch)


def test_stdlib_sockets_are_kernel_sockets(patched, kernel):
    s = socket.socket()
    u = socket.socket(socket.AF_UNIX)
    a, b = socket.socketpair()
    try:
        assert isinstance(s, socket.socket) and isinstance(s, lsocket._StdSocket)
        assert type(s) is lsocket.socket and s.kfd >= 0
        assert type(s.family) is socket.AddressFamily
        assert type(u) is lsocket._StdSocket     # AF_UNIX on the host
        assert type(a) is lsocket._StdSocket and a.family == socket.AF_UNIX
        assert isinstance(a, socket.socket) and isinstance(u, socket.socket)  # still
        a.sendall(b"u")
        assert b.recv(1) == b"u"
        assert socket.gethostname() == kernel.uname().nodename
        with pytest.raises(OSError) as info:
            socket.socket(socket.AF_BLUETOOTH if hasattr(socket, "AF_BLUETOOTH") else 31)
        assert "lkl" in str(info.value)
    finally:
        for x in (s, u, a, b):
            x.close()


def test_hostname_is_the_kernels(patched, kernel):
    before, host = kernel.uname().nodename, os.uname().nodename
    try:
        socket.sethostname("lkl-patched")
        assert socket.gethostname() == kernel.uname().nodename == "lkl-patched"
        assert os.uname().nodename == host
    finally:
        socket.sethostname(before)


def test_undo_gives_host_sockets_back(kernel):
    with lkl.patched(kernel):
        inside = socket.create_server(("127.0.0.1", 0))
    outside = socket.create_server(("127.0.0.1", 0))
    try:
        assert type(inside) is lsocket.socket and type(outside) is socket.socket
        port = outside.getsockname()[1]
        assert f":{port:04X} " in _host_ports()
        assert f":{port:04X} " not in _kernel_ports(kernel)
        inside.settimeout(2)
        with pytest.raises(TimeoutError):
            inside.accept()                      # still a kernel socket, still works
    finally:
        inside.close()
        outside.close()


def test_ssl_wrap_socket_dispatches_by_socket(patched):
    assert ssl.SSLContext.wrap_socket is lkl.patch._wrap_socket
    ctx = ssl.create_default_context()
    s = socket.socket()
    try:
        try:
            importlib.import_module("lkl.ssl")
        except ImportError:
            with pytest.raises(NotImplementedError):
                ctx.wrap_socket(s, server_hostname="localhost")
    finally:
        s.close()
    host = lsocket._StdSocket()
    try:
        wrapped = ctx.wrap_socket(host, server_hostname="localhost",
                                  do_handshake_on_connect=False)
        assert isinstance(wrapped, ssl.SSLSocket)   # the stdlib's path
        wrapped.close()
    finally:
        host.close()


# ---- programs --------------------------------------------------------------------

class _Echo(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(line.upper())


def test_socketserver_on_the_kernel(patched, kernel):
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo) as server:
        server.daemon_threads = True
        port = server.server_address[1]
        t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        t.start()
        try:
            assert f":{port:04X} " in _kernel_ports(kernel)
            assert f":{port:04X} " not in _host_ports()
            with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                f = c.makefile("rwb")
                for word in (b"alpha\n", b"beta\n"):
                    f.write(word)
                    f.flush()
                    assert f.readline() == word.upper()
                f.close()
        finally:
            server.shutdown()
            t.join(10)


def test_http_server_and_urllib_on_the_kernel(patched, kernel, tmp_path):
    (tmp_path / "index.txt").write_bytes(b"served by lkl\n" * 1000)

    class Files(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    httpd.daemon_threads = True
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    t.start()
    try:
        port = httpd.server_address[1]
        assert f":{port:04X} " in _kernel_ports(kernel)
        for host in ("127.0.0.1", "localhost"):
            with urllib.request.urlopen(f"http://{host}:{port}/index.txt", timeout=10) as r:
                assert r.status == 200 and r.read() == b"served by lkl\n" * 1000
    finally:
        httpd.shutdown()
        httpd.server_close()
        t.join(10)


def test_stock_asyncio_echo_with_low_level_calls_and_back_pressure(patched, kernel):
    blob = os.urandom(8 << 20)
    want = hashlib.sha256(blob).hexdigest()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert type(loop).__name__.endswith("SelectorEventLoop")
        done: list[asyncio.Task[None]] = []

        async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            while data := await r.read(1 << 16):
                w.write(data)
                await w.drain()
            w.close()
            await w.wait_closed()

        def on_client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            done.append(asyncio.ensure_future(echo(r, w)))

        server = await asyncio.start_server(on_client, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        assert f":{port:04X} " in _kernel_ports(kernel)

        # Low-level calls: sock_connect waits for writability, sock_sendall
        # for room, sock_recv for data.
        s = socket.socket()
        s.setblocking(False)
        await asyncio.wait_for(loop.sock_connect(s, ("127.0.0.1", port)), 10)
        async def receive() -> tuple[int, str]:
            h, n = hashlib.sha256(), 0
            while chunk := await asyncio.wait_for(loop.sock_recv(s, 1 << 16), 10):
                h.update(chunk)
                n += len(chunk)
            return n, h.hexdigest()

        receiving = asyncio.ensure_future(receive())   # the echo comes back meanwhile
        await asyncio.wait_for(loop.sock_sendall(s, blob), 30)
        s.shutdown(socket.SHUT_WR)
        assert await asyncio.wait_for(receiving, 30) == (len(blob), want)
        s.close()

        # A transport under back-pressure: the peer does not read at first.
        class Sink(asyncio.Protocol):
            def __init__(self) -> None:
                self.paused = asyncio.Event()
                self.resumed = asyncio.Event()

            def pause_writing(self) -> None:
                self.paused.set()

            def resume_writing(self) -> None:
                self.resumed.set()

        raw = lsocket.create_server(("127.0.0.1", 0))
        transport, sink = await loop.create_connection(Sink, *raw.getsockname())
        peer, _ = raw.accept()
        transport.write(blob)
        await asyncio.wait_for(sink.paused.wait(), 10)
        assert transport.get_write_buffer_size() > 0
        assert not sink.resumed.is_set()
        got = hashlib.sha256()
        total = 0
        peer.setblocking(False)
        while total < len(blob):
            try:
                data = peer.recv(1 << 20)
            except BlockingIOError:
                await asyncio.sleep(0.001)      # let the transport write more
                continue
            got.update(data)
            total += len(data)
        await asyncio.wait_for(sink.resumed.wait(), 10)
        assert got.hexdigest() == want
        transport.close()
        peer.close()
        raw.close()

        # Streams: open_connection against the echo server.
        reader, writer = await asyncio.open_connection("localhost", port)
        writer.write(b"line\n")
        assert await asyncio.wait_for(reader.readline(), 10) == b"line\n"
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        await asyncio.wait_for(asyncio.gather(*done), 10)

    asyncio.run(main())


# ---- bad input ------------------------------------------------------------------

@pytest.mark.isolated
def test_patch_without_a_kernel_is_a_clear_error():
    out = run_ok("""
        import socket, lkl
        before = socket.socket
        try:
            lkl.patch()
        except lkl.KernelError as e:
            print("refused:", e)
        assert socket.socket is before and not lkl.patch.is_patched()
    """)
    assert "refused:" in out and "lkl.boot()" in out


@pytest.mark.isolated
def test_a_kernel_halted_under_a_patch_fails_calls_and_never_hangs():
    out = run_ok("""
        import errno, socket, threading, time, lkl
        k = lkl.boot()
        h = lkl.patch(k)
        srv = socket.create_server(("127.0.0.1", 0))
        cli = socket.create_connection(srv.getsockname(), timeout=10)
        conn, _ = srv.accept()
        errors = []
        def blocked():
            try:
                conn.recv(10)           # blocks in the kernel until the halt
            except BaseException as e:
                errors.append(e)
        t = threading.Thread(target=blocked); t.start()
        time.sleep(0.2)                 # let it block (not a synchronisation)
        start = time.monotonic()
        k.halt()
        t.join(10)
        assert not t.is_alive(), "recv hung after the halt"
        assert errors and isinstance(errors[0], OSError), errors
        assert errors[0].errno == errno.ENODEV, errors
        for call in (lambda: cli.send(b"x"), lambda: socket.socket(),
                     lambda: srv.accept()):
            try:
                call()
            except OSError as e:
                assert e.errno == errno.ENODEV, e
            else:
                raise AssertionError("a call worked after the halt")
        for s in (cli, conn, srv):
            s.close()                   # harmless after the halt
        h.undo()
        assert type(socket.socket()) is socket.socket
        print("ok", round(time.monotonic() - start, 1))
    """, timeout=60)
    assert out.startswith("ok")


@pytest.mark.isolated
def test_modules_the_patch_imports_keep_the_stdlib_base_class():
    out = run_ok("""
        import sys, socket
        assert "ssl" not in sys.modules
        import lkl
        k = lkl.boot()
        with lkl.patched(k):
            import ssl
            assert ssl.SSLSocket.__mro__[1] is lkl.patch.get_original(socket, "socket")
            a, b = socket.socketpair()          # TLS over host sockets: the stdlib's
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            s = ctx.wrap_socket(a, do_handshake_on_connect=False)
            assert isinstance(s, ssl.SSLSocket)
            s.close(); b.close()
        print("ok")
        k.halt()
    """)
    assert out.strip() == "ok"


def test_resolver_and_tls_hooks_are_called_with_the_agreed_signatures(kernel, monkeypatch):
    """lkl.resolver and lkl.ssl (another part of the package) plug in here:
    stand-ins record how the patch calls them."""
    calls: list[tuple[Any, ...]] = []
    resolver = types.ModuleType("lkl.resolver")
    resolver.getaddrinfo = lambda *a: calls.append(("gai", *a)) or [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", a[2]))]
    resolver.gethostbyname = lambda *a: calls.append(("ghbn", *a)) or "127.0.0.1"
    resolver.gethostbyname_ex = lambda *a: (calls.append(("ghbn_ex", *a))
                                            or (a[1], [], ["127.0.0.1"]))
    resolver.getnameinfo = lambda *a: calls.append(("gni", *a)) or ("example.test", "80")
    tls = types.ModuleType("lkl.ssl")
    tls.install = lambda k: calls.append(("install", k))
    tls.uninstall = lambda: calls.append(("uninstall",))
    tls.wrap_socket = lambda ctx, sock, *a, **kw: calls.append(("wrap", ctx, sock, a, kw)) or "tls"
    monkeypatch.setitem(sys.modules, "lkl.resolver", resolver)
    monkeypatch.setitem(sys.modules, "lkl.ssl", tls)
    with lkl.patched(kernel):
        assert calls == [("install", kernel)]
        srv = socket.create_server(("127.0.0.1", 0))
        port = srv.getsockname()[1]
        with socket.create_connection(("example.test", port), timeout=5) as c:
            assert c.getpeername() == ("127.0.0.1", port)
        assert ("gai", kernel, "example.test", port, 0, socket.SOCK_STREAM, 0, 0) in calls
        assert socket.gethostbyname("example.test") == "127.0.0.1"
        assert socket.gethostbyname_ex("example.test")[2] == ["127.0.0.1"]
        assert socket.getnameinfo(("127.0.0.1", 80), 0) == ("example.test", "80")
        assert ("ghbn", kernel, "example.test") in calls
        assert ("gni", kernel, ("127.0.0.1", 80), 0) in calls
        ctx = ssl.create_default_context()
        s = socket.socket()
        assert ctx.wrap_socket(s, server_hostname="example.test") == "tls"
        assert calls[-1] == ("wrap", ctx, s, (), {"server_hostname": "example.test"})
        s.close()
        srv.close()
    assert calls[-1] == ("uninstall",)

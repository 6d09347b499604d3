"""TLS on lkl sockets (lkl.ssl): both ends on the session kernel's loopback."""

from __future__ import annotations

import hashlib
import importlib.util
import random
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import run_ok, tcp_pair

import lkl
import lkl.ssl
from harness.tlscerts import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def server_context(pki: Pki, alpn: list[str] | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def client_context(pki: Pki, alpn: list[str] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


class Server:
    """An lkl listener whose accepted, TLS-wrapped connection is passed to
    ``handler`` on a thread; the handler's result or exception is kept."""

    def __init__(self, kernel: Any, ctx: ssl.SSLContext,
                 handler: Callable[[lkl.ssl.SSLSocket], Any], **wrap: Any) -> None:
        self.listener = kernel.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.listener.settimeout(20)
        self.address = self.listener.getsockname()
        self.result: Any = None
        self.error: BaseException | None = None

        def serve() -> None:
            try:
                conn, _ = self.listener.accept()
                conn.settimeout(20)
                with lkl.ssl.wrap_socket(ctx, conn, server_side=True, **wrap) as tls:
                    self.result = handler(tls)
            except BaseException as e:
                self.error = e

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()

    def join(self) -> Any:
        self.thread.join(30)
        assert not self.thread.is_alive(), "server thread still running"
        self.listener.close()
        if self.error is not None:
            raise self.error
        return self.result


@pytest.fixture
def serve(kernel: Any) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(ctx: ssl.SSLContext, handler: Callable[[lkl.ssl.SSLSocket], Any],
              **wrap: Any) -> Server:
        s = Server(kernel, ctx, handler, **wrap)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.listener.close()
        s.thread.join(30)


def connect(kernel: Any, pki: Pki, server: Server, hostname: str | None = "server.test",
            ctx: ssl.SSLContext | None = None, timeout: float | None = 20,
            **wrap: Any) -> lkl.ssl.SSLSocket:
    sock = kernel.socket()
    sock.settimeout(timeout)
    tls = lkl.ssl.wrap_socket(ctx or client_context(pki), sock, server_hostname=hostname,
                              **wrap)
    tls.connect(server.address)
    return tls


def recv_exactly(tls: ssl.SSLSocket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = tls.recv(n - len(out))
        assert chunk, f"EOF after {len(out)} of {n} bytes"
        out += chunk
    return bytes(out)


def drain(tls: ssl.SSLSocket) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    while chunk := tls.recv(1 << 16):
        h.update(chunk)
        n += len(chunk)
    return h.hexdigest(), n


def test_handshake_details_and_bulk_echo(kernel: Any, pki: Pki,
                                         serve: Callable[..., Server]) -> None:
    seen_sni: list[str | None] = []
    sctx = server_context(pki, alpn=["h2", "http/1.1"])
    sctx.sni_callback = lambda _obj, name, _ctx: seen_sni.append(name)  # type: ignore[assignment,misc]

    def echo(tls: lkl.ssl.SSLSocket) -> tuple[str, int, str | None]:
        size = int.from_bytes(recv_exactly(tls, 8), "big")
        h, n = hashlib.sha256(), 0
        buf = bytearray(1 << 16)
        while n < size:
            got = tls.recv_into(buf)
            assert got, "early EOF"
            h.update(memoryview(buf)[:got])
            n += got
            tls.sendall(memoryview(buf)[:got])
        return h.hexdigest(), n, tls.selected_alpn_protocol()

    server = serve(sctx, echo)
    data = random.Random(1).randbytes(3 << 20)
    with connect(kernel, pki, server, ctx=client_context(pki, alpn=["http/1.1"])) as tls:
        assert isinstance(tls, ssl.SSLSocket) and isinstance(tls, socket.socket)
        assert tls.version() == "TLSv1.3"
        assert tls.cipher()[1] == "TLSv1.3"
        assert tls.selected_alpn_protocol() == "http/1.1"
        assert tls.server_hostname == "server.test"
        assert tls.getpeercert()["subject"] == ((("commonName", "server.test"),),)
        assert tls.getpeername() == server.address
        assert tls.family == socket.AF_INET and tls.type == socket.SOCK_STREAM
        assert tls.kfd >= 0 and tls.fileno() >= 0
        for call in (lambda: tls.recv(1, lkl.MSG_PEEK), lambda: tls.send(b"x", lkl.MSG_OOB)):
            with pytest.raises(ValueError, match="non-zero flags"):
                call()
        with pytest.raises(ValueError, match="sendto not allowed"):
            tls.sendto(b"x", ("127.0.0.1", 9))
        sender = threading.Thread(
            target=lambda: tls.sendall(len(data).to_bytes(8, "big") + data))
        sender.start()
        back = recv_exactly(tls, len(data))
        sender.join(30)
    assert back == data
    want = (hashlib.sha256(data).hexdigest(), len(data))
    digest, n, alpn = server.join()
    assert (digest, n) == want
    assert alpn == "http/1.1"
    assert seen_sni == ["server.test"]


def test_wrong_hostname_fails_verification(kernel: Any, pki: Pki,
                                           serve: Callable[..., Server]) -> None:
    server = serve(server_context(pki), lambda tls: tls.recv(10))
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        connect(kernel, pki, server, hostname="other.test")
    with pytest.raises((ssl.SSLError, OSError)):
        server.join()


def test_unknown_ca_fails_verification(kernel: Any, pki: Pki, tmp_path: Path,
                                       serve: Callable[..., Server]) -> None:
    other = make_pki(tmp_path)
    server = serve(server_context(pki), lambda tls: tls.recv(10))
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        connect(kernel, other, server)
    with pytest.raises((ssl.SSLError, OSError)):
        server.join()


def test_client_certificate(kernel: Any, pki: Pki, serve: Callable[..., Server]) -> None:
    sctx = server_context(pki)
    sctx.verify_mode = ssl.CERT_REQUIRED
    sctx.load_verify_locations(pki.ca)
    server = serve(sctx, lambda tls: (tls.recv(1), tls.getpeercert()["subject"])[1])
    cctx = client_context(pki)
    cctx.load_cert_chain(pki.client_cert, pki.client_key)
    with connect(kernel, pki, server, ctx=cctx) as tls:
        tls.sendall(b"x")
        assert tls.recv(1) == b""      # the server closed after reading our cert
    assert server.join() == ((("commonName", "client.test"),),)


def test_makefile_lines(kernel: Any, pki: Pki, serve: Callable[..., Server]) -> None:
    def lines(tls: lkl.ssl.SSLSocket) -> list[bytes]:
        with tls.makefile("rwb") as f:
            got = [f.readline() for _ in range(3)]
            f.write(b"".join(line.upper() for line in got))
            f.flush()
        return got

    server = serve(server_context(pki), lines)
    with connect(kernel, pki, server) as tls:
        with tls.makefile("w", encoding="ascii") as w:
            w.write("one\ntwo\nthree\n")
        with tls.makefile("r", encoding="ascii") as r:
            assert [r.readline() for _ in range(3)] == ["ONE\n", "TWO\n", "THREE\n"]
            assert r.readline() == ""
    assert server.join() == [b"one\n", b"two\n", b"three\n"]


def test_read_timeout(kernel: Any, pki: Pki, serve: Callable[..., Server]) -> None:
    release = threading.Event()
    server = serve(server_context(pki), lambda tls: release.wait(20))
    with connect(kernel, pki, server, timeout=0.3) as tls:
        assert tls.gettimeout() == 0.3
        t0 = time.monotonic()
        with pytest.raises(socket.timeout, match="The read operation timed out"):
            tls.recv(10)
        assert 0.25 < time.monotonic() - t0 < 5
        release.set()
    server.join()


def test_handshake_timeout(kernel: Any, pki: Pki) -> None:
    # A listener that never answers the ClientHello.
    with kernel.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        sock = kernel.socket()
        sock.settimeout(0.3)
        tls = lkl.ssl.wrap_socket(client_context(pki), sock, server_hostname="server.test")
        t0 = time.monotonic()
        with pytest.raises(socket.timeout, match="handshake operation timed out"):
            tls.connect(listener.getsockname())
        assert time.monotonic() - t0 < 5
        tls.close()


def test_non_blocking_mode(kernel: Any, pki: Pki, serve: Callable[..., Server]) -> None:
    go = threading.Event()

    def later(tls: lkl.ssl.SSLSocket) -> bytes:
        go.wait(20)
        tls.sendall(b"hello over tls")
        return tls.recv(10)

    server = serve(server_context(pki), later)
    with connect(kernel, pki, server) as tls:
        tls.setblocking(False)
        assert not tls.getblocking() and tls.gettimeout() == 0.0
        with pytest.raises(ssl.SSLWantReadError):
            tls.recv(100)
        go.set()
        got = b""
        deadline = time.monotonic() + 20
        while len(got) < 14 and time.monotonic() < deadline:
            select.select([tls], [], [], 1)
            try:
                got += tls.recv(5)             # leaves the rest inside OpenSSL
            except ssl.SSLWantReadError:
                continue
            got += tls.recv(tls.pending()) if tls.pending() else b""
        assert got == b"hello over tls"
        assert tls.send(b"bye") == 3
    assert server.join() == b"bye"


def test_non_blocking_handshake_with_selectors(kernel: Any, pki: Pki,
                                               serve: Callable[..., Server]) -> None:
    import selectors

    server = serve(server_context(pki), lambda tls: tls.sendall(b"done"))
    sock = kernel.socket()
    sock.settimeout(20)
    sock.connect(server.address)
    sock.setblocking(False)
    tls = lkl.ssl.wrap_socket(client_context(pki), sock, server_hostname="server.test",
                              do_handshake_on_connect=False)
    with tls, selectors.DefaultSelector() as sel:
        sel.register(tls, selectors.EVENT_READ)
        deadline = time.monotonic() + 20
        while True:
            assert time.monotonic() < deadline, "handshake did not finish"
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                sel.select(1)
        assert tls.version() == "TLSv1.3"
        while True:
            assert time.monotonic() < deadline
            try:
                assert tls.recv(10) == b"done"
                break
            except ssl.SSLWantReadError:
                sel.select(1)
    server.join()


def test_non_blocking_handshake_refused_on_connect(kernel: Any, pki: Pki,
                                                   serve: Callable[..., Server]) -> None:
    server = serve(server_context(pki), lambda tls: None)
    sock = kernel.socket()
    sock.settimeout(20)
    sock.connect(server.address)
    sock.setblocking(False)
    with pytest.raises(ValueError, match="non-blocking"):
        lkl.ssl.wrap_socket(client_context(pki), sock, server_hostname="server.test")
    with pytest.raises(OSError):
        server.join()


def test_unwrap_then_plain_text(kernel: Any, pki: Pki, serve: Callable[..., Server]) -> None:
    def starttls_end(tls: lkl.ssl.SSLSocket) -> bytes:
        assert tls.recv(5) == b"tls!!"
        plain = tls.unwrap()
        assert plain is tls and tls.cipher() is None
        plain.sendall(b"plain after tls")
        return plain.recv(100)

    server = serve(server_context(pki), starttls_end)
    with connect(kernel, pki, server) as tls:
        tls.sendall(b"tls!!")
        assert tls.unwrap() is tls
        assert tls.version() is None and tls.pending() == 0
        with pytest.raises(ValueError, match="unwrapped"):
            tls.read(1)
        assert recv_exactly(tls, 15) == b"plain after tls"
        tls.sendall(b"plain reply")
    assert server.join() == b"plain reply"


def test_ragged_eof(kernel: Any, pki: Pki) -> None:
    """The peer closes its TCP socket without a TLS close_notify."""
    for suppress in (True, False):
        with kernel.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            listener.settimeout(20)
            result: dict[str, Any] = {}

            def server(result: dict[str, Any] = result) -> None:
                conn, _ = listener.accept()
                tls = lkl.ssl.wrap_socket(server_context(pki), conn, server_side=True)
                tls.sendall(b"x")
                # Drop TLS without close_notify, then close the TCP socket.
                tls._sock.close()
                result["done"] = True

            t = threading.Thread(target=server, daemon=True)
            t.start()
            sock = kernel.socket()
            sock.settimeout(20)
            with lkl.ssl.wrap_socket(client_context(pki), sock, server_hostname="server.test",
                                     suppress_ragged_eofs=suppress) as tls:
                tls.connect(listener.getsockname())
                assert tls.recv(1) == b"x"
                t.join(20)
                if suppress:
                    assert tls.recv(10) == b""
                else:
                    with pytest.raises(ssl.SSLEOFError):
                        tls.recv(10)
            assert result == {"done": True}


def test_clean_close_is_eof(kernel: Any, pki: Pki, serve: Callable[..., Server]) -> None:
    server = serve(server_context(pki), lambda tls: tls.unwrap().recv(10))
    with connect(kernel, pki, server, suppress_ragged_eofs=False) as tls:
        assert tls.recv(10) == b""   # close_notify: a clean end, not an error
        tls.unwrap()                 # ours back: the server's unwrap completes
        tls.sendall(b"plain")
    assert server.join() == b"plain"


def test_tls_listener_accepts_tls(kernel: Any, pki: Pki) -> None:
    with kernel.socket() as plain:
        plain.bind(("127.0.0.1", 0))
        plain.listen()
        plain.settimeout(20)
        address = plain.getsockname()
        listener = lkl.ssl.wrap_socket(server_context(pki), plain, server_side=True)
        assert listener.getsockname() == address and listener.gettimeout() == 20
        got: dict[str, Any] = {}

        def client() -> None:
            with lkl.ssl.wrap_socket(client_context(pki), kernel.socket(),
                                     server_hostname="server.test") as tls:
                tls.settimeout(20)
                tls.connect(address)
                got["reply"] = tls.recv(10)

        t = threading.Thread(target=client, daemon=True)
        t.start()
        conn, addr = listener.accept()
        with conn:
            assert isinstance(conn, lkl.ssl.SSLSocket) and conn.server_side
            assert addr[0] == "127.0.0.1"
            conn.sendall(b"welcome")
            t.join(20)
        assert got == {"reply": b"welcome"}
        listener.close()


def test_misuse_errors(kernel: Any, pki: Pki) -> None:
    ctx = client_context(pki)
    with kernel.socket(lkl.AF_INET, lkl.SOCK_DGRAM) as udp, \
            pytest.raises(NotImplementedError, match="only stream sockets"):
        lkl.ssl.wrap_socket(ctx, udp, server_hostname="server.test")
    with kernel.socket() as s, pytest.raises(ValueError, match="check_hostname requires"):
        lkl.ssl.wrap_socket(ctx, s)
    with kernel.socket() as s, pytest.raises(ValueError, match="client mode"):
        lkl.ssl.wrap_socket(server_context(pki), s, server_side=True,
                            server_hostname="x.test")
    with socket.socket() as host, pytest.raises(TypeError, match="not an lkl socket"):
        lkl.ssl.wrap_socket(ctx, host, server_hostname="server.test")
    with pytest.raises(TypeError, match="SSLContext"):
        lkl.ssl.wrap_socket(object(), kernel.socket())  # type: ignore[arg-type]
    with lkl.ssl.wrap_socket(ctx, kernel.socket(), server_hostname="server.test") as tls:
        with pytest.raises(OSError) as e:
            tls.getpeercert()
        assert e.value.errno == 107  # ENOTCONN
        with pytest.raises(NotImplementedError):
            tls.sendmsg([b"x"])
        with pytest.raises(NotImplementedError):
            tls.dup()


def test_connect_refused_keeps_stdlib_error(kernel: Any, pki: Pki) -> None:
    with kernel.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tls = lkl.ssl.wrap_socket(client_context(pki), kernel.socket(), server_hostname="s.test")
    with tls, pytest.raises(ConnectionRefusedError):
        tls.connect(("127.0.0.1", port))
    tls2 = lkl.ssl.wrap_socket(client_context(pki), kernel.socket(), server_hostname="s.test")
    with tls2:
        assert tls2.connect_ex(("127.0.0.1", port)) == 111  # ECONNREFUSED


HAVE_PATCH = importlib.util.find_spec("lkl.patch") is not None


@pytest.mark.skipif(not HAVE_PATCH, reason="needs lkl.patch (issue 11, the other half): "
                    "remove this skip once it is merged")
def test_https_server_and_requests_on_lkl(pki: Pki) -> None:
    """http.server + ssl on lkl, fetched by requests on lkl, in a fresh
    interpreter whose standard library is patched onto its kernel."""
    out = run_ok(f"""
        import http.server, ssl, threading
        import requests
        import lkl

        class Hello(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = ("hello " + self.path).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *args):
                pass

        k = lkl.boot(memory="128M")
        handle = lkl.patch(k)
        before = k.snmp()["Tcp"]["PassiveOpens"]
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain({str(pki.server_cert)!r}, {str(pki.server_key)!r})
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        assert isinstance(srv.socket, ssl.SSLSocket)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        port = srv.server_address[1]
        r = requests.get(f"https://127.0.0.1:{{port}}/tls", verify={str(pki.ca)!r}, timeout=10)
        print(r.status_code, r.text, k.snmp()["Tcp"]["PassiveOpens"] - before)
        srv.shutdown()
        handle.undo()
        k.halt()
    """)
    status, text, opens = out.split()[-4], " ".join(out.split()[-3:-1]), int(out.split()[-1])
    assert (status, text) == ("200", "hello /tls")
    assert opens >= 1  # the connection was the kernel's


def test_wrapping_takes_the_socket_over(kernel: Any, pki: Pki,
                                        serve: Callable[..., Server]) -> None:
    """As the stdlib: the wrapped socket is detached (a wrapper holding an
    lkl.Socket, like lkl.socket.socket, is closed; its kernel socket lives on)."""
    server = serve(server_context(pki), lambda tls: tls.recv(2))
    sock = kernel.socket()
    sock.settimeout(7)
    tls = lkl.ssl.wrap_socket(client_context(pki), sock, server_hostname="server.test")
    assert sock.kfd == -1 and tls.kfd >= 0 and tls.gettimeout() == 7
    sock.close()                     # harmless: it no longer owns anything
    tls.close()

    class Wrapper:
        """The parts of lkl.socket.socket that lkl.ssl relies on."""

        def __init__(self) -> None:
            self.lkl_socket = kernel.socket()
            self.closed = False

        @property
        def kfd(self) -> int:
            return int(self.lkl_socket.kfd)

        @property
        def type(self) -> int:
            return int(self.lkl_socket.type)

        def gettimeout(self) -> float | None:
            return self.lkl_socket.gettimeout()  # type: ignore[no-any-return]

        def close(self) -> None:
            self.closed = True
            self.lkl_socket.close()

    w = Wrapper()
    w.lkl_socket.settimeout(20)
    w.lkl_socket.connect(server.address)
    with lkl.ssl.wrap_socket(client_context(pki), w, server_hostname="server.test") as tls:
        assert w.closed and tls.version() == "TLSv1.3"
        tls.sendall(b"ok")
    assert server.join() == b"ok"


def test_alerts_reach_the_peer_and_callbacks_get_the_socket(
        kernel: Any, pki: Pki, serve: Callable[..., Server]) -> None:
    """The server's SNI callback sees our SSLSocket and refuses: the alert
    it queued is sent before the error is raised, as with the stdlib."""
    seen: list[Any] = []

    def refuse(sock: Any, name: str | None, ctx: ssl.SSLContext) -> int:
        seen.append(sock)
        return ssl.ALERT_DESCRIPTION_ACCESS_DENIED

    sctx = server_context(pki)
    sctx.sni_callback = refuse  # type: ignore[assignment]
    server = serve(sctx, lambda tls: None)
    with pytest.raises(ssl.SSLError) as e:
        connect(kernel, pki, server)
    assert e.value.reason == "TLSV1_ALERT_ACCESS_DENIED"
    with pytest.raises(ssl.SSLError):
        server.join()
    assert len(seen) == 1 and isinstance(seen[0], lkl.ssl.SSLSocket) and seen[0].server_side


def test_the_contexts_own_socket_class(kernel: Any, pki: Pki,
                                       serve: Callable[..., Server]) -> None:
    class Counting(ssl.SSLSocket):
        sent = 0

        def send(self, data: Any, flags: int = 0) -> int:
            n = super().send(data, flags)
            Counting.sent += n
            return n

    server = serve(server_context(pki), lambda tls: recv_exactly(tls, 5))
    ctx = client_context(pki)
    ctx.sslsocket_class = Counting
    with connect(kernel, pki, server, ctx=ctx) as tls:
        assert isinstance(tls, Counting) and isinstance(tls, lkl.ssl.SSLSocket)
        tls.sendall(b"hello")
    assert server.join() == b"hello"
    assert Counting.sent == 5


def test_unclosed_warns_with_its_repr(kernel: Any, pki: Pki) -> None:
    import gc

    tls = lkl.ssl.wrap_socket(client_context(pki), kernel.socket(), server_hostname="s.test")
    text = repr(tls)
    with pytest.warns(ResourceWarning) as record:
        del tls
        gc.collect()
    assert any(text in str(w.message) for w in record)


def test_early_data_on_a_reset_socket_is_refused(kernel: Any, pki: Pki) -> None:
    """Bytes that came before a reset are not handed out as TLS data."""
    import struct

    client, conn, listener = tcp_pair(kernel)
    with listener:
        client.sendall(b"DELETE /data HTTP/1.0\r\n\r\n")
        client.setsockopt(lkl.SOL_SOCKET, lkl.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()                 # RST after the data
        with pytest.raises(ssl.SSLError, match="before TLS handshake with data") as e:
            lkl.ssl.wrap_socket(server_context(pki), conn, server_side=True)
        assert e.value.library is None

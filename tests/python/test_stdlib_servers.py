"""The standard library's servers and clients, unchanged, on lkl sockets.

socketserver waits on ``fileno()`` with selectors: that is the host
eventfd of the lkl socket.  http.client takes the socket it is handed.
"""

import hashlib
import http.client
import http.server
import json
import socketserver
import threading

import pytest

import lkl


class LklServerMixin:
    """socketserver on a kernel socket: server_bind binds an lkl.Socket."""

    kernel: lkl.Kernel

    def __init__(self, kernel, address, handler):
        self.kernel = kernel
        super().__init__(address, handler, bind_and_activate=False)
        self.socket.close()                      # the host socket the base made
        self.socket = kernel.socket(self.address_family, self.socket_type)
        try:
            self.server_bind()
            self.server_activate()
        except BaseException:
            self.server_close()
            raise


class LklThreadingTCPServer(LklServerMixin, socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class LklHTTPServer(LklServerMixin, http.server.ThreadingHTTPServer):
    pass


class Upper(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(line.upper())


class Api(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = json.dumps({"path": self.path, "server": "lkl"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        data = self.rfile.read(int(self.headers["Content-Length"]))
        body = hashlib.sha256(data).hexdigest().encode()
        self.send_response(201)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _serve(server):
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True)
    t.start()

    def stop():
        server.shutdown()
        t.join(10)
        server.server_close()
        assert not t.is_alive()

    return stop


def test_threading_tcp_server(kernel):
    server = LklThreadingTCPServer(kernel, ("127.0.0.1", 0), Upper)
    stop = _serve(server)
    try:
        results = {}

        def client(i):
            with kernel.socket() as s:
                s.settimeout(20)
                s.connect(server.server_address)
                f = s.makefile("rwb")
                lines = [f"client {i} line {j}\n".encode() for j in range(50)]
                for line in lines:
                    f.write(line)
                    f.flush()
                    assert f.readline() == line.upper()
                f.close()
                results[i] = True

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results == {i: True for i in range(8)}
    finally:
        stop()


def _connection(kernel, address):
    conn = http.client.HTTPConnection(*address, timeout=20)
    sock = kernel.socket()
    sock.settimeout(20)
    sock.connect(address)
    conn.sock = sock                    # http.client uses the socket it is handed
    return conn


def test_http_server_and_client(kernel):
    server = LklHTTPServer(kernel, ("127.0.0.1", 0), Api)
    stop = _serve(server)
    try:
        conn = _connection(kernel, server.server_address)
        try:
            for i in range(20):              # keep-alive: one connection
                conn.request("GET", f"/item/{i}")
                resp = conn.getresponse()
                assert resp.status == 200
                assert json.loads(resp.read()) == {"path": f"/item/{i}", "server": "lkl"}
            body = bytes(range(256)) * 4096   # 1 MiB
            conn.request("POST", "/upload", body=body)
            resp = conn.getresponse()
            assert resp.status == 201
            assert resp.read().decode() == hashlib.sha256(body).hexdigest()
        finally:
            conn.close()
    finally:
        stop()


def test_http_server_many_connections(kernel):
    server = LklHTTPServer(kernel, ("127.0.0.1", 0), Api)
    stop = _serve(server)
    try:
        statuses = []

        def fetch(i):
            conn = _connection(kernel, server.server_address)
            try:
                conn.request("GET", f"/{i}")
                resp = conn.getresponse()
                resp.read()
                statuses.append(resp.status)
            finally:
                conn.close()

        threads = [threading.Thread(target=fetch, args=(i,), daemon=True) for i in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert statuses == [200] * 24
    finally:
        stop()


@pytest.mark.parametrize("selector", ["select", "poll", "epoll"])
def test_selectors_on_lkl_sockets(kernel, selector):
    import selectors

    cls = {"select": selectors.SelectSelector, "poll": selectors.PollSelector,
           "epoll": selectors.EpollSelector}[selector]
    with kernel.socket() as srv, cls() as sel:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        srv.setblocking(False)
        sel.register(srv, selectors.EVENT_READ, "listener")
        assert sel.select(0) == []
        clients = [kernel.socket() for _ in range(3)]
        for c in clients:
            c.connect(srv.getsockname())
        accepted = []
        while len(accepted) < 3:
            for key, _ in sel.select(5):
                if key.data == "listener":
                    conn, _ = srv.accept()
                    conn.setblocking(False)
                    sel.register(conn, selectors.EVENT_READ, "conn")
                    accepted.append(conn)
        assert sel.select(0) == []              # nothing pending: not readable
        clients[1].sendall(b"ping")
        ready = sel.select(5)
        assert [k.fileobj for k, _ in ready] == [accepted[1]]
        assert accepted[1].recv(10) == b"ping"
        assert sel.select(0) == []              # drained: not readable again
        clients[2].close()                      # EOF is readable
        ready = sel.select(5)
        assert [k.fileobj for k, _ in ready] == [accepted[2]]
        assert accepted[2].recv(10) == b""
        for s in clients + accepted:
            sel.unregister(s) if s in accepted else None
            s.close()

"""A test rig for ``python -m lkl proxy``.

The proxy runs as a subprocess inside a network namespace of the test
(``ip netns exec``), which plays the host: the TAP device is there, the
namespace's kernel is the guest (its sockets reach the proxy's kernel
over the TAP), and the backends listen on the namespace's loopback.
Nothing leaves the namespace.  Every wait has a deadline.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
from harness.netns import Netns  # noqa: E402
from lkl.proxy.workers import read_ready  # noqa: E402

GUEST_IP = "10.200.17.1"
PROXY_IP = "10.200.17.2"


def wait_until(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``cond`` until it is true, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Backend:
    """A TCP server on the namespace's loopback, one thread per connection.

    ``handler(conn)`` serves a connection (default: echo to EOF, then
    close); ``seen`` lists what each connection received first (PROXY
    headers)."""

    def __init__(self, ns: Netns, handler: Callable[[socket.socket], None] | None = None
                 ) -> None:
        with ns.entered():
            self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.handler = handler or echo
        self.accepted = 0
        self.conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        try:
            self.handler(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def echo(conn: socket.socket) -> None:
    """Echo until EOF, then close (the guest's FIN comes back after the data)."""
    while data := conn.recv(65536):
        conn.sendall(data)


class ProxyProcess:
    """``python -m lkl proxy`` in the namespace, with a bounded lifetime."""

    def __init__(self, ns: Netns, args: list[str], env: dict[str, str] | None = None,
                 lifetime: float = 120) -> None:
        full_env = dict(os.environ, **(env or {}))
        full_env["PYTHONPATH"] = str(ROOT)
        argv = ns.exec_argv(["timeout", "-s", "KILL", str(int(lifetime)), sys.executable,
                             "-m", "lkl", "proxy", *args])
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=full_env, cwd=ROOT)
        self.stderr_lines: list[str] = []
        self._err = threading.Thread(target=self._read_stderr, daemon=True)
        self._err.start()
        self.pid = self._wait_ready(60)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    def _wait_ready(self, timeout: float) -> int:
        msg = read_ready(self.proc, timeout)
        if msg is None:
            self.kill()
            raise AssertionError("the proxy did not come up:\n" + self.stderr())
        return int(msg["pid"])

    def stderr(self) -> str:
        time.sleep(0)  # the reader thread appends as lines come
        return "".join(self.stderr_lines)

    def events(self, name: str) -> list[dict[str, Any]]:
        """The structured log lines of event ``name``."""
        out = []
        for line in list(self.stderr_lines):
            start = line.find("{")
            if start < 0:
                continue
            try:
                msg = json.loads(line[start:])
            except ValueError:
                continue
            if msg.get("event") == name:
                out.append(msg)
        return out

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        self._err.join(2)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except (ProcessLookupError, AttributeError):
                self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> int:
        """SIGTERM and wait for the drain; the exit code."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        try:
            return self.wait(30)
        finally:
            self.kill()


def stats(sock_path: str, http_path: str = "/") -> dict[str, Any]:
    """GET from the proxy's stats endpoint (a unix socket: no namespace matters)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(sock_path)
        s.sendall(f"GET {http_path} HTTP/1.0\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200"), head
    return json.loads(body)


def guest_socket(ns: Netns, timeout: float | None = None) -> socket.socket:
    """A socket of the guest (the namespace's kernel), with ``timeout``."""
    with ns.entered():
        s = socket.socket()
    s.settimeout(timeout)
    return s


def guest_connect(ns: Netns, port: int, first: bytes = b"",
                  timeout: float | None = 10) -> socket.socket:
    """A guest connection to the proxy on ``port``, ``first`` sent on it."""
    s = guest_socket(ns, timeout)
    try:
        s.connect((PROXY_IP, port))
        if first:
            s.sendall(first)
    except BaseException:
        s.close()
        raise
    return s


def round_trip(ns: Netns, port: int, size: int, seed: int, chunk: int = 65536,
               prefix: bytes = b"") -> bool:
    """Send ``size`` seeded bytes through the proxy to the echo backend
    (after ``prefix``, which a dispatching backend reads first), half-close,
    read the echo to EOF; True if both ends hash alike."""
    payload = hashlib.shake_256(seed.to_bytes(4, "big")).digest(size)
    with guest_connect(ns, port, prefix, timeout=30) as s:
        got = hashlib.sha256()
        received = [0]

        def reader() -> None:
            while data := s.recv(65536):
                got.update(data)
                received[0] += len(data)

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        for off in range(0, size, chunk):
            s.sendall(payload[off:off + chunk])
        s.shutdown(socket.SHUT_WR)
        t.join(60)
        return not t.is_alive() and got.digest() == hashlib.sha256(payload).digest()


@contextmanager
def rig(extra: list[str] | None = None, backends: int = 1,
        handler: Callable[[socket.socket], None] | None = None,
        env: dict[str, str] | None = None, port: int = 8017,
        offload: str = "LARGE_SEGMENTS", multi_queue: bool = False
        ) -> Iterator[tuple[Netns, ProxyProcess, list[Backend], str]]:
    """A namespace with a TAP, backends, and the proxy; yields
    (ns, proxy, backends, stats socket path)."""
    with Netns("lklproxy") as ns:
        if multi_queue:
            out = ns.run(["ip", "tuntap", "add", "dev", "pxy0", "mode", "tap", "multi_queue"])
            assert out.returncode == 0, out.stderr
            for argv in (["ip", "addr", "add", f"{GUEST_IP}/24", "dev", "pxy0"],
                         ["ip", "link", "set", "pxy0", "up"]):
                assert ns.run(argv).returncode == 0
        else:
            ns.add_tap("pxy0", f"{GUEST_IP}/24")
        bes = [Backend(ns, handler) for _ in range(backends)]
        stats_path = f"/tmp/lkl-proxy-test-{os.getpid()}-{ns.name}.sock"
        args = ["--nic", "tap:pxy0", "--address", f"{PROXY_IP}/24", "--offload", offload,
                "--listen", f"{PROXY_IP}:{port}", "--stats", f"unix:{stats_path}"]
        for be in bes:
            args += ["--backend", be.addr]
        proxy = ProxyProcess(ns, args + (extra or []), env=env)
        try:
            yield ns, proxy, bes, stats_path
        finally:
            proxy.stop()
            for be in bes:
                be.close()

"""The proxy's counters and the endpoint that serves them as JSON.

``--stats unix:/run/lkl-proxy.sock`` or ``--stats 127.0.0.1:9100``: an
HTTP/1.0 server answering ``GET /`` with the totals, the open connections
and the kernel's SNMP ``Tcp`` counters.  Its listening socket is opened
before the sandbox closes the door on new ones.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Counters", "ConnectionInfo", "StatsServer"]

TOTALS = ("accepted", "refused_max_connections", "refused_max_per_source",
          "backend_errors", "closed", "resets_from_guest",
          "resets_from_backend", "idle_timeouts", "drain_aborts", "tls_handshakes",
          "tls_failures", "bytes_up", "bytes_down")


@dataclass
class ConnectionInfo:
    """One relayed connection, while it is open."""

    ident: int
    guest: str
    listen: str
    backend: str = ""
    started: float = field(default_factory=time.monotonic)
    bytes: Callable[[], tuple[int, int]] = lambda: (0, 0)

    def snapshot(self) -> dict[str, Any]:
        """The connection as JSON-able data."""
        up, down = self.bytes()
        return {"id": self.ident, "guest": self.guest, "listen": self.listen,
                "backend": self.backend, "seconds": round(time.monotonic() - self.started, 3),
                "bytes_up": up, "bytes_down": down}


class Counters:
    """Totals and open connections, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.totals = dict.fromkeys(TOTALS, 0)
        self.open: dict[int, ConnectionInfo] = {}

    def add(self, name: str, n: int = 1) -> None:
        """Add ``n`` to total ``name``."""
        with self._lock:
            self.totals[name] += n

    def opened(self, info: ConnectionInfo) -> None:
        """A connection is open."""
        with self._lock:
            self.open[info.ident] = info

    def closed(self, ident: int) -> None:
        """A connection has ended."""
        with self._lock:
            self.open.pop(ident, None)

    def snapshot(self) -> dict[str, Any]:
        """Totals and open connections as JSON-able data."""
        with self._lock:
            totals = dict(self.totals)
            conns = list(self.open.values())
        return {"totals": totals, "open": len(conns),
                "connections": [c.snapshot() for c in conns]}


class StatsServer:
    """JSON counters over HTTP on a unix socket or a loopback TCP port."""

    def __init__(self, addr: str, report: Callable[[], dict[str, Any]],
                 commands: dict[str, Callable[[], Any]] | None = None) -> None:
        self.report = report
        self.commands = commands or {}
        self.path: str | None = None
        if addr.startswith("unix:"):
            self.path = addr[5:]
            if os.path.exists(self.path):
                os.unlink(self.path)
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(self.path)
        else:
            host, _, port = addr.rpartition(":")
            self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((host.strip("[]"), int(port)))
        self.sock.listen(16)
        self.sock.settimeout(0.5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="lkl-proxy-stats",
                                        daemon=True)

    @property
    def address(self) -> Any:
        """Where it listens (the path, or (host, port))."""
        return self.path or self.sock.getsockname()

    def start(self) -> None:
        """Serve in a thread."""
        self._thread.start()

    def close(self) -> None:
        """Stop serving, remove the unix socket."""
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
        if self.path:
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request and b"\n\n" not in request and len(request) < 8192:
            data = conn.recv(4096)
            if not data:
                break
            request += data
        parts = request.split(b"\r\n", 1)[0].split()
        path = parts[1].decode(errors="replace") if len(parts) > 1 else "/"
        status = "200 OK"
        body: Any
        if path in ("/", "/stats"):
            body = self.report()
        elif path in self.commands:
            body = self.commands[path]()
        else:
            status, body = "404 Not Found", {"error": f"no such path {path}"}
        data = json.dumps(body, indent=1).encode() + b"\n"
        conn.sendall(f"HTTP/1.0 {status}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(data)}\r\n\r\n".encode() + data)

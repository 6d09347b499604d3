"""Sockets that tests and benchmarks set up alike."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any


def tcp_pair(make: Callable[[], Any], host: str = "127.0.0.1", *,
             nodelay: bool = False) -> tuple[Any, Any, Any]:
    """A connected pair of TCP sockets that ``make()`` creates (any socket
    factory: ``socket.socket``, a kernel's ``socket``, a patched module's)
    on ``host``: (client, accepted, listener).  ``nodelay``: TCP_NODELAY
    on both ends of the connection."""
    listener = make()
    listener.bind((host, 0))
    listener.listen()
    client = make()
    client.connect(listener.getsockname())
    conn, _ = listener.accept()
    if nodelay:
        for s in (client, conn):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return client, conn, listener

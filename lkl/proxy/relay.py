"""Moving a connection's bytes between the guest side and the backend.

A plain (non-TLS) connection is relayed by the extension's C loop
(``lkl._lkl._Relay``, ``lkl/_relay.c``): one host thread per direction,
each a blocking kernel ``recv`` into a 64 KiB buffer and host ``send`` of
it (or the reverse), without the GIL.  Per byte: one copy out of the
kernel's socket buffer into ours, one into the host's socket buffer.

A TLS connection is relayed by the same two-thread shape in Python
(the plaintext lives in the ``ssl`` module's objects).

How each direction ended decides how the other side is closed:

- a FIN is passed on as a FIN (``shutdown(SHUT_WR)``), data keeps flowing
  the other way (half-close);
- a reset (or any error) on one side closes the other with
  ``SO_LINGER`` 0, which sends a RST;
- idleness and a drain deadline reset both sides.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

from lkl import _lkl

__all__ = ["Outcome", "relay", "proxy_header", "abort", "LINGER_ZERO"]

LINGER_ZERO = struct.pack("ii", 1, 0)
# Set to 1 to relay plain connections in Python too (bench/proxy.py compares).
PY_RELAY_ENV = "LKL_PROXY_PY_RELAY"
SLICE = 0.25          # how often a blocked Python direction looks at its stop flag
BUFSIZE = 65536


class Outcome:
    """How a relayed connection ended."""

    def __init__(self) -> None:
        self.ends: dict[str, tuple[str, int]] = {}
        self.bytes_up = 0
        self.bytes_down = 0

    @property
    def reset_by(self) -> str | None:
        """'guest', 'backend', 'idle', 'stopped' or None (both FINs)."""
        up = self.ends.get("up", ("eof", 0))[0]
        down = self.ends.get("down", ("eof", 0))[0]
        if up == "source-reset" or down == "destination-reset" or "error" in (up, down):
            return "guest"
        if down == "source-reset" or up == "destination-reset":
            return "backend"
        for why in ("idle", "stopped"):
            if why in (up, down):
                return why
        return None


def abort(sock: Any) -> None:
    """Close ``sock`` with a RST (SO_LINGER 0); errors ignored."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ZERO)
    with contextlib.suppress(OSError):
        sock.close()


def proxy_header(version: str, guest: tuple[Any, ...], local: tuple[Any, ...]) -> bytes:
    """A PROXY protocol header (HAProxy's v1 text or v2 binary).

    For a TCP connection from ``guest`` to ``local`` (the proxy's listening
    address).
    """
    src = ipaddress.ip_address(guest[0])
    dst = ipaddress.ip_address(local[0])
    if src.version != dst.version:   # a v4 guest on a v6 listener, mapped
        src = ipaddress.IPv6Address(f"::ffff:{src}") if src.version == 4 else src
        dst = ipaddress.IPv6Address(f"::ffff:{dst}") if dst.version == 4 else dst
    if version == "v1":
        name = "TCP4" if src.version == 4 else "TCP6"
        return f"PROXY {name} {src} {dst} {guest[1]} {local[1]}\r\n".encode()
    if version != "v2":
        raise ValueError(f"PROXY protocol version must be v1 or v2, not {version!r}")
    family = 0x11 if src.version == 4 else 0x21           # AF_INET/AF_INET6, STREAM
    body = src.packed + dst.packed + struct.pack("!HH", guest[1], local[1])
    return (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, family])
            + struct.pack("!H", len(body)) + body)


def relay(guest: Any, backend: socket.socket, idle_timeout: float,
          register: Callable[[Callable[[], tuple[int, int]], Callable[[], None]], None]
          | None = None) -> Outcome:
    """Relay until both directions ended; close both sockets; the outcome.

    ``guest`` is an lkl.Socket (C relay) or an lkl.ssl.SSLSocket (Python
    relay).  ``register(bytes_fn, stop_fn)`` is called once the relay runs,
    so the caller can read its counters and stop it (a drain deadline).
    """
    if isinstance(guest, _lkl._SocketBase) and os.environ.get(PY_RELAY_ENV) != "1":
        return _relay_c(guest, backend, idle_timeout, register)
    return _relay_py(guest, backend, idle_timeout, register)


def _finish(out: Outcome, guest: Any, backend: socket.socket) -> Outcome:
    who = out.reset_by
    if who in ("guest", "idle", "stopped"):
        abort(backend)
    if who in ("backend", "idle", "stopped"):
        abort(guest)
    for sock in (guest, backend):
        with contextlib.suppress(OSError):
            sock.close()
    return out


def _relay_c(guest: Any, backend: socket.socket, idle_timeout: float,
             register: Any) -> Outcome:
    out = Outcome()
    r = _lkl._Relay(guest.kfd, backend.fileno(), idle_timeout, BUFSIZE)
    if register is not None:
        register(lambda: (r.bytes_up, r.bytes_down), r.stop)

    def direction(name: str, number: int) -> None:
        out.ends[name] = r.run(number)
        if out.ends[name][0] != "eof":
            r.stop()

    down = threading.Thread(target=direction, args=("down", 1), name="lkl-proxy-down",
                            daemon=True)
    down.start()
    direction("up", 0)
    down.join()
    out.bytes_up, out.bytes_down = r.bytes_up, r.bytes_down
    return _finish(out, guest, backend)


def _relay_py(guest: Any, backend: socket.socket, idle_timeout: float,
              register: Any) -> Outcome:
    import ssl
    import time

    out = Outcome()
    stop = threading.Event()
    moved = [0, 0]
    last = [time.monotonic()]
    guest.settimeout(SLICE)
    backend.settimeout(SLICE)
    if register is not None:
        register(lambda: (moved[0], moved[1]), stop.set)

    def interrupted() -> str | None:
        if stop.is_set():
            return "stopped"
        if idle_timeout > 0 and time.monotonic() - last[0] > idle_timeout:
            return "idle"
        return None

    def pump(name: str, src: Any, dst: Any, index: int) -> None:
        end: tuple[str, int] = ("eof", 0)
        while True:
            why = interrupted()
            if why:
                end = (why, 0)
                break
            try:
                data = src.recv(BUFSIZE)
            except (TimeoutError, ssl.SSLWantReadError):
                continue
            except (OSError, ssl.SSLError) as e:
                end = ("source-reset", getattr(e, "errno", 0) or 0)
                break
            if not data:
                with contextlib.suppress(OSError, ssl.SSLError):
                    dst.shutdown(socket.SHUT_WR)
                break
            last[0] = time.monotonic()
            view = memoryview(data)
            while view:
                why = interrupted()
                if why:
                    end = (why, 0)
                    break
                try:
                    n = dst.send(view)
                except (TimeoutError, ssl.SSLWantWriteError):
                    continue
                except (OSError, ssl.SSLError) as e:
                    end = ("destination-reset", getattr(e, "errno", 0) or 0)
                    break
                view = view[n:]
                moved[index] += n
                last[0] = time.monotonic()
            if end[0] != "eof":
                break
        out.ends[name] = end
        if end[0] != "eof":
            stop.set()

    down = threading.Thread(target=pump, args=("down", backend, guest, 1),
                            name="lkl-proxy-down", daemon=True)
    down.start()
    pump("up", guest, backend, 0)
    down.join()
    out.bytes_up, out.bytes_down = moved
    return _finish(out, guest, backend)

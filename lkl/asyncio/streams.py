"""asyncio streams over the kernel's TCP: open_connection and start_server.

They return the standard ``asyncio.StreamReader``/``asyncio.StreamWriter``
and an ``asyncio.Server``-like object, with or without TLS (``ssl=``), on
any event loop with ``add_reader``: best on :class:`lkl.asyncio.EventLoop`
(which waits in the kernel), and also on the stock selector loop or uvloop.

How it waits: on ``lkl.asyncio.EventLoop`` the transport registers the
socket itself (``loop.add_reader(sock, ...)``), which goes to the loop's
kernel epoll: no host fd at all.  On another loop each lkl socket has a
host endpoint (``Socket.fileno()``) that is readable while the kernel
socket is readable and writable while it is writable.  The transport
waits on it with ``loop.add_reader``, and with ``loop.add_writer`` only
while it has buffered data the kernel did not take, so writing never
spins.
"""

from __future__ import annotations

import asyncio as _asyncio
import collections
import errno
import inspect
import ssl as _ssl
import warnings
from asyncio import sslproto as _sslproto
from collections.abc import Awaitable, Callable
from typing import Any

from lkl import _lkl
from lkl._kernel import Kernel
from lkl._lkl import KernelError
from lkl._socket import Socket
from lkl.asyncio.loop import EventLoop
from lkl.constants import (
    AF_INET,
    AF_INET6,
    IPPROTO_TCP,
    SHUT_WR,
    SO_ERROR,
    SO_REUSEADDR,
    SOCK_STREAM,
    SOL_SOCKET,
    TCP_NODELAY,
)

__all__ = ["LklTransport", "Server", "open_connection", "ssl_protocol", "start_server"]

_DEFAULT_LIMIT = 2**16
_ACCEPT_RETRY_DELAY = 1.0
ClientConnectedCallback = Callable[
    [_asyncio.StreamReader, _asyncio.StreamWriter], "Awaitable[None] | None"]


def _family(host: str | None) -> int:
    return AF_INET6 if host and ":" in host else AF_INET


def _native(loop: _asyncio.AbstractEventLoop) -> bool:
    """True on a loop that waits for lkl sockets in the kernel."""
    return isinstance(loop, EventLoop)


def ssl_protocol(
    loop: _asyncio.AbstractEventLoop,
    app_protocol: _asyncio.BaseProtocol,
    sslcontext: _ssl.SSLContext,
    waiter: _asyncio.Future[None] | None,
    **kwargs: Any,
) -> Any:
    """The stdlib's TLS layer (``asyncio.sslproto.SSLProtocol``) for an LklTransport.

    Keyword arguments as ``loop._make_ssl_transport``: server_side,
    server_hostname, ssl_handshake_timeout, ssl_shutdown_timeout,
    call_connection_made.
    """
    server_side = kwargs.pop("server_side", False)
    server_hostname = kwargs.pop("server_hostname", None)
    # Unset timeouts are left out (Python 3.10 has no ssl_shutdown_timeout).
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return _sslproto.SSLProtocol(loop, app_protocol, sslcontext, waiter,  # type: ignore[arg-type]
                                 server_side,
                                 server_hostname, **kwargs)


def _ssl_context(ssl: _ssl.SSLContext | bool | None) -> _ssl.SSLContext | None:
    if ssl is None or ssl is False:
        return None
    if ssl is True:
        return _ssl.create_default_context()
    if not isinstance(ssl, _ssl.SSLContext):
        raise TypeError(f"ssl must be an ssl.SSLContext, True or None, not {type(ssl).__name__}")
    return ssl


# asyncio.Server's _attach/_detach take the transport from Python 3.12 on.
_SERVER_TAKES_TRANSPORT = len(
    inspect.signature(_asyncio.Server._attach).parameters) > 1  # type: ignore[attr-defined]


def _server_attach(server: Any, transport: LklTransport) -> None:
    if isinstance(server, Server) or _SERVER_TAKES_TRANSPORT:
        server._attach(transport)
    else:
        server._attach()


def _server_detach(server: Any, transport: LklTransport) -> None:
    if isinstance(server, Server) or _SERVER_TAKES_TRANSPORT:
        server._detach(transport)
    else:
        server._detach()


class LklTransport(_asyncio.Transport):
    """An asyncio transport over a connected, non-blocking lkl stream socket.

    It reads when the loop reports the socket readable (on
    lkl.asyncio.EventLoop from the kernel's epoll, elsewhere through the
    socket's host endpoint), sends at once when it can, and buffers the
    rest, waiting for writability only while data is buffered.  It feeds
    plain protocols (data_received) and buffered ones (get_buffer /
    buffer_updated, as asyncio's TLS layer).  Flow control
    (pause_writing/resume_writing, pause_reading/resume_reading) follows
    asyncio's selector transports.
    """

    max_size = 256 * 1024
    # loop.start_tls() may layer TLS over it.
    _start_tls_compatible = True

    def __init__(
        self,
        loop: _asyncio.AbstractEventLoop,
        sock: Socket,
        protocol: _asyncio.BaseProtocol,
        waiter: _asyncio.Future[None] | None = None,
        extra: dict[str, Any] | None = None,
        server: Any = None,
    ) -> None:
        super().__init__()
        self._info: dict[str, Any] = dict(extra or {})
        self._loop = loop
        self._sock: Socket | None = sock
        self._protocol: Any = protocol
        self._server = server
        self._native = _native(loop)
        # The object the loop watches: the socket itself on a loop that
        # waits in the kernel, else its host endpoint.
        self._rfd: Any = sock if self._native else sock.fileno()
        self._wfd: Any = None
        self._buffer: collections.deque[bytes | memoryview] = collections.deque()
        self._buffer_size = 0
        self._closing = False
        self._conn_lost = 0
        self._eof = False
        self._reading = True
        self._protocol_paused = False
        self._high = 64 * 1024
        self._low = 16 * 1024
        self._info.setdefault("socket", sock)
        for key, get in (("sockname", sock.getsockname), ("peername", sock.getpeername)):
            if key not in self._info:
                try:
                    self._info[key] = get()
                except OSError:
                    self._info[key] = None
        if server is not None:
            _server_attach(server, self)
        loop.call_soon(self._protocol.connection_made, self)
        loop.call_soon(self._add_reader)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """"socket" (the lkl.Socket), "sockname", "peername", or ``default``."""
        return self._info.get(name, default)

    def __repr__(self) -> str:
        state = "closed" if self._sock is None else ("closing" if self._closing else "open")
        where = f"kfd={self._sock.kfd}" if self._sock is not None else ""
        return f"<lkl.asyncio.LklTransport {state} {where}>"

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        if self._sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._sock.close()

    # ---- reading -----------------------------------------------------------

    def _add_reader(self) -> None:
        if self._reading and not self._closing and self._sock is not None:
            self._loop.add_reader(self._rfd, self._read_ready)

    def _read_ready(self) -> None:
        if self._conn_lost or self._sock is None:
            return
        if isinstance(self._protocol, _asyncio.BufferedProtocol):
            self._read_into_protocol()
            return
        try:
            data = self._sock.recv(self.max_size)
        except (BlockingIOError, InterruptedError):
            return  # recv refreshed the endpoint: not readable
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on lkl socket transport")
            return
        if not data:
            self._read_eof()
            return
        try:
            self._protocol.data_received(data)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")

    def _read_into_protocol(self) -> None:
        """Receive straight into a BufferedProtocol's buffer (asyncio's TLS)."""
        try:
            buf = self._protocol.get_buffer(-1)
            if not len(buf):
                raise RuntimeError("get_buffer() returned an empty buffer")
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.get_buffer() call failed.")
            return
        sock = self._sock
        if sock is None:
            return
        try:
            n = sock.recv_into(buf)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on lkl socket transport")
            return
        if not n:
            self._read_eof()
            return
        try:
            self._protocol.buffer_updated(n)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.buffer_updated() call failed.")

    def _read_eof(self) -> None:
        # End of stream stays readable: stop watching it either way.
        self._loop.remove_reader(self._rfd)
        try:
            keep_open = self._protocol.eof_received()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
            return
        if not keep_open:
            self.close()

    def is_reading(self) -> bool:
        """True while the transport delivers received data."""
        return self._reading and not self._closing

    def pause_reading(self) -> None:
        """Stop reading until resume_reading()."""
        if self._closing or not self._reading:
            return
        self._reading = False
        self._loop.remove_reader(self._rfd)

    def resume_reading(self) -> None:
        """Read again after pause_reading()."""
        if self._closing or self._reading:
            return
        self._reading = True
        self._add_reader()

    # ---- writing -----------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` now if the kernel takes it, else buffer it."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if self._eof:
            raise RuntimeError("Cannot call write() after write_eof()")
        view = memoryview(data).cast("B")
        if not view:
            return
        if self._conn_lost or self._sock is None:
            self._conn_lost += 1
            return
        if not self._buffer:
            try:
                n = self._sock.send(view)
            except (BlockingIOError, InterruptedError):
                n = 0
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on lkl socket transport")
                return
            view = view[n:]
            if not view:
                return
            self._wait_writable(True)
        self._buffer.append(bytes(view) if not isinstance(data, bytes) else view)
        self._buffer_size += len(view)
        self._maybe_pause_protocol()

    def writelines(self, list_of_data: Any) -> None:
        """Write each buffer of ``list_of_data``."""
        for data in list_of_data:
            self.write(data)

    def _wait_writable(self, on: bool) -> None:
        if self._sock is None:
            return
        # The socket itself (our loop) or its host endpoint, writable exactly
        # while the kernel socket is.
        if on and self._wfd is None:
            self._wfd = self._rfd
            self._loop.add_writer(self._rfd, self._write_ready)
        elif not on and self._wfd is not None:
            self._wfd = None
            self._loop.remove_writer(self._rfd)

    def _write_ready(self) -> None:
        if self._sock is None:
            return
        while self._buffer:
            chunk = self._buffer[0]
            try:
                n = self._sock.send(chunk)
            except (BlockingIOError, InterruptedError):
                return  # send refreshed the endpoint: not writable
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._wait_writable(False)
                self._buffer.clear()
                self._buffer_size = 0
                self._fatal_error(exc, "Fatal write error on lkl socket transport")
                return
            self._buffer_size -= n
            if n < len(chunk):
                self._buffer[0] = chunk[n:]
                break
            self._buffer.popleft()
        self._maybe_resume_protocol()
        if self._buffer:
            return
        self._wait_writable(False)
        if self._closing:
            self._call_connection_lost(None)
        elif self._eof:
            self._sock.shutdown(SHUT_WR)

    def can_write_eof(self) -> bool:
        """True: TCP can half-close."""
        return True

    def write_eof(self) -> None:
        """Half-close once the buffered data is sent."""
        if self._closing or self._eof:
            return
        self._eof = True
        if not self._buffer and self._sock is not None:
            self._sock.shutdown(SHUT_WR)

    def get_write_buffer_size(self) -> int:
        """Bytes buffered in the transport (not yet taken by the kernel)."""
        return self._buffer_size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """The (low, high) water marks of write flow control."""
        return (self._low, self._high)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Set the water marks of write flow control (as asyncio)."""
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high, self._low = high, low
        self._maybe_pause_protocol()

    def _maybe_pause_protocol(self) -> None:
        if self._buffer_size > self._high and not self._protocol_paused:
            self._protocol_paused = True
            try:
                self._protocol.pause_writing()
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._loop.call_exception_handler({
                    "message": "protocol.pause_writing() failed",
                    "exception": exc, "transport": self, "protocol": self._protocol})

    def _maybe_resume_protocol(self) -> None:
        if self._protocol_paused and self._buffer_size <= self._low:
            self._protocol_paused = False
            try:
                self._protocol.resume_writing()
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._loop.call_exception_handler({
                    "message": "protocol.resume_writing() failed",
                    "exception": exc, "transport": self, "protocol": self._protocol})

    # ---- closing -----------------------------------------------------------

    def is_closing(self) -> bool:
        """True once close() or abort() ran."""
        return self._closing

    def close(self) -> None:
        """Close after the buffered data is sent."""
        if self._closing:
            return
        self._closing = True
        self._loop.remove_reader(self._rfd)
        if not self._buffer:
            self._conn_lost += 1
            self._loop.call_soon(self._call_connection_lost, None)

    def abort(self) -> None:
        """Close at once, dropping buffered data."""
        self._force_close(None)

    def set_protocol(self, protocol: _asyncio.BaseProtocol) -> None:
        """Replace the protocol."""
        self._protocol = protocol

    def get_protocol(self) -> _asyncio.BaseProtocol:
        """The protocol."""
        return self._protocol  # type: ignore[no-any-return]

    def _fatal_error(self, exc: BaseException, message: str) -> None:
        if not isinstance(exc, OSError):
            self._loop.call_exception_handler({
                "message": message, "exception": exc, "transport": self,
                "protocol": self._protocol})
        self._force_close(exc)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._conn_lost:
            return
        if self._buffer:
            self._buffer.clear()
            self._buffer_size = 0
            self._wait_writable(False)
        if not self._closing:
            self._closing = True
            self._loop.remove_reader(self._rfd)
        self._conn_lost += 1
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            if self._protocol is not None:
                self._protocol.connection_lost(exc)
        finally:
            if self._wfd is not None:
                self._wait_writable(False)
            if self._sock is not None:
                self._sock.close()
                self._sock = None
            self._protocol = None
            server, self._server = self._server, None
            if server is not None:
                _server_detach(server, self)


def _set_result_unless_cancelled(fut: _asyncio.Future[Any], result: Any) -> None:
    if not fut.cancelled():
        fut.set_result(result)


async def _wait_writable(loop: _asyncio.AbstractEventLoop, sock: Socket) -> None:
    if isinstance(loop, EventLoop):
        await loop._lkl_wait(sock, True)
        return
    fut: _asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()
    loop.add_writer(fd, _set_result_unless_cancelled, fut, None)
    try:
        await fut
    finally:
        loop.remove_writer(fd)


async def _connect(kernel: Kernel, host: str, port: int, family: int | None) -> Socket:
    loop = _asyncio.get_running_loop()
    sock = kernel.socket(family or _family(host), SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)
        err = sock.connect_ex((host, port))
        while err in (errno.EINPROGRESS, errno.EALREADY, errno.EINTR):
            await _wait_writable(loop, sock)
            err = sock.getsockopt(SOL_SOCKET, SO_ERROR)
        if err and err != errno.EISCONN:
            raise _lkl.errno_error(err)
        return sock
    except BaseException:
        sock.close()
        raise


async def open_connection(
    kernel: Kernel,
    host: str,
    port: int,
    *,
    limit: int = _DEFAULT_LIMIT,
    family: int | None = None,
    ssl: _ssl.SSLContext | bool | None = None,
    server_hostname: str | None = None,
    ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
) -> tuple[_asyncio.StreamReader, _asyncio.StreamWriter]:
    """Connect to (host, port) through the kernel's TCP.

    Returns the standard ``(StreamReader, StreamWriter)`` pair, like
    asyncio.open_connection().  ``family`` defaults to AF_INET6 for hosts
    with a colon, else AF_INET.  ``ssl`` (an ``ssl.SSLContext``, or True
    for the default context) runs TLS over the connection with asyncio's
    own TLS layer; ``server_hostname`` defaults to ``host``; the TLS
    timeouts are asyncio's.  ``writer.start_tls()`` works too.
    """
    loop = _asyncio.get_running_loop()
    context = _ssl_context(ssl)
    if context is None and server_hostname is not None:
        raise ValueError("server_hostname is only meaningful with ssl")
    sock = await _connect(kernel, host, port, family)
    reader = _asyncio.StreamReader(limit=limit, loop=loop)
    protocol = _asyncio.StreamReaderProtocol(reader, loop=loop)
    waiter: _asyncio.Future[None] = loop.create_future()
    try:
        if context is None:
            transport: Any = LklTransport(loop, sock, protocol, waiter)
        else:
            tls = ssl_protocol(
                loop, protocol, context, waiter, server_side=False,
                server_hostname=host if server_hostname is None else server_hostname,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout)
            LklTransport(loop, sock, tls)
            transport = tls._app_transport
        await waiter
    except BaseException:
        sock.close()
        raise
    writer = _asyncio.StreamWriter(transport, protocol, reader, loop)
    return reader, writer


class Server(_asyncio.AbstractServer):
    """A listening lkl socket served on an event loop (asyncio.Server-like).

    ``sockets``, ``is_serving()``, ``start_serving()``, ``serve_forever()``,
    ``close()``, ``wait_closed()`` (waits for the close and for the
    connections to finish), ``close_clients()``, ``abort_clients()`` and the
    async context manager behave as asyncio.Server's.
    """

    def __init__(
        self,
        loop: _asyncio.AbstractEventLoop,
        sockets: list[Socket],
        protocol_factory: Callable[[], _asyncio.BaseProtocol],
        backlog: int,
        ssl: _ssl.SSLContext | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> None:
        self._loop = loop
        self._ssl = ssl
        self._ssl_timeouts = {"ssl_handshake_timeout": ssl_handshake_timeout,
                              "ssl_shutdown_timeout": ssl_shutdown_timeout}
        self._sockets: list[Socket] | None = sockets
        self._protocol_factory = protocol_factory
        self._backlog = backlog
        self._transports: set[LklTransport] = set()
        self._waiters: list[_asyncio.Future[None]] | None = []
        self._serving = False
        self._serving_forever_fut: _asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"<lkl.asyncio.Server sockets={self.sockets!r}>"

    def _attach(self, transport: LklTransport) -> None:
        self._transports.add(transport)

    def _detach(self, transport: LklTransport) -> None:
        self._transports.discard(transport)
        if not self._transports and self._sockets is None:
            self._wakeup()

    def _wakeup(self) -> None:
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def _start_serving(self) -> None:
        if self._serving or self._sockets is None:
            return
        self._serving = True
        for sock in self._sockets:
            self._loop.add_reader(self._watched(sock), self._accept_ready, sock)

    def _watched(self, sock: Socket) -> Any:
        return sock if _native(self._loop) else sock.fileno()

    def _accept_ready(self, sock: Socket) -> None:
        for _ in range(self._backlog):
            try:
                conn, addr = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except KernelError:
                self._stop_after_halt()
                raise
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._loop.call_exception_handler({
                        "message": "lkl socket accept failed; retrying shortly",
                        "exception": exc, "socket": sock})
                    self._loop.remove_reader(self._watched(sock))
                    self._serving = False
                    self._loop.call_later(_ACCEPT_RETRY_DELAY, self._start_serving)
                    return
                raise
            try:
                conn.setblocking(False)
                conn.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)
                protocol: Any = self._protocol_factory()
                if self._ssl is not None:
                    protocol = ssl_protocol(self._loop, protocol, self._ssl, None,
                                            server_side=True, **self._ssl_timeouts)
                LklTransport(self._loop, conn, protocol, extra={"peername": addr}, server=self)
            except BaseException:
                conn.close()
                raise

    def _stop_after_halt(self) -> None:
        # The kernel is gone: nothing more to accept; stop watching.
        for sock in self._sockets or ():
            self._loop.remove_reader(self._watched(sock))
        self._serving = False

    def get_loop(self) -> _asyncio.AbstractEventLoop:
        """The event loop the server runs on."""
        return self._loop

    def is_serving(self) -> bool:
        """True while connections are accepted."""
        return self._serving

    @property
    def sockets(self) -> tuple[Socket, ...]:
        """The listening lkl sockets (empty once closed)."""
        return tuple(self._sockets or ())

    def close(self) -> None:
        """Stop listening and close the listening sockets.

        Open connections stay open (see close_clients).
        """
        sockets, self._sockets = self._sockets, None
        if sockets is None:
            return
        for sock in sockets:
            if self._serving and sock.kfd >= 0:
                self._loop.remove_reader(self._watched(sock))
            sock.close()
        self._serving = False
        fut = self._serving_forever_fut
        if fut is not None and not fut.done():
            fut.cancel()
            self._serving_forever_fut = None
        if not self._transports:
            self._wakeup()

    def close_clients(self) -> None:
        """Close every open connection (after its buffered data)."""
        for transport in list(self._transports):
            transport.close()

    def abort_clients(self) -> None:
        """Abort every open connection."""
        for transport in list(self._transports):
            transport.abort()

    async def start_serving(self) -> None:
        """Start accepting connections (idempotent)."""
        self._start_serving()
        await _asyncio.sleep(0)

    async def serve_forever(self) -> None:
        """Accept connections until cancelled; then close the server."""
        if self._serving_forever_fut is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        if self._sockets is None:
            raise RuntimeError(f"server {self!r} is closed")
        self._start_serving()
        self._serving_forever_fut = self._loop.create_future()
        try:
            await self._serving_forever_fut
        except _asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever_fut = None

    async def wait_closed(self) -> None:
        """Wait until the server is closed and its connections are done."""
        if self._waiters is None:
            return
        waiter: _asyncio.Future[None] = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()


async def start_server(
    kernel: Kernel,
    client_connected_cb: ClientConnectedCallback,
    host: str | None = None,
    port: int = 0,
    *,
    limit: int = _DEFAULT_LIMIT,
    family: int | None = None,
    backlog: int = 100,
    reuse_address: bool = True,
    start_serving: bool = True,
    ssl: _ssl.SSLContext | None = None,
    ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
) -> Server:
    """Serve TCP connections on (host, port) of the kernel's stack.

    Like asyncio.start_server(): ``client_connected_cb(reader, writer)``
    (a function or coroutine) runs for each connection with the standard
    StreamReader/StreamWriter.  ``host`` None or "" listens on all IPv4
    addresses; port 0 picks a free port (see ``server.sockets``).  ``ssl``
    (a server-side ``ssl.SSLContext``) serves TLS with asyncio's own TLS
    layer.
    """
    loop = _asyncio.get_running_loop()
    context = _ssl_context(ssl)
    host = host or "0.0.0.0"
    sock = kernel.socket(family or _family(host), SOCK_STREAM)
    try:
        if reuse_address:
            sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise

    def factory() -> _asyncio.StreamReaderProtocol:
        reader = _asyncio.StreamReader(limit=limit, loop=loop)
        return _asyncio.StreamReaderProtocol(reader, client_connected_cb, loop=loop)

    server = Server(loop, [sock], factory, backlog, context, ssl_handshake_timeout,
                    ssl_shutdown_timeout)
    if start_serving:
        await server.start_serving()
    return server

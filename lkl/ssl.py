r"""TLS on lkl sockets: the standard library's ``ssl`` over the kernel's TCP.

The stdlib's ``ssl.SSLSocket`` lets OpenSSL read and write the host fd
itself; an lkl socket has no such fd (its ``fileno()`` is only a readiness
signal), so here OpenSSL works on memory buffers (``ssl.MemoryBIO`` and
``SSLContext.wrap_bio``) and this module moves the ciphertext between them
and the kernel socket::

    ctx = ssl.create_default_context(cafile="ca.pem")
    tls = lkl.ssl.wrap_socket(ctx, kernel.socket(), server_hostname="example.test")
    tls.connect(("10.0.0.1", 443))
    tls.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")

:func:`wrap_socket` returns an :class:`SSLSocket`, a subclass of
``ssl.SSLSocket`` (so ``isinstance`` checks pass) with its methods,
arguments, results and exceptions: blocking, timeout (``TimeoutError``
"The read operation timed out") and non-blocking (``ssl.SSLWantReadError``
/ ``ssl.SSLWantWriteError``) modes, ``makefile``, ``unwrap``, ``fileno()``
of the underlying socket for selectors.  ``lkl.patch`` routes
``SSLContext.wrap_socket`` here for lkl sockets.
"""

from __future__ import annotations

import contextlib
import errno
import socket as _socket
import ssl as _ssl
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["SSLSocket", "wrap_socket", "is_lkl_socket"]

_T = TypeVar("_T")

# Ciphertext read from the kernel socket per call (a few TLS records).
_READ_CHUNK = 64 << 10


def is_lkl_socket(sock: object) -> bool:
    """True for a socket of the lkl kernel (lkl.Socket, or one that wraps it)."""
    return hasattr(sock, "kfd")


def wrap_socket(
    context: _ssl.SSLContext,
    sock: Any,
    server_side: bool = False,
    do_handshake_on_connect: bool = True,
    suppress_ragged_eofs: bool = True,
    server_hostname: str | bytes | None = None,
    session: _ssl.SSLSession | None = None,
) -> SSLSocket:
    """TLS over the lkl socket ``sock``, as ``context.wrap_socket(sock, ...)``.

    The arguments and checks are the standard library's.  ``sock`` is taken
    over, as the stdlib does: use the result from now on
    (the kernel socket moves to the result; ``sock`` is detached, or closed
    if it is a wrapper such as lkl.socket.socket).
    A connected socket does the handshake here unless
    ``do_handshake_on_connect`` is false; an unconnected one does it in
    ``connect()``.
    """
    if not isinstance(context, _ssl.SSLContext):
        raise TypeError(f"context must be an ssl.SSLContext, not {type(context).__name__}")
    if not is_lkl_socket(sock):
        raise TypeError(f"not an lkl socket: {type(sock).__name__} (use context.wrap_socket)")
    return _socket_class(context)._wrap(context, sock, server_side, do_handshake_on_connect,
                                        suppress_ragged_eofs, server_hostname, session)


_classes: dict[type, type] = {}


def _socket_class(context: _ssl.SSLContext) -> type[SSLSocket]:
    """SSLSocket, or a subclass of it and of the context's ``sslsocket_class``.

    The latter when the program set its own class: its methods first, ours
    under them.
    """
    custom = context.sslsocket_class
    if custom is None or custom is _ssl.SSLSocket or issubclass(custom, SSLSocket):
        return custom if custom is not None and issubclass(custom, SSLSocket) else SSLSocket
    cls = _classes.get(custom)
    if cls is None:
        cls = type(custom.__name__, (custom, SSLSocket), {"__module__": custom.__module__,
                                                          "__qualname__": custom.__qualname__})
        _classes[custom] = cls
    return cls


def _plain(sock: Any) -> Any:
    """The kernel socket of ``sock``, as a new lkl.Socket.

    ``sock`` is left detached or closed, as the standard library's
    wrap_socket leaves it.
    """
    from lkl._socket import Socket

    timeout = sock.gettimeout()
    if isinstance(sock, Socket):
        family, type_, proto = sock.family, sock.type, sock.proto
        plain = Socket(family, type_, proto, kfd=sock.detach())
    else:
        # A wrapper (lkl.socket.socket): keep its kernel socket by a dup
        # of the kernel fd, and close the wrapper.
        inner = getattr(sock, "lkl_socket", None)
        if not isinstance(inner, Socket):
            raise TypeError(f"{type(sock).__name__} has a kfd but no lkl_socket")
        plain = inner.dup()
        sock.close()
    plain.settimeout(timeout)
    return plain


class SSLSocket(_ssl.SSLSocket):
    """A TLS connection over a socket of the lkl kernel (see lkl.ssl).

    Made by :func:`wrap_socket`.  It is an ``ssl.SSLSocket`` whose bytes
    travel through the kernel: every method of the standard library's
    class works with the same arguments and results, and the plain socket
    methods (``getsockname``, ``setsockopt``, ``settimeout``...) act on the
    kernel socket.  ``fileno()`` is the kernel socket's readiness fd.
    """

    # Set in _wrap (the stdlib's __init__ refuses direct construction).
    _sock: Any
    _sslobj: Any
    _incoming: _ssl.MemoryBIO
    _outgoing: _ssl.MemoryBIO
    _timeout: float | None
    _unsent: bytearray
    _unsent_len: int | None
    _leftover: bytes
    _fed: int
    _tls_lock: threading.Lock
    _send_lock: threading.Lock
    _recv_lock: threading.Lock
    _rbuf: bytearray
    _connected: bool
    _io_refs: int
    _context: _ssl.SSLContext
    _session: Any
    server_side: bool
    server_hostname: str | None
    do_handshake_on_connect: bool
    suppress_ragged_eofs: bool

    @classmethod
    def _wrap(cls, context: _ssl.SSLContext, sock: Any, server_side: bool,
              do_handshake_on_connect: bool, suppress_ragged_eofs: bool,
              server_hostname: str | bytes | None, session: _ssl.SSLSession | None
              ) -> SSLSocket:
        if sock.type != _socket.SOCK_STREAM:
            raise NotImplementedError("only stream sockets are supported")
        if server_side:
            if server_hostname:
                raise ValueError("server_hostname can only be specified in client mode")
            if session is not None:
                raise ValueError("session can only be specified in client mode")
        if context.check_hostname and not server_hostname:
            raise ValueError("check_hostname requires server_hostname")
        plain = _plain(sock)
        # The C socket under ssl.SSLSocket stays unopened (fd -1): every
        # socket method is redirected to the kernel socket below.
        self = cls.__new__(cls)
        self._io_refs = 0
        self._closed = False
        self._sock = plain
        self._context = context
        self._session = session
        self._sslobj = None
        self.server_side = server_side
        self.server_hostname = context._encode_hostname(server_hostname)  # type: ignore[attr-defined]
        self.do_handshake_on_connect = do_handshake_on_connect
        self.suppress_ragged_eofs = suppress_ragged_eofs
        self._timeout = plain.gettimeout()
        self._unsent = bytearray()
        self._unsent_len = None
        self._leftover = b""
        self._fed = 0
        self._tls_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._recv_lock = threading.Lock()
        self._rbuf = bytearray(_READ_CHUNK)
        try:
            plain.getpeername()
            connected = True
        except OSError as e:
            if e.errno != errno.ENOTCONN:
                raise
            connected = False
            self._refuse_early_data(e.errno)
        self._connected = connected
        if connected:
            try:
                self._new_sslobj()
                if do_handshake_on_connect:
                    if self._timeout == 0.0:
                        raise ValueError("do_handshake_on_connect should not be specified "
                                         "for non-blocking sockets")
                    self.do_handshake()
            except (OSError, ValueError):
                self.close()
                raise
        return self

    def _refuse_early_data(self, err: int) -> None:
        """Refuse bytes received on a socket that is no longer connected.

        As the stdlib: a socket the peer reset, holding received bytes,
        must not pass them off as TLS data.
        """
        timeout = self._sock.gettimeout()
        self._sock.settimeout(0.0)
        try:
            early = self._sock.recv(1)
        except OSError as e:
            if e.errno not in (errno.ENOTCONN, errno.EINVAL, errno.EAGAIN):
                raise
            early = b""
        finally:
            self._sock.settimeout(timeout)
        if early:
            reason = "Closed before TLS handshake with data in recv buffer."
            error = _ssl.SSLError(err, reason)
            error.reason = reason
            error.library = None  # type: ignore[assignment]
            with contextlib.suppress(OSError):
                self.close()
            try:
                raise error
            finally:
                del error

    def _new_sslobj(self) -> None:
        self._incoming = _ssl.MemoryBIO()
        self._outgoing = _ssl.MemoryBIO()
        # The C object, as the stdlib's SSLSocket holds it; its owner (what
        # SNI and message callbacks receive) is this socket.
        self._sslobj = self._context._wrap_bio(  # type: ignore[attr-defined]
            self._incoming, self._outgoing, self.server_side, self.server_hostname,
            owner=self, session=self._session)

    def _checkClosed(self, msg: str | None = None) -> None:
        """No check, as in the standard library (a hook for subclasses)."""

    def _check_connected(self) -> None:
        if not self._connected:
            # ENOTCONN unless the TCP connection came up since (connect_ex).
            self.getpeername()

    # ---- moving ciphertext ------------------------------------------------

    def _deadline(self) -> float | None:
        t = self._timeout
        return time.monotonic() + t if t else None

    def _arm(self, deadline: float | None, what: str) -> None:
        """Give the kernel socket the time left before ``deadline``."""
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"The {what} operation timed out")
            self._sock.settimeout(left)
        elif self._sock.gettimeout() != self._timeout:
            self._sock.settimeout(self._timeout)

    def _flush(self, deadline: float | None, what: str) -> bool:
        """Send the ciphertext OpenSSL produced.

        False if the socket is non-blocking and could not take it all (the
        rest stays queued).
        """
        with self._send_lock:
            with self._tls_lock:
                if self._sslobj is not None and self._outgoing.pending:
                    self._unsent += self._outgoing.read()
            while self._unsent:
                self._arm(deadline, what)
                try:
                    n = self._sock.send(self._unsent)
                except BlockingIOError:
                    return False
                except TimeoutError:
                    raise TimeoutError(f"The {what} operation timed out") from None
                del self._unsent[:n]
        return True

    def _fill(self, fed: int, deadline: float | None, what: str) -> None:
        """Read ciphertext from the kernel socket into OpenSSL's buffer.

        End of file too; BlockingIOError if non-blocking and none came.
        ``fed`` is the feed count the caller's SSLObject call saw.
        """
        with self._recv_lock:
            if self._fed != fed:
                return  # another thread fed OpenSSL meanwhile: retry first
            if self._incoming.eof:
                raise _ssl.SSLEOFError(_ssl.SSL_ERROR_EOF,
                                       "EOF occurred in violation of protocol")
            self._arm(deadline, what)
            try:
                n = self._sock.recv_into(self._rbuf)
            except TimeoutError:
                raise TimeoutError(f"The {what} operation timed out") from None
            with self._tls_lock:
                if n:
                    self._incoming.write(memoryview(self._rbuf)[:n])
                else:
                    self._incoming.write_eof()
                self._fed += 1

    def _run(self, op: Callable[[], _T], what: str) -> _T:
        """Run an SSLObject call, moving ciphertext until it completes.

        Blocking sockets wait (up to the timeout: TimeoutError); a
        non-blocking one raises SSLWantReadError / SSLWantWriteError as the
        standard library's does.
        """
        deadline = self._deadline()
        nonblocking = self._timeout == 0.0
        while True:
            try:
                with self._tls_lock:
                    if self._sslobj is None:
                        raise ValueError(f"{what.capitalize()} on closed or unwrapped "
                                         "SSL socket.")
                    fed = self._fed
                    result = op()
            except _ssl.SSLWantReadError:
                if not self._flush(deadline, what) and nonblocking and what != "read":
                    raise _ssl.SSLWantWriteError(_ssl.SSL_ERROR_WANT_WRITE,
                                                 "The operation did not complete (write)"
                                                 ) from None
                try:
                    self._fill(fed, deadline, what)
                except BlockingIOError:
                    raise _ssl.SSLWantReadError(_ssl.SSL_ERROR_WANT_READ,
                                                "The operation did not complete (read)"
                                                ) from None
                continue
            except _ssl.SSLWantWriteError:
                if not self._flush(deadline, what):
                    raise
                continue
            except _ssl.SSLError:
                # Send the alert OpenSSL queued (bad certificate, SNI refused...).
                with contextlib.suppress(OSError):
                    self._flush(time.monotonic() + 1.0 if deadline is None else deadline, what)
                raise
            if not self._flush(deadline, what) and nonblocking and what == "handshake":
                raise _ssl.SSLWantWriteError(_ssl.SSL_ERROR_WANT_WRITE,
                                             "The operation did not complete (write)")
            return result

    # ---- the TLS API ------------------------------------------------------

    def do_handshake(self, block: bool = False) -> None:
        """Run the TLS handshake (see ssl.SSLSocket.do_handshake)."""
        self._check_connected()
        timeout = self._timeout
        try:
            if timeout == 0.0 and block:
                self.settimeout(None)
            self._run(lambda: self._sslobj.do_handshake(), "handshake")
        finally:
            self.settimeout(timeout)

    def read(self, len: int = 1024, buffer: Any = None) -> Any:
        """Read up to ``len`` bytes (into ``buffer`` if given); b"" / 0 at EOF."""
        self._checkClosed()
        if self._sslobj is None:
            raise ValueError("Read on closed or unwrapped SSL socket.")
        try:
            if buffer is not None:
                return self._run(lambda: self._sslobj.read(len, buffer), "read")
            return self._run(lambda: self._sslobj.read(len), "read")
        except _ssl.SSLError as x:
            if x.args[0] == _ssl.SSL_ERROR_EOF and self.suppress_ragged_eofs:
                return 0 if buffer is not None else b""
            raise

    def write(self, data: Any) -> int:
        """Encrypt and send ``data``; returns its length."""
        self._checkClosed()
        if self._sslobj is None:
            raise ValueError("Write on closed or unwrapped SSL socket.")
        deadline = self._deadline()
        if self._timeout == 0.0 and self._unsent_len is not None:
            # OpenSSL's contract: a write that could not finish is retried
            # with the same data; its ciphertext is already queued.
            if not self._flush(deadline, "write"):
                raise _ssl.SSLWantWriteError(_ssl.SSL_ERROR_WANT_WRITE,
                                             "The operation did not complete (write)")
            n, self._unsent_len = self._unsent_len, None
            return n
        n = self._run(lambda: self._sslobj.write(data), "write")
        if self._unsent and self._timeout == 0.0:
            self._unsent_len = n
            raise _ssl.SSLWantWriteError(_ssl.SSL_ERROR_WANT_WRITE,
                                         "The operation did not complete (write)")
        return n

    def unwrap(self) -> SSLSocket:
        """Shut TLS down (close_notify both ways); the socket is plain after."""
        if not self._sslobj:
            raise ValueError("No SSL wrapper around " + str(self))
        self._run(lambda: self._sslobj.shutdown(), "shutdown")
        with self._tls_lock:
            # Plain bytes the peer sent right after its close_notify.
            self._leftover = self._incoming.read()
            self._sslobj = None
        self._sock.settimeout(self._timeout)
        return self

    def verify_client_post_handshake(self) -> None:
        """Ask the client for its certificate (TLS 1.3 post-handshake auth)."""
        if not self._sslobj:
            raise ValueError("No SSL wrapper around " + str(self))
        self._sslobj.verify_client_post_handshake()
        self._flush(self._deadline(), "write")

    # ---- stream methods ---------------------------------------------------

    def send(self, data: Any, flags: int = 0) -> int:
        """Send ``data`` over TLS (plain once unwrapped)."""
        self._checkClosed()
        if self._sslobj is not None:
            if flags != 0:
                raise ValueError(f"non-zero flags not allowed in calls to send() on "
                                 f"{self.__class__}")
            return self.write(data)
        return int(self._sock.send(data, flags))

    def sendall(self, data: Any, flags: int = 0) -> None:
        """Send all of ``data``."""
        self._checkClosed()
        if self._sslobj is None:
            self._sock.sendall(data, flags)
            return
        if flags != 0:
            raise ValueError(f"non-zero flags not allowed in calls to sendall() on "
                             f"{self.__class__}")
        with memoryview(data) as view, view.cast("B") as byte_view:
            count, amount = 0, len(byte_view)
            while count < amount:
                count += self.send(byte_view[count:])

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        """Receive up to ``buflen`` bytes; b"" at the end."""
        self._checkClosed()
        if self._sslobj is not None:
            if flags != 0:
                raise ValueError(f"non-zero flags not allowed in calls to recv() on "
                                 f"{self.__class__}")
            return bytes(self.read(buflen))
        if self._leftover:
            data, self._leftover = self._leftover[:buflen], self._leftover[buflen:]
            return data
        return bytes(self._sock.recv(buflen, flags))

    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:
        """Receive into ``buffer``; returns the count (0 at the end)."""
        self._checkClosed()
        if nbytes is None:
            if buffer is not None:
                with memoryview(buffer) as view:
                    nbytes = view.nbytes
                if not nbytes:
                    nbytes = 1024
            else:
                nbytes = 1024
        if self._sslobj is not None:
            if flags != 0:
                raise ValueError(f"non-zero flags not allowed in calls to recv_into() on "
                                 f"{self.__class__}")
            return int(self.read(nbytes, buffer))
        if self._leftover:
            data = self._leftover[:nbytes]
            self._leftover = self._leftover[len(data):]
            with memoryview(buffer) as view:
                view.cast("B")[:len(data)] = data
            return len(data)
        return int(self._sock.recv_into(buffer, nbytes, flags))

    def sendto(self, data: Any, flags_or_addr: Any, addr: Any = None) -> int:
        """Refused over TLS; plain sendto once unwrapped."""
        if self._sslobj is not None:
            raise ValueError(f"sendto not allowed on instances of {self.__class__}")
        if addr is None:
            return int(self._sock.sendto(data, flags_or_addr))
        return int(self._sock.sendto(data, flags_or_addr, addr))

    def recvfrom(self, buflen: int = 1024, flags: int = 0) -> Any:
        """Refused over TLS; plain recvfrom once unwrapped."""
        if self._sslobj is not None:
            raise ValueError(f"recvfrom not allowed on instances of {self.__class__}")
        return self._sock.recvfrom(buflen, flags)

    def recvfrom_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> Any:
        """Refused over TLS; plain recvfrom_into once unwrapped."""
        if self._sslobj is not None:
            raise ValueError(f"recvfrom_into not allowed on instances of {self.__class__}")
        return self._sock.recvfrom_into(buffer, nbytes or 0, flags)

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """Send a file's bytes through send() (there is no host fd for os.sendfile)."""
        return int(self._sendfile_use_send(file, offset, count))  # type: ignore[attr-defined]

    def shutdown(self, how: int) -> None:
        """Shut the kernel socket down (TLS is dropped, as in the stdlib)."""
        self._sslobj = None
        self._sock.shutdown(how)

    def _real_close(self) -> None:  # type: ignore[override]
        if self._sslobj is not None and not self.server_side:
            self._drain()
        self._sslobj = None
        self._sock.close()

    def _drain(self) -> None:
        """Read and drop, without waiting, what the server sent and nobody read.

        That is TLS 1.3 session tickets, mostly.

        Closing over unread bytes makes the kernel reset the connection.
        On the host a client usually closes before the tickets arrive, so
        servers see a clean end there; this keeps that outcome here.
        """
        with contextlib.suppress(OSError):
            self._sock.settimeout(0.0)
            for _ in range(16):
                if not self._sock.recv_into(self._rbuf):
                    break

    def __del__(self) -> None:
        if getattr(self, "_closed", True) or getattr(self, "_sock", None) is None:
            return
        if self._sock.kfd >= 0:
            warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=2, source=self)
            self._sslobj = None
            self._sock.close()

    # ---- connecting -------------------------------------------------------

    def _real_connect(self, addr: Any, connect_ex: bool) -> int | None:
        if self.server_side:
            raise ValueError("can't connect in server-side mode")
        if self._connected or self._sslobj is not None:
            raise ValueError("attempt to connect already-connected SSLSocket!")
        self._new_sslobj()
        try:
            rc: int | None = None
            if connect_ex:
                rc = self._sock.connect_ex(addr)
            else:
                self._sock.connect(addr)
            if not rc:
                self._connected = True
                if self.do_handshake_on_connect:
                    self.do_handshake()
            return rc
        except (OSError, ValueError):
            self._sslobj = None
            raise

    def accept(self) -> tuple[SSLSocket, Any]:
        """Accept a connection and wrap it server-side."""
        conn, addr = self._sock.accept()
        tls = wrap_socket(self.context, conn, server_side=True,
                          do_handshake_on_connect=self.do_handshake_on_connect,
                          suppress_ragged_eofs=self.suppress_ragged_eofs)
        return tls, addr

    # ---- the plain socket underneath -------------------------------------

    @property
    def family(self) -> _socket.AddressFamily:  # type: ignore[override]
        """The address family."""
        return _socket.AddressFamily(self._sock.family)

    @property
    def type(self) -> _socket.SocketKind:  # type: ignore[override]
        """The socket type."""
        return _socket.SocketKind(self._sock.type)

    @property
    def proto(self) -> int:  # type: ignore[override]
        """The protocol number."""
        return int(self._sock.proto)

    @property
    def kfd(self) -> int:
        """The kernel's fd number of the underlying socket."""
        return int(self._sock.kfd)

    @property
    def timeout(self) -> float | None:  # type: ignore[override]
        """The timeout in seconds (None: blocking)."""
        return self._timeout

    def fileno(self) -> int:
        """The underlying kernel socket's readiness fd (see lkl.Socket.fileno)."""
        return int(self._sock.fileno())

    def settimeout(self, value: float | None) -> None:
        """Set the timeout: None (block), 0.0 (non-blocking) or seconds."""
        self._sock.settimeout(value)
        self._timeout = self._sock.gettimeout()

    def gettimeout(self) -> float | None:
        """The timeout in seconds, or None."""
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        """Block (settimeout(None)) or not (settimeout(0.0))."""
        self.settimeout(None if flag else 0.0)

    def getblocking(self) -> bool:
        """True unless the timeout is 0.0."""
        return self._timeout != 0.0

    def getsockname(self) -> Any:
        """The local address."""
        return self._sock.getsockname()

    def getpeername(self) -> Any:
        """The peer's address."""
        return self._sock.getpeername()

    def setsockopt(self, *args: Any) -> None:
        """As socket.setsockopt, on the kernel socket."""
        self._sock.setsockopt(*args)

    def getsockopt(self, *args: Any) -> Any:
        """As socket.getsockopt, on the kernel socket."""
        return self._sock.getsockopt(*args)

    def bind(self, address: Any) -> None:
        """Bind the kernel socket."""
        self._sock.bind(address)

    def listen(self, *backlog: int) -> None:
        """Listen on the kernel socket."""
        self._sock.listen(*backlog)

    def detach(self) -> int:
        """Forget the kernel socket without closing it; return its kfd."""
        self._closed = True
        self._sslobj = None
        return int(self._sock.detach())

    def __repr__(self) -> str:
        state = " [closed]" if self._closed else ""
        return f"<lkl.ssl.SSLSocket{state} {self._sock!r}>"

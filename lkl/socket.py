"""The standard library's ``socket`` module, on the lkl kernel.

``lkl.socket.socket`` is a subclass of ``socket.socket`` whose sockets live
in the kernel's network stack: ``isinstance(s, socket.socket)`` holds,
``family``/``type`` are the stdlib's enums, and ``fileno()`` is a real host
socket (the readiness endpoint of the kernel socket, see
``lkl.Socket.fileno``), so ``select``, ``selectors`` and stock asyncio work.
Every method that does I/O or reads socket state goes to the kernel
socket, an ``lkl.Socket`` the object holds (``s.lkl_socket``, whose kernel
fd is ``s.kfd``); nothing but the readiness code touches the host fd.

AF_UNIX (and any socket made from a host fd) stays on the host: the
constructor then returns a plain ``socket.socket``.  Other families than
AF_INET, AF_INET6, AF_PACKET and AF_NETLINK raise ``OSError(EAFNOSUPPORT)``.

The module mirrors the stdlib's names that ``lkl.patch()`` replaces
(``__implements__``); name resolution goes to ``lkl.resolver`` when it
exists, and is numeric-only (plus "localhost") otherwise: no lookup ever
reaches the host's resolver.  All of it uses the running kernel.
"""

from __future__ import annotations

import _socket
import contextlib
import errno as _errno
import importlib
import io
import os
import socket as _std
import weakref
from collections.abc import Iterable
from typing import Any

from lkl import _lkl
from lkl._socket import Socket as _LklSocket

__all__ = [
    "socket",
    "create_connection",
    "create_server",
    "fromfd",
    "close",
    "getaddrinfo",
    "gethostbyname",
    "gethostbyname_ex",
    "gethostbyaddr",
    "getnameinfo",
    "gethostname",
    "sethostname",
    "is_lkl_fd",
    "lkl_socket_of",
    "LKL_FAMILIES",
]

#: The names of the standard library's ``socket`` module this module replaces.
__implements__ = [
    "socket",
    "create_connection",
    "create_server",
    "fromfd",
    "close",
    "getaddrinfo",
    "gethostbyname",
    "gethostbyname_ex",
    "gethostbyaddr",
    "getnameinfo",
    "gethostname",
    "sethostname",
]

#: The families whose sockets are made in the kernel.
LKL_FAMILIES = frozenset({_std.AF_INET, _std.AF_INET6, _std.AF_PACKET, _std.AF_NETLINK})

# The classes as they were when lkl was imported (patching replaces the
# module's attributes, never these).
_StdSocket = _std.socket
_std_fromfd = _std.fromfd
_std_getaddrinfo = _std.getaddrinfo
_std_getnameinfo = _std.getnameinfo
_std_close = _std.close
_GLOBAL_DEFAULT_TIMEOUT: Any = _std._GLOBAL_DEFAULT_TIMEOUT  # type: ignore[attr-defined]


# ---- host fd → kernel socket ------------------------------------------------

class _Entry:
    """A readiness endpoint's kernel socket.

    Held weakly while an object owns it, strongly once detach() gave it up (until an
    object adopts it).
    """

    __slots__ = ("detached", "ref")

    def __init__(self, sock: _LklSocket, key: tuple[int, int]) -> None:
        def forget(_ref: Any) -> None:  # the socket went unclosed: drop the entry
            if _endpoints.get(key) is self:
                del _endpoints[key]

        self.ref: Any = weakref.ref(sock, forget)
        self.detached: _LklSocket | None = None

    def get(self) -> _LklSocket | None:
        sock = self.detached or self.ref()
        return sock if sock is not None and sock.kfd >= 0 else None


# Keyed by the endpoint's (st_dev, st_ino): every host fd that refers to it
# (a dup too) maps back to the kernel socket; a stale fd number cannot.
_endpoints: dict[tuple[int, int], _Entry] = {}


def _key(fd: int) -> tuple[int, int] | None:
    try:
        st = os.fstat(fd)
    except (OSError, ValueError, OverflowError):
        return None
    return st.st_dev, st.st_ino


def lkl_socket_of(fd: int) -> _LklSocket | None:
    """The ``lkl.Socket`` whose readiness endpoint host fd ``fd`` is (or a dup of it).

    Or None for any other fd.
    """
    key = _key(fd)
    entry = _endpoints.get(key) if key is not None else None
    return entry.get() if entry is not None else None


def is_lkl_fd(fd: int) -> bool:
    """True if host fd ``fd`` is the readiness endpoint of a kernel socket."""
    return lkl_socket_of(fd) is not None


# ---- the socket class -----------------------------------------------------------

class _SocketType(type):
    """The metaclass of lkl.socket.socket: any stdlib socket is an instance.

    Under the patch ``socket.socket`` is lkl.socket.socket, and the host's
    sockets (AF_UNIX, socketpair, ones made before the patch) must still
    pass ``isinstance(s, socket.socket)``, as they do unpatched.
    """

    def __instancecheck__(cls, obj: Any) -> bool:
        if cls is socket:
            return isinstance(obj, _StdSocket)
        return type.__instancecheck__(cls, obj)


def _dead_socket() -> _LklSocket:
    """A closed lkl.Socket (kfd -1): what a detached object keeps."""
    dead: _LklSocket = _LklSocket.__new__(_LklSocket)
    dead._io_refs = 0
    dead._closed = True
    return dead


class socket(_StdSocket, metaclass=_SocketType):
    """A ``socket.socket`` whose socket is in the lkl kernel.

    ``socket(family=AF_INET, type=SOCK_STREAM, proto=0, fileno=None)``, as
    the stdlib's.  With ``fileno`` the readiness fd of an lkl socket (or a
    dup of one), the object wraps that kernel socket and that fd: a
    detached one is taken over, a live one is shared (as two stdlib objects
    on one fd: closing either closes it).  Any other ``fileno``, and
    ``AF_UNIX``, give a host ``socket.socket``.

    Timeouts and non-blocking mode behave as the stdlib's; blocking calls
    release the GIL.  ``sendfile`` copies through ``send``.
    """

    __slots__ = ("_sock",)
    _sock: _LklSocket

    def __new__(cls, family: int = -1, type: int = -1, proto: int = -1,
                fileno: int | None = None) -> Any:
        """Make the kernel socket (or a host socket, see the class)."""
        if fileno is not None:
            inner = _adopt(fileno)
            if inner is None:
                return _host_socket(cls, family, type, proto, fileno)
            return cls._wrap(inner, fileno, (family, type, proto))
        family = _std.AF_INET if family == -1 else family
        if family == _std.AF_UNIX:
            return _host_socket(cls, family, type, proto, None)
        if family not in LKL_FAMILIES:
            raise OSError(_errno.EAFNOSUPPORT,
                          f"{os.strerror(_errno.EAFNOSUPPORT)}: family {family!r} "
                          "is not served by the lkl kernel (AF_INET, AF_INET6, "
                          "AF_PACKET, AF_NETLINK; AF_UNIX stays on the host)")
        type = _std.SOCK_STREAM if type == -1 else type
        proto = 0 if proto == -1 else proto
        return cls._wrap(_LklSocket(int(family), int(type), int(proto)))

    def __init__(self, family: int = -1, type: int = -1, proto: int = -1,
                 fileno: int | None = None) -> None:
        pass  # __new__ did it all

    @classmethod
    def _wrap(cls, inner: _LklSocket, fileno: int | None = None,
              given: tuple[int, int, int] = (-1, -1, -1)) -> socket:
        """An object of ``cls`` on kernel socket ``inner``.

        Its host fd is a dup of the endpoint, or ``fileno`` itself (made to
        refer to it); ``given`` family, type and proto (-1: the socket's)
        are what the object reports, as the stdlib's fileno= form does.
        """
        self: socket = _socket.socket.__new__(cls)
        try:
            endpoint = inner.fileno()
            key = _key(endpoint)
            assert key is not None
            # A given fileno refers to the endpoint already (found by it).
            fd = os.dup(endpoint) if fileno is None else fileno
            family, kind, proto = (inner.family if given[0] == -1 else given[0],
                                   inner.type if given[1] == -1 else given[1],
                                   inner.proto if given[2] == -1 else given[2])
            _socket.socket.__init__(self, family, kind, proto, fd)
            # The host fd's O_NONBLOCK follows the timeout, as the stdlib's.
            _socket.socket.settimeout(self, inner.gettimeout())
        except BaseException:
            if fileno is None:
                inner.close()
            raise
        self._io_refs = 0  # type: ignore[attr-defined]
        self._closed = False
        self._sock = inner
        entry = _endpoints.get(key)
        if entry is None or entry.get() is not inner:
            entry = _endpoints[key] = _Entry(inner, key)
        entry.detached = None
        return self

    # ---- what the kernel socket is -------------------------------------------

    @property
    def lkl_socket(self) -> _LklSocket:
        """The ``lkl.Socket`` this object drives."""
        return self._sock

    @property
    def kfd(self) -> int:
        """The kernel's fd number of the socket (-1 once closed)."""
        return self._sock.kfd

    def fileno(self) -> int:
        """The host fd that mirrors the kernel socket's readiness (-1 once closed).

        OSError if the readiness poller stopped.
        """
        if _lkl.poller_error():
            self._sock.fileno()  # raises the poller's error
        return _socket.socket.fileno(self)

    # ---- lifetime --------------------------------------------------------------

    def _real_close(self, _ss: Any = _socket.socket) -> None:
        sock = self._sock
        key = _key(_ss.fileno(self))
        if key is not None and (entry := _endpoints.get(key)) is not None \
                and entry.get() is sock:
            del _endpoints[key]
        try:
            sock.close()
        finally:
            _ss.close(self)

    def detach(self) -> int:
        """Give up the socket without closing it.

        Returns its host fd, which ``socket(fileno=fd)`` turns back into a socket on the
        same kernel socket (as the stdlib's detach and fileno= pair).
        """
        self._closed = True
        key = _key(_socket.socket.fileno(self))
        fd = _socket.socket.detach(self)
        sock, self._sock = self._sock, _dead_socket()
        if key is not None and sock.kfd >= 0:
            entry = _endpoints.get(key)
            if entry is None or entry.get() is not sock:
                entry = _endpoints[key] = _Entry(sock, key)
            entry.detached = sock
        return fd

    def dup(self) -> socket:
        """A new socket object on the same kernel socket (a new kernel fd)."""
        if isinstance(self._sock, _HostCalls):
            return type(self)(self.family, self.type, self.proto,
                              fileno=os.dup(_socket.socket.fileno(self)))
        twin = type(self)._wrap(self._sock.dup())
        if type(self) is not socket:  # a subclass's __init__ runs, as the stdlib's dup
            twin.__init__(self.family, self.type, self.proto, twin.fileno())  # type: ignore[misc]
        return twin

    def accept(self) -> tuple[socket, Any]:
        """Accept a connection.

        ``(socket, address)`` with a socket of this class (blocking unless a default
        timeout is set, as the stdlib's).
        """
        if isinstance(self._sock, _HostCalls):
            fd, address = _socket.socket._accept(self)  # type: ignore[attr-defined]
            conn = socket(self.family, self.type, self.proto, fileno=fd)
            if _std.getdefaulttimeout() is None and self.gettimeout():
                conn.setblocking(True)
            return conn, address
        inner, address = self._sock.accept()
        return socket._wrap(inner), address  # the base class, as the stdlib's accept

    def _accept(self) -> tuple[int, Any]:
        conn, address = self.accept()
        return conn.detach(), address

    # ---- timeouts -------------------------------------------------------------------

    @property  # type: ignore[override]
    def timeout(self) -> float | None:
        """The timeout in seconds (None: blocking)."""
        return self._sock.gettimeout()

    def settimeout(self, value: float | None) -> None:
        """As socket.socket.settimeout."""
        self._sock.settimeout(value)
        _socket.socket.settimeout(self, value)

    def gettimeout(self) -> float | None:
        """As socket.socket.gettimeout."""
        return self._sock.gettimeout()

    def setblocking(self, flag: bool) -> None:
        """As socket.socket.setblocking."""
        self._sock.setblocking(flag)
        _socket.socket.setblocking(self, flag)

    def getblocking(self) -> bool:
        """As socket.socket.getblocking."""
        return self._sock.getblocking()

    # ---- addresses, options, state --------------------------------------------------

    def bind(self, address: Any) -> None:
        """As socket.socket.bind, in the kernel."""
        self._sock.bind(address)

    def listen(self, backlog: int | None = None) -> None:
        """As socket.socket.listen, in the kernel."""
        self._sock.listen(backlog)

    def connect(self, address: Any) -> None:
        """As socket.socket.connect, in the kernel."""
        self._sock.connect(address)

    def connect_ex(self, address: Any) -> int:
        """As socket.socket.connect_ex, in the kernel."""
        return self._sock.connect_ex(address)

    def getsockname(self) -> Any:
        """As socket.socket.getsockname."""
        return self._sock.getsockname()

    def getpeername(self) -> Any:
        """As socket.socket.getpeername."""
        return self._sock.getpeername()

    def setsockopt(self, level: int, optname: int, value: Any,
                   optlen: int | None = None) -> None:
        """As socket.socket.setsockopt, on the kernel socket."""
        if optlen is None:
            self._sock.setsockopt(level, optname, value)
        else:
            self._sock.setsockopt(level, optname, value, optlen)

    def getsockopt(self, level: int, optname: int, buflen: int = 0) -> Any:
        """As socket.socket.getsockopt, on the kernel socket."""
        return self._sock.getsockopt(level, optname, buflen)

    def shutdown(self, how: int) -> None:
        """As socket.socket.shutdown, in the kernel."""
        self._sock.shutdown(how)

    # ---- data -------------------------------------------------------------------------

    def send(self, data: Any, flags: int = 0) -> int:
        """As socket.socket.send."""
        return self._sock.send(data, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        """As socket.socket.sendall."""
        self._sock.sendall(data, flags)

    def sendto(self, data: Any, *args: Any) -> int:
        """As socket.socket.sendto (data, address) or (data, flags, address)."""
        if len(args) not in (1, 2):
            raise TypeError(f"sendto() takes 2 or 3 arguments ({len(args) + 1} given)")
        return self._sock.sendto(data, *args)

    def sendmsg(self, buffers: Iterable[Any], ancdata: Iterable[Any] = (),
                flags: int = 0, address: Any = None) -> int:
        """As socket.socket.sendmsg."""
        return self._sock.sendmsg(buffers, ancdata, flags, address)

    def sendmsg_afalg(self, *args: Any, **kwargs: Any) -> int:
        """AF_ALG is not an lkl family: OSError(EAFNOSUPPORT)."""
        raise OSError(_errno.EAFNOSUPPORT, os.strerror(_errno.EAFNOSUPPORT))

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """As socket.socket.sendfile.

        By reading ``file`` and sending the bytes (the kernel socket is not a host fd
        for os.sendfile).
        """
        return self._sendfile_use_send(file, offset, count)  # type: ignore[attr-defined,no-any-return]

    def _sendfile_use_sendfile(self, file: Any, offset: int = 0,
                               count: int | None = None) -> int:
        # The stdlib's checks first, so bad arguments fail as they do there
        # (TypeError, ValueError, OverflowError, or giving up on a file that
        # is not one); then give up: os.sendfile would write into the host
        # readiness endpoint, never into the kernel socket.
        self._check_sendfile_params(file, offset, count)  # type: ignore[attr-defined]
        try:
            fileno = file.fileno()
        except (AttributeError, io.UnsupportedOperation) as err:
            raise _std._GiveupOnSendfile(err) from None  # type: ignore[attr-defined]
        try:
            os.fstat(fileno)
        except OSError as err:
            raise _std._GiveupOnSendfile(err) from None  # type: ignore[attr-defined]
        raise _std._GiveupOnSendfile(  # type: ignore[attr-defined]
            "os.sendfile() cannot reach a kernel socket")

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """As socket.socket.recv."""
        return self._sock.recv(bufsize, flags)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        """As socket.socket.recv_into."""
        return self._sock.recv_into(buffer, nbytes, flags)

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:
        """As socket.socket.recvfrom."""
        return self._sock.recvfrom(bufsize, flags)

    def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> tuple[int, Any]:
        """As socket.socket.recvfrom_into."""
        return self._sock.recvfrom_into(buffer, nbytes, flags)

    def recvmsg(self, bufsize: int, ancbufsize: int = 0, flags: int = 0) -> Any:
        """As socket.socket.recvmsg."""
        return self._sock.recvmsg(bufsize, ancbufsize, flags)

    def recvmsg_into(self, buffers: Iterable[Any], ancbufsize: int = 0,
                     flags: int = 0) -> tuple[int, list[Any], int, Any]:
        """As socket.socket.recvmsg_into: scatter into writable ``buffers``."""
        views = []
        for buf in buffers:
            view = memoryview(buf)
            if view.readonly:
                raise TypeError("recvmsg_into() argument 1 must be an iterable "
                                "of read-write bytes-like objects")
            views.append(view.cast("B"))
        total = sum(len(v) for v in views)
        data, anc, msg_flags, address = self._sock.recvmsg(total, ancbufsize, flags)
        done = 0
        for view in views:
            if done >= len(data):
                break
            n = min(len(view), len(data) - done)
            view[:n] = data[done:done + n]
            done += n
        return len(data), anc, msg_flags, address


class _HostCalls:
    """The kernel-socket calls of a host-mode object, done on its host fd.

    A subclass of lkl.socket.socket (one defined while the patch was on)
    made for AF_UNIX or on a host fd must be an instance of that subclass,
    yet a host socket: its ``_sock`` is this, which runs each call as the
    C-level ``_socket.socket`` method on the object itself.
    """

    __slots__ = ("_owner",)
    kfd = -1

    def __init__(self, owner: Any) -> None:
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        method = getattr(_socket.socket, name)
        owner = self._owner
        return lambda *args: method(owner, *args)

    def listen(self, backlog: int | None = None) -> None:
        if backlog is None:
            _socket.socket.listen(self._owner)
        else:
            _socket.socket.listen(self._owner, backlog)

    def fileno(self) -> int:
        return _socket.socket.fileno(self._owner)  # type: ignore[no-any-return]

    def close(self) -> None:
        pass  # _real_close closes the fd itself


def _host_socket(cls: Any, family: int, type: int, proto: int, fileno: int | None) -> Any:
    """A host socket for ``socket(...)``.

    The stdlib's class itself, or for a subclass an instance of it in host
    mode (see _HostCalls).
    """
    if cls is socket:
        return _StdSocket(family, type, proto, fileno)
    self = _socket.socket.__new__(cls)
    _StdSocket.__init__(self, family, type, proto, fileno)
    self._sock = _HostCalls(self)
    return self


def _adopt(fd: int) -> _LklSocket | None:
    """The kernel socket a ``fileno=fd`` construction takes.

    A detached one is taken over; a live one is shared with the object that
    owns it, as two stdlib objects on one fd share it (closing either closes
    it).  None if ``fd`` is not an lkl fd.
    """
    if isinstance(fd, bool) or not isinstance(fd, int):
        return None
    key = _key(fd)
    entry = _endpoints.get(key) if key is not None else None
    sock = entry.get() if entry is not None else None
    if entry is None or sock is None:
        return None
    entry.detached = None
    return sock


# ---- module functions ---------------------------------------------------------

def fromfd(fd: int, family: int, type: int, proto: int = 0) -> Any:
    """As socket.fromfd.

    For an lkl fd, a new socket on the same kernel socket (a duplicated kernel fd); for
    a host fd, the stdlib's result.
    """
    sock = lkl_socket_of(fd)
    if sock is None:
        return _std_fromfd(fd, family, type, proto)
    return socket._wrap(sock.dup())


def close(fd: int) -> None:
    """As socket.close: close host fd ``fd``.

    When ``fd`` is the readiness fd of a kernel socket (or a dup of it), the kernel
    socket is closed too, as closing a host socket's fd ends that socket for every
    object on it; their later calls fail with EBADF.
    """
    sock = lkl_socket_of(fd) if isinstance(fd, int) and not isinstance(fd, bool) else None
    _std_close(fd)
    if sock is not None:
        sock.close()


def _socket_class() -> Any:
    """The class to make sockets with: lkl.socket's, or what replaced it on top.

    A test's mock of socket.socket is respected, as by the stdlib's helpers.
    """
    current = _std.socket
    return socket if current is _StdSocket else current


def create_connection(address: tuple[str, int], timeout: Any = _GLOBAL_DEFAULT_TIMEOUT,
                      source_address: Any = None, *, all_errors: bool = False) -> socket:
    """As socket.create_connection.

    Try each address of ``address`` in turn (resolved by this module's getaddrinfo) and
    return the first socket that connects, within ``timeout``.
    """
    host, port = address
    errors: list[OSError] = []
    cls = _socket_class()
    for family, kind, proto, _name, sockaddr in getaddrinfo(host, port, 0, _std.SOCK_STREAM):
        sock = None
        try:
            sock = cls(family, kind, proto)
            if timeout is not _GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            errors.clear()
            return sock
        except OSError as exc:
            errors.append(exc)
            if sock is not None:
                sock.close()
    if not errors:
        raise OSError("getaddrinfo returns an empty list")
    try:
        if all_errors:
            raise ExceptionGroup("create_connection failed", errors)  # noqa: F821
        raise errors[0]
    finally:
        errors.clear()


def create_server(address: tuple[str, int], *, family: int = _std.AF_INET,
                  backlog: int | None = None, reuse_port: bool = False,
                  dualstack_ipv6: bool = False) -> socket:
    """As socket.create_server.

    A listening kernel TCP socket bound to ``address`` (SO_REUSEADDR set; IPv4 and IPv6
    with ``dualstack_ipv6``).
    """
    if dualstack_ipv6 and family != _std.AF_INET6:
        raise ValueError("dualstack_ipv6 requires AF_INET6 family")
    sock = _socket_class()(family, _std.SOCK_STREAM)
    try:
        sock.setsockopt(_std.SOL_SOCKET, _std.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(_std.SOL_SOCKET, _std.SO_REUSEPORT, 1)
        if family == _std.AF_INET6:
            sock.setsockopt(_std.IPPROTO_IPV6, _std.IPV6_V6ONLY, 0 if dualstack_ipv6 else 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise OSError(exc.errno, f"{exc.strerror} (while attempting to bind on "
                          f"address {address!r})") from None
        sock.listen(backlog)
        return sock
    except BaseException:
        sock.close()
        raise


def _kernel() -> Any:
    from lkl import _kernel

    k = _kernel.kernel()
    if k is None:
        raise _kernel.KernelError("no lkl kernel is running (lkl.boot() first)")
    return k


def _resolver() -> Any:
    """lkl.resolver if it exists (names through the kernel), else None."""
    try:
        # By sys.modules, not the package attribute (see lkl.patch._lkl_ssl).
        return importlib.import_module("lkl.resolver")
    except ImportError:
        return None


def _localhost(host: Any) -> bool:
    return isinstance(host, (str, bytes)) and (
        host.lower() if isinstance(host, str) else host.decode(errors="replace").lower()
    ) in ("localhost", "localhost.localdomain", "ip6-localhost")


def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0,
                flags: int = 0) -> list[tuple[Any, Any, int, str, Any]]:
    """As socket.getaddrinfo, resolved for the lkl kernel.

    By lkl.resolver when present, otherwise numeric addresses and "localhost" only
    (socket.gaierror EAI_NONAME for other names; the host's resolver is never asked).
    """
    resolver = _resolver()
    if resolver is not None:
        return resolver.getaddrinfo(_kernel(), host, port, family, type, proto, flags)  # type: ignore[no-any-return]
    if _localhost(host):
        out = []
        for addr in ("::1", "127.0.0.1"):
            with contextlib.suppress(_std.gaierror):
                out += _std_getaddrinfo(addr, port, family, type, proto,
                                        flags | _std.AI_NUMERICHOST)
        if not out:
            raise _std.gaierror(_std.EAI_FAMILY, "ai_family not supported")
        return out
    try:
        return _std_getaddrinfo(host, port, family, type, proto, flags | _std.AI_NUMERICHOST)
    except _std.gaierror as exc:
        if exc.errno == _std.EAI_NONAME:
            raise _std.gaierror(_std.EAI_NONAME, "Name or service not known "
                                "(numeric addresses only: lkl.resolver is not available)") from None
        raise


def gethostbyname(hostname: str) -> str:
    """As socket.gethostbyname, resolved for the lkl kernel."""
    resolver = _resolver()
    if resolver is not None:
        return resolver.gethostbyname(_kernel(), hostname)  # type: ignore[no-any-return]
    return getaddrinfo(hostname, None, _std.AF_INET)[0][4][0]  # type: ignore[no-any-return]


def gethostbyname_ex(hostname: str) -> tuple[str, list[str], list[str]]:
    """As socket.gethostbyname_ex, resolved for the lkl kernel."""
    resolver = _resolver()
    if resolver is not None:
        return resolver.gethostbyname_ex(_kernel(), hostname)  # type: ignore[no-any-return]
    addrs = []
    for *_, sockaddr in getaddrinfo(hostname, None, _std.AF_INET, _std.SOCK_STREAM):
        if sockaddr[0] not in addrs:
            addrs.append(sockaddr[0])
    return hostname, [], addrs


def gethostbyaddr(ip_address: str) -> tuple[str, list[str], list[str]]:
    """As socket.gethostbyaddr.

    Lkl.resolver's if it has one; otherwise the loopback addresses are "localhost" and
    others raise socket.herror.
    """
    resolver = _resolver()
    if resolver is not None and hasattr(resolver, "gethostbyaddr"):
        return resolver.gethostbyaddr(_kernel(), ip_address)  # type: ignore[no-any-return]
    if _localhost(ip_address) or ip_address in ("127.0.0.1", "::1"):
        return "localhost", [], ["127.0.0.1" if ":" not in ip_address else "::1"]
    raise _std.herror(1, "Unknown host")


def getnameinfo(sockaddr: Any, flags: int) -> tuple[str, str]:
    """As socket.getnameinfo, for the lkl kernel.

    By lkl.resolver when present, otherwise numeric hosts (no reverse lookup on the
    host).
    """
    resolver = _resolver()
    try:
        if resolver is not None:
            return resolver.getnameinfo(_kernel(), sockaddr, flags)  # type: ignore[no-any-return]
        return _std_getnameinfo(sockaddr, flags | _std.NI_NUMERICHOST)  # type: ignore[no-any-return]
    except Exception:
        # The traceback keeps this frame: it must not keep the arguments
        # alive (the stdlib's C function holds no reference to them).
        del sockaddr, flags
        raise


def gethostname() -> str:
    """The kernel's host name (its uname nodename)."""
    return _kernel().uname().nodename  # type: ignore[no-any-return]


def sethostname(name: str | bytes) -> None:
    """Set the kernel's host name (its uname nodename; the host's is untouched)."""
    raw = name.encode() if isinstance(name, str) else bytes(name)
    _kernel().syscall("sethostname", raw, len(raw))


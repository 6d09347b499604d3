"""An asyncio event loop that waits in the kernel: lkl.asyncio.EventLoop.

The stock selector loop waits in the host's epoll, so an lkl socket needs
a host fd that a poller thread sets for it: every readiness event costs
host thread hops.  ``EventLoop`` is ``asyncio.SelectorEventLoop`` with a
selector of its own, :class:`KernelSelector`, that

- registers lkl sockets (``lkl.Socket`` objects) by their kernel fd in a
  kernel epoll, and blocks the loop's thread in the kernel's
  ``epoll_pwait2`` (with direct syscalls the wait runs on the loop's own
  thread: a packet that makes a socket ready wakes the loop directly);
- registers every other fd (the loop's self-pipe, the signal wakeup fd,
  subprocess pipes, the user's host sockets) in a host epoll, watched by
  one small host thread that sets a kernel eventfd in the kernel epoll
  when one of them is ready.

Everything else is stock asyncio (the same API, tasks, streams, SSL,
subprocesses, signals); lkl sockets get ``lkl.asyncio``'s transport.
``call_soon_threadsafe`` wakes the loop through a kernel eventfd.

After the kernel halts, the wait raises ``lkl.KernelError`` once; from
then on the loop waits on its host fds only, and reports each lkl
registration ready once so that its callback meets the KernelError too.
"""

from __future__ import annotations

import asyncio as _asyncio
import collections.abc
import contextlib
import errno
import functools
import select
import selectors
import signal
import threading
from collections.abc import Callable, Mapping
from typing import Any

from lkl import _lkl
from lkl._lkl import KernelError

__all__ = ["EventLoop", "EventLoopPolicy", "KernelSelector", "is_lkl_socket", "kernel_socket",
           "new_event_loop", "run"]

_EPOLL_CTL_ADD, _EPOLL_CTL_DEL, _EPOLL_CTL_MOD = 1, 2, 3
# Pseudo fd numbers of lkl keys in get_map(): above every host fd.
_LKL_FD_BASE = 1 << 31


def kernel_socket(obj: object) -> Any:
    """The kernel socket behind ``obj``, or None.

    ``obj`` itself if it is an ``lkl.Socket``; else its ``lkl_socket`` (an
    ``lkl.socket.socket``, what ``lkl.patch()`` makes) or ``_lkl_socket``
    attribute (the hook for other wrappers) if that is one.  Int fds are
    host fds.
    """
    if isinstance(obj, _lkl._SocketBase):
        return obj
    if isinstance(obj, int):
        return None
    for name in ("lkl_socket", "_lkl_socket"):
        inner = getattr(obj, name, None)
        if isinstance(inner, _lkl._SocketBase):
            return inner
    return None


def is_lkl_socket(obj: object) -> bool:
    """True for a socket of the kernel's stack (see :func:`kernel_socket`)."""
    return kernel_socket(obj) is not None


def _unregistered(fileobj: Any) -> str:
    # Not repr(): asyncio probes get_key() before each registration, and an
    # lkl socket's repr asks the kernel for its addresses.
    return f"kernel socket {kernel_socket(fileobj).kfd} is not registered"


def _epoll_events(events: int) -> int:
    bits = 0
    if events & selectors.EVENT_READ:
        bits |= select.EPOLLIN
    if events & selectors.EVENT_WRITE:
        bits |= select.EPOLLOUT
    return bits


def _selector_events(bits: int) -> int:
    # As the stdlib's EpollSelector: an error or hang-up is both.
    events = 0
    if bits & ~select.EPOLLIN:
        events |= selectors.EVENT_WRITE
    if bits & ~select.EPOLLOUT:
        events |= selectors.EVENT_READ
    return events


class _Map(Mapping[Any, selectors.SelectorKey]):
    def __init__(self, selector: KernelSelector) -> None:
        self._selector = selector

    def __len__(self) -> int:
        return len(self._selector._lkl_keys) + len(self._selector._host.get_map())

    def __getitem__(self, fileobj: Any) -> selectors.SelectorKey:
        try:
            return self._selector.get_key(fileobj)
        except (KeyError, ValueError):
            raise KeyError("not registered") from None

    def __iter__(self) -> collections.abc.Iterator[Any]:
        yield from (key.fd for key in self._selector._lkl_keys.values())
        yield from self._selector._host.get_map()


class KernelSelector(selectors.BaseSelector):
    """A selector for lkl sockets and host fds that waits in the kernel.

    lkl sockets (see :func:`kernel_socket`) go to a kernel epoll by kernel
    fd (their keys' ``fd`` is ``2**31 + kfd``, so it never equals a host
    fd); anything else with a ``fileno()`` or an int fd goes to a host
    ``selectors.EpollSelector``.  An int that is an lkl socket's
    ``fileno()`` (its host endpoint) is a host fd here: it works, readable
    and writable as the socket is, but through the package's poller
    thread; register the socket object to wait in the kernel.
    ``select()`` blocks in the kernel; a host thread turns host readiness
    into a kernel eventfd event.  It needs a
    running kernel (KernelError otherwise).
    """

    def __init__(self) -> None:
        self._kep = _lkl._KernelEpoll()
        self._host = selectors.EpollSelector()
        self._lkl_keys: dict[int, selectors.SelectorKey] = {}
        # id(socket) -> kfd it is filed under (it may have closed since).
        self._lkl_ids: dict[int, int] = {}
        self._waiter: Any = None
        self._waiter_thread: threading.Thread | None = None
        self._resume = False
        self._dead = False
        self._dead_reported = False
        self._closed = False

    # ---- registration ------------------------------------------------------

    def _kfd(self, fileobj: Any) -> int:
        return kernel_socket(fileobj).kfd  # type: ignore[no-any-return]

    def _lkl_lookup(self, fileobj: Any) -> int | None:
        """The kfd an lkl key of ``fileobj`` is filed under, or None."""
        return self._lkl_ids.get(id(fileobj))

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        """Register ``fileobj`` for ``events`` (EVENT_READ | EVENT_WRITE)."""
        if not events or events & ~(selectors.EVENT_READ | selectors.EVENT_WRITE):
            raise ValueError(f"Invalid events: {events!r}")
        if not is_lkl_socket(fileobj):
            key = self._host.register(fileobj, events, data)  # type: ignore[arg-type]
            self._start_waiter()
            return key
        kfd = self._kfd(fileobj)
        if kfd < 0:
            raise ValueError(f"Invalid file object: {fileobj!r}")
        old = self._lkl_keys.get(kfd)
        if old is not None:
            old_sock: Any = old.fileobj
            if old_sock is fileobj or self._kfd(old_sock) == kfd:
                raise KeyError(f"kernel fd {kfd} is already registered")
            # The old socket closed without unregistering; its kfd was reused.
            del self._lkl_keys[kfd]
            self._lkl_ids.pop(id(old_sock), None)
            self._ctl(_EPOLL_CTL_DEL, kfd, 0)
        key = selectors.SelectorKey(fileobj, _LKL_FD_BASE + kfd, events, data)
        if not self._dead:
            try:
                self._kep.ctl(_EPOLL_CTL_ADD, kfd, _epoll_events(events))
            except FileExistsError:
                self._kep.ctl(_EPOLL_CTL_MOD, kfd, _epoll_events(events))
        self._lkl_keys[kfd] = key
        self._lkl_ids[id(fileobj)] = kfd
        return key

    def _ctl(self, op: int, kfd: int, events: int) -> None:
        if self._dead:
            return
        try:
            self._kep.ctl(op, kfd, events)
        except KernelError:
            self._dead = True
        except OSError as exc:
            # A socket closed before it was unregistered left the epoll
            # with its file: nothing to delete.
            if op != _EPOLL_CTL_DEL or exc.errno not in (errno.ENOENT, errno.EBADF):
                raise

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        """Forget ``fileobj``; its key."""
        if not is_lkl_socket(fileobj):
            return self._host.unregister(fileobj)
        kfd = self._lkl_lookup(fileobj)
        if kfd is None:
            raise KeyError(_unregistered(fileobj))
        key = self._lkl_keys.pop(kfd)
        del self._lkl_ids[id(fileobj)]
        if self._kfd(fileobj) == kfd:
            self._ctl(_EPOLL_CTL_DEL, kfd, 0)
        return key

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        """Change the events or data of a registered ``fileobj``."""
        if not is_lkl_socket(fileobj):
            return self._host.modify(fileobj, events, data)
        kfd = self._lkl_lookup(fileobj)
        if kfd is None:
            raise KeyError(_unregistered(fileobj))
        if not events or events & ~(selectors.EVENT_READ | selectors.EVENT_WRITE):
            raise ValueError(f"Invalid events: {events!r}")
        old = self._lkl_keys[kfd]
        if events != old.events and self._kfd(fileobj) == kfd:
            self._ctl(_EPOLL_CTL_MOD, kfd, _epoll_events(events))
        key = old._replace(events=events, data=data)
        self._lkl_keys[kfd] = key
        return key

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        """The key of a registered ``fileobj`` (KeyError if none)."""
        if not is_lkl_socket(fileobj):
            return self._host.get_key(fileobj)
        kfd = self._lkl_lookup(fileobj)
        if kfd is None:
            raise KeyError(_unregistered(fileobj))
        return self._lkl_keys[kfd]

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        """Every key, by fd (lkl keys by their pseudo fd)."""
        return _Map(self)

    # ---- waiting -----------------------------------------------------------

    def _start_waiter(self) -> None:
        if self._waiter is not None or self._dead or self._closed:
            return
        self._waiter = _lkl._HostWaiter(self._host.fileno(), self._kep.host_efd)
        self._waiter_thread = threading.Thread(
            target=self._waiter.run, name="lkl-asyncio-host-fds", daemon=True)
        self._waiter_thread.start()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        """Wait up to ``timeout`` seconds (None: forever) in the kernel."""
        if self._resume:
            self._resume = False
            self._waiter.resume()
        if self._dead:
            return self._select_dead(timeout)
        wait = -1.0 if timeout is None else max(float(timeout), 0.0)
        try:
            events = self._kep.wait(wait)
        except KernelError:
            self._dead = True
            raise
        ready: list[tuple[selectors.SelectorKey, int]] = []
        host = False
        for token, bits in events:
            if token == _lkl.EPOLL_HOST_TOKEN:
                host = True
                continue
            key = self._lkl_keys.get(token)
            if key is not None:
                mask = _selector_events(bits) & key.events
                if mask:
                    ready.append((key, mask))
        if host:
            ready.extend(self._host.select(0))
            self._resume = True  # once the callbacks ran
        return ready

    def _select_dead(self, timeout: float | None) -> list[tuple[selectors.SelectorKey, int]]:
        if not self._dead_reported and self._lkl_keys:
            self._dead_reported = True
            return [*self._host.select(0),
                    *((key, key.events) for key in self._lkl_keys.values())]
        return self._host.select(timeout)

    def wake(self) -> None:
        """Make select() return now (any thread)."""
        self._kep.wake()

    @property
    def dead(self) -> bool:
        """True once the kernel halted under this selector."""
        return self._dead

    def close(self) -> None:
        """Stop the host thread, close the epolls (harmless twice)."""
        if self._closed:
            return
        self._closed = True
        if self._waiter is not None:
            self._waiter.stop()
            if self._waiter_thread is not None:
                self._waiter_thread.join()
            self._waiter = None
        self._lkl_keys.clear()
        self._lkl_ids.clear()
        self._host.close()
        self._kep.close()


class EventLoop(_asyncio.SelectorEventLoop):
    """asyncio's selector event loop waiting in the kernel (see the module).

    It serves host fds and sockets as the stock loop does, and lkl sockets
    (``loop.add_reader(lkl_socket, ...)``, ``sock_recv``/``sock_sendall``/
    ``sock_connect``/``sock_accept``, ``create_connection(sock=...)``,
    ``create_server(sock=...)`` with or without ``ssl``, ``start_tls``)
    without any host fd.  Needs a running kernel (``lkl.boot()``).
    """

    _selector: KernelSelector
    _csock: Any
    _signal_handlers: dict[int, Any]

    def __init__(self) -> None:
        super().__init__(KernelSelector())
        self._own_wakeup_fd = False

    # ---- waking ------------------------------------------------------------

    def _write_to_self(self) -> None:
        selector = self._selector
        if selector is not None and not selector.dead and not selector._closed:
            try:
                selector.wake()
                return
            except (KernelError, OSError):
                pass
        super()._write_to_self()  # type: ignore[misc]

    def run_forever(self) -> None:
        """Run until stop().

        On the main thread a signal (Ctrl-C) wakes the kernel wait through
        the self-pipe, as EINTR wakes the stock loop's wait.
        """
        self._claim_wakeup_fd()
        try:
            super().run_forever()
        finally:
            self._release_wakeup_fd()

    def _claim_wakeup_fd(self) -> None:
        if threading.current_thread() is not threading.main_thread() or self._csock is None:
            return
        fd = self._csock.fileno()
        try:
            old = signal.set_wakeup_fd(fd, warn_on_full_buffer=False)
        except ValueError:
            return
        if old not in (-1, fd):
            signal.set_wakeup_fd(old)  # someone else's: keep it
            return
        self._own_wakeup_fd = old == -1

    def _release_wakeup_fd(self) -> None:
        if self._own_wakeup_fd and not self._signal_handlers:
            self._own_wakeup_fd = False
            with contextlib.suppress(ValueError):
                signal.set_wakeup_fd(-1)

    def remove_signal_handler(self, sig: int) -> bool:
        """As the stock loop's, keeping the wakeup fd while running."""
        removed = super().remove_signal_handler(sig)
        if self.is_running() and not self._signal_handlers:
            self._claim_wakeup_fd()
        return removed

    # ---- lkl sockets in the stock machinery --------------------------------

    def _ensure_fd_no_transport(self, fd: Any) -> None:
        if not is_lkl_socket(fd):
            super()._ensure_fd_no_transport(fd)  # type: ignore[misc]

    def _make_socket_transport(self, sock: Any, protocol: Any, waiter: Any = None, *,
                               extra: Any = None, server: Any = None) -> Any:
        if not is_lkl_socket(sock):
            return super()._make_socket_transport(  # type: ignore[misc]
                sock, protocol, waiter, extra=extra, server=server)
        from lkl.asyncio.streams import LklTransport
        return LklTransport(self, sock, protocol, waiter, extra, server)

    def _make_ssl_transport(self, rawsock: Any, protocol: Any, sslcontext: Any,
                            waiter: Any = None, **kwargs: Any) -> Any:
        if not is_lkl_socket(rawsock):
            return super()._make_ssl_transport(  # type: ignore[misc]
                rawsock, protocol, sslcontext, waiter, **kwargs)
        from lkl.asyncio.streams import LklTransport, ssl_protocol
        extra, server = kwargs.pop("extra", None), kwargs.pop("server", None)
        proto = ssl_protocol(self, protocol, sslcontext, waiter, **kwargs)
        LklTransport(self, rawsock, proto, extra=extra, server=server)
        return proto._app_transport

    def _start_serving(self, protocol_factory: Any, sock: Any, *args: Any) -> None:
        if not is_lkl_socket(sock):
            super()._start_serving(protocol_factory, sock, *args)  # type: ignore[misc]
            return
        self._add_reader(sock, self._accept_connection,  # type: ignore[attr-defined]
                         protocol_factory, sock, *args)

    def _stop_serving(self, sock: Any) -> None:
        if not is_lkl_socket(sock):
            super()._stop_serving(sock)  # type: ignore[misc]
            return
        self._remove_reader(sock)  # type: ignore[attr-defined]
        sock.close()

    # ---- low-level socket calls on lkl sockets -----------------------------

    async def _lkl_wait(self, sock: Any, write: bool) -> None:
        """Wait once until the kernel reports ``sock`` readable (writable)."""
        add = self._add_writer if write else self._add_reader  # type: ignore[attr-defined]
        remove = self._remove_writer if write else self._remove_reader  # type: ignore[attr-defined]
        fut = self.create_future()
        add(sock, _set_result_unless_done, fut)
        try:
            await fut
        finally:
            remove(sock)

    async def _lkl_io(self, sock: Any, write: bool, attempt: Callable[[], Any]) -> Any:
        """Run ``attempt()`` until it does not raise BlockingIOError.

        Between tries it waits for the socket in the kernel epoll.
        """
        if sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")
        while True:
            try:
                return attempt()
            except (BlockingIOError, InterruptedError):
                pass
            await self._lkl_wait(sock, write)

    async def sock_recv(self, sock: Any, n: int) -> bytes:
        """Receive up to ``n`` bytes (lkl sockets wait in the kernel)."""
        if not is_lkl_socket(sock):
            return await super().sock_recv(sock, n)
        return await self._lkl_io(sock, False, functools.partial(sock.recv, n))  # type: ignore[no-any-return]

    async def sock_recv_into(self, sock: Any, buf: Any) -> int:
        """Receive into ``buf``; the byte count."""
        if not is_lkl_socket(sock):
            return await super().sock_recv_into(sock, buf)
        return await self._lkl_io(sock, False, functools.partial(sock.recv_into, buf))  # type: ignore[no-any-return]

    async def sock_recvfrom(self, sock: Any, bufsize: int) -> tuple[bytes, Any]:
        """Receive a datagram: (data, address)."""
        if not is_lkl_socket(sock):
            return await super().sock_recvfrom(sock, bufsize)
        return await self._lkl_io(sock, False, functools.partial(sock.recvfrom, bufsize))  # type: ignore[no-any-return]

    async def sock_recvfrom_into(self, sock: Any, buf: Any, nbytes: int = 0) -> tuple[int, Any]:
        """Receive a datagram into ``buf``: (nbytes, address)."""
        if not is_lkl_socket(sock):
            return await super().sock_recvfrom_into(sock, buf, nbytes)
        return await self._lkl_io(  # type: ignore[no-any-return]
            sock, False, functools.partial(sock.recvfrom_into, buf, nbytes))

    async def sock_sendall(self, sock: Any, data: Any) -> None:
        """Send all of ``data``."""
        if not is_lkl_socket(sock):
            return await super().sock_sendall(sock, data)
        view = memoryview(data).cast("B")
        sent = 0
        while sent < len(view):
            sent += await self._lkl_io(sock, True, functools.partial(sock.send, view[sent:]))
        return None

    async def sock_sendto(self, sock: Any, data: Any, address: Any) -> int:
        """Send a datagram to ``address``."""
        if not is_lkl_socket(sock):
            return await super().sock_sendto(sock, data, address)
        return await self._lkl_io(sock, True, functools.partial(sock.sendto, data, address))  # type: ignore[no-any-return]

    async def sock_connect(self, sock: Any, address: Any) -> None:
        """Connect (the address is given to the kernel as is: no resolver)."""
        if not is_lkl_socket(sock):
            return await super().sock_connect(sock, address)
        if sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")
        err = sock.connect_ex(address)
        while err in (errno.EINPROGRESS, errno.EALREADY, errno.EINTR):
            await self._lkl_wait(sock, True)
            err = sock.getsockopt(_lkl.constants["SOL_SOCKET"], _lkl.constants["SO_ERROR"])
        if err and err != errno.EISCONN:
            raise OSError(err, f"Connect call failed {address}")
        return None

    async def sock_accept(self, sock: Any) -> tuple[Any, Any]:
        """Accept a connection: (non-blocking socket, address)."""
        if not is_lkl_socket(sock):
            return await super().sock_accept(sock)
        conn, address = await self._lkl_io(sock, False, sock.accept)
        conn.setblocking(False)
        return conn, address


def _set_result_unless_done(fut: _asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class EventLoopPolicy(_asyncio.DefaultEventLoopPolicy):  # type: ignore[misc,valid-type]
    """The default policy, making :class:`EventLoop` loops.

    ``asyncio.set_event_loop_policy(lkl.asyncio.EventLoopPolicy())``.
    """

    _loop_factory = EventLoop


def new_event_loop() -> EventLoop:
    """A new :class:`EventLoop` (a kernel must be running)."""
    return EventLoop()


def run(main: Any, *, debug: bool | None = None) -> Any:
    """Run coroutine ``main`` on a new :class:`EventLoop`, like asyncio.run()."""
    if hasattr(_asyncio, "Runner"):
        with _asyncio.Runner(debug=debug, loop_factory=EventLoop) as runner:
            return runner.run(main)
    # Python 3.10: asyncio.run() makes its loop through the policy.
    old = _asyncio.get_event_loop_policy()
    _asyncio.set_event_loop_policy(EventLoopPolicy())
    try:
        return _asyncio.run(main, debug=bool(debug))
    finally:
        _asyncio.set_event_loop_policy(old)

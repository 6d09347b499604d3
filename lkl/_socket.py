"""lkl.Socket: a socket of the kernel's network stack with the stdlib API.

The kernel calls are in the extension (``lkl._lkl._SocketBase``); this
module adds what the standard library's ``socket.socket`` does in Python:
closing with live ``makefile`` objects, ``makefile`` itself, ``accept`` and
``dup`` returning ``Socket`` objects, ``repr`` and the context manager.
"""

from __future__ import annotations

import contextlib
import io
import socket as _hostsocket
import warnings
from typing import Any

from lkl import _lkl

__all__ = ["Socket"]


class Socket(_lkl._SocketBase):
    """A socket of the kernel's network stack.

    ``Socket(family=AF_INET, type=SOCK_STREAM, proto=0, kfd=None)`` makes a
    new kernel socket (or wraps kernel fd ``kfd``); ``Kernel.socket()`` is
    the usual spelling.  It has the standard library's socket methods with
    the same arguments, results and exceptions (bind, listen, accept,
    connect, connect_ex, send, sendall, recv, recv_into, sendto, recvfrom,
    recvfrom_into, sendmsg, recvmsg, shutdown, close, detach, setsockopt,
    getsockopt, getsockname, getpeername, setblocking, getblocking,
    settimeout, gettimeout, makefile, fileno) and the attributes ``family``,
    ``type`` and ``proto`` (plain ints: the kernel's values).  TCP sockets
    also have ``recv_zerocopy`` (the received bytes read in place, as
    views of the kernel's skbs held until released; see lkl.zerocopy).

    ``kfd`` is the kernel's fd number; ``fileno()`` is a host fd for
    select/selectors/asyncio, readable whenever the kernel socket is (see
    its docstring).  Addresses are spelled as in the standard library;
    host names other than "localhost" are not resolved (socket.gaierror).
    Every blocking call releases the GIL.  Waits with a timeout return to
    Python at least every 0.25 s to run signal handlers; a call blocking
    with timeout None waits in the kernel and cannot be interrupted by a
    signal (KeyboardInterrupt comes when it returns).  After the kernel
    halts, calls raise lkl.KernelError, an OSError with errno ENODEV
    (threads blocked in the kernel are released with it, so ``except
    OSError:`` loops and socketserver end cleanly); ``close()`` still works
    (there is nothing left to close).
    """

    def __init__(
        self, family: int = -1, type: int = -1, proto: int = -1, kfd: int | None = None
    ) -> None:
        self._io_refs = 0
        self._closed = False
        super().__init__(family, type, proto, kfd)

    def __repr__(self) -> str:
        parts = [f"kfd={self.kfd}", f"family={self.family}", f"type={self.type}",
                 f"proto={self.proto}"]
        if self.kfd >= 0 and _lkl.is_running():
            for label, get in (("laddr", self.getsockname), ("raddr", self.getpeername)):
                with contextlib.suppress(OSError):
                    parts.append(f"{label}={get()!r}")
        closed = " [closed]" if self._closed else ""
        return f"<lkl.Socket{closed} {', '.join(parts)}>"

    def __enter__(self) -> Socket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_closed", True) or self.kfd < 0:
            return
        warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=2, source=self)
        self._close_kfd()

    def accept(self) -> tuple[Socket, Any]:
        """Accept a connection: ``(Socket, address)``.

        The new socket follows the standard library: it blocks unless a
        default timeout is set (socket.setdefaulttimeout).
        """
        kfd, address = self._accept()
        sock = type(self)(self.family, self.type, self.proto, kfd=kfd)
        if _hostsocket.getdefaulttimeout() is None and self.gettimeout():
            sock.setblocking(True)
        return sock, address

    def dup(self) -> Socket:
        """A new Socket for the same kernel socket (a duplicated kfd)."""
        sock = type(self)(self.family, self.type, self.proto, kfd=self._dup_kfd())
        sock.settimeout(self.gettimeout())
        return sock

    def makefile(
        self,
        mode: str = "r",
        buffering: int | None = None,
        *,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> Any:
        """A file object reading from and/or writing to the socket.

        As socket.socket.makefile(): ``mode`` is made of "r", "w" and "b";
        the socket stays open until the file objects are closed too.
        """
        if not set(mode) <= {"r", "w", "b"}:
            raise ValueError(f"invalid mode {mode!r} (only r, w, b allowed)")
        writing = "w" in mode
        reading = "r" in mode or not writing
        binary = "b" in mode
        rawmode = ("r" if reading else "") + ("w" if writing else "")
        raw = _hostsocket.SocketIO(self, rawmode)  # type: ignore[arg-type]
        self._io_refs += 1
        if buffering is None or buffering < 0:
            buffering = io.DEFAULT_BUFFER_SIZE
        if buffering == 0:
            if not binary:
                raise ValueError("unbuffered streams must be binary")
            return raw
        buffer: Any
        if reading and writing:
            buffer = io.BufferedRWPair(raw, raw, buffering)
        elif reading:
            buffer = io.BufferedReader(raw, buffering)
        else:
            buffer = io.BufferedWriter(raw, buffering)
        if binary:
            return buffer
        text = io.TextIOWrapper(buffer, io.text_encoding(encoding), errors, newline)
        text.mode = mode  # type: ignore[misc]
        return text

    def _decref_socketios(self) -> None:
        if self._io_refs > 0:
            self._io_refs -= 1
        if self._closed:
            self.close()

    def close(self) -> None:
        """Close the socket (once its makefile objects are closed too).

        Closing twice, or after the kernel halted, is harmless.
        """
        self._closed = True
        if self._io_refs <= 0:
            self._close_kfd()

    def detach(self) -> int:
        """Forget the kernel socket without closing it; return its kfd."""
        self._closed = True
        return super().detach()

"""Zero copy on lkl sockets: MSG_ZEROCOPY sends, and receives in place.

Receive: ``Socket.recv_zerocopy(max_bytes)`` returns a ``ZeroCopyRecv``
whose read-only memoryviews are the kernel's own skb data (kernel memory
is host memory): no copy into a Python buffer.  Release it (``release()``
or ``with``) soon: held bytes stay charged to the socket's receive buffer,
so they shrink the window the peer sees, and holding a receive buffer's
worth stalls the sender.  Holding data while waiting for more needs a
receive buffer larger than what is held plus one segment (``SO_RCVBUF``;
loopback's segments are 64 KiB).  See native/arch/lkl/kernel/zerocopy_rx.c.

Send:

Linux semantics (``Documentation/networking/msg_zerocopy.rst``):
``SO_ZEROCOPY`` on the socket, ``MSG_ZEROCOPY`` on ``send``/``sendmsg``,
and completions on the error queue (``recvmsg(MSG_ERRQUEUE)``): each a
range of send ids, with ``copied`` true where the kernel copied the
bytes after all.  The buffer must not change before its completion.

From any host buffer the send succeeds and completes as ``copied`` (the
kernel has no struct page for host memory; arch/lkl copies the bytes
into kernel pages while sending).  From ``Kernel.alloc_buffer(n)``
(kernel RAM mapped inside the kernel) the kernel references the pages
themselves: not copied unless the path copies (loopback does).
"""

from __future__ import annotations

import socket as _stdsocket
import struct
import time
from dataclasses import dataclass

from lkl import _lkl
from lkl._socket import Socket

__all__ = ["Completion", "KernelBuffer", "ZeroCopyRecv", "enable", "completions",
           "wait_completions"]

KernelBuffer = _lkl.KernelBuffer
ZeroCopyRecv = _lkl.ZeroCopyRecv

_C = _lkl.constants
SO_EE_ORIGIN_ZEROCOPY = 5
SO_EE_CODE_ZEROCOPY_COPIED = 1
# struct sock_extended_err: errno u32, origin u8, type u8, code u8, pad u8, info u32, data u32
_EE = struct.Struct("=IBBBBII")
_RECVERR = {(_stdsocket.SOL_IP, _C["IP_RECVERR"]), (_stdsocket.IPPROTO_IPV6, 25)}  # IPV6_RECVERR


@dataclass(frozen=True)
class Completion:
    """Sends ``first``..``last`` (ids counted from 0 per socket) are done."""

    first: int
    last: int
    copied: bool

    def __len__(self) -> int:
        return self.last - self.first + 1


def enable(sock: Socket) -> None:
    """Set ``SO_ZEROCOPY`` on ``sock`` (needed before ``MSG_ZEROCOPY``)."""
    sock.setsockopt(_stdsocket.SOL_SOCKET, _C["SO_ZEROCOPY"], 1)


def completions(sock: Socket) -> list[Completion]:
    """The completions waiting on ``sock``'s error queue now (never blocks).

    Switches ``sock`` to non-blocking for the call: not for a socket
    another thread uses at the same moment.
    """
    out: list[Completion] = []
    # The socket's own recvmsg waits for readability unless non-blocking.
    timeout = sock.gettimeout()
    sock.settimeout(0)
    try:
        while True:
            try:
                _, anc, _, _ = sock.recvmsg(0, 256, _C["MSG_ERRQUEUE"])
            except BlockingIOError:
                return out
            out += _parse(anc)
    finally:
        sock.settimeout(timeout)


def _parse(anc: list[tuple[int, int, bytes]]) -> list[Completion]:
    out: list[Completion] = []
    for level, kind, data in anc:
        if (level, kind) not in _RECVERR or len(data) < _EE.size:
            continue
        err, origin, _, code, _, info, last = _EE.unpack_from(data)
        if origin == SO_EE_ORIGIN_ZEROCOPY and err == 0:
            out.append(Completion(info, last, bool(code & SO_EE_CODE_ZEROCOPY_COPIED)))
    return out


def wait_completions(sock: Socket, count: int, timeout: float = 5.0) -> list[Completion]:
    """Collect completions until ``count`` sends are covered.

    Raises ``TimeoutError`` after ``timeout`` seconds (the error queue is
    polled every millisecond).
    """
    if count < 0 or timeout < 0:
        raise ValueError("count and timeout must not be negative")
    got: list[Completion] = []
    deadline = time.monotonic() + timeout
    while sum(len(c) for c in got) < count:
        got += completions(sock)
        if sum(len(c) for c in got) >= count:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{sum(len(c) for c in got)} of {count} zerocopy completions")
        time.sleep(0.001)
    return got

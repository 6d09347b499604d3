"""``Kernel.connections()``: the kernel's TCP and UDP sockets, as ``ss`` sees them.

The rows come from sock_diag (``NETLINK_SOCK_DIAG``, one
``inet_diag_req_v2`` dump per family and protocol) over a netlink socket
of the kernel itself, with ``INET_DIAG_INFO`` (``struct tcp_info``: rtt,
cwnd, retransmits, byte counters, delivery rate) and ``INET_DIAG_CONG``
(the congestion control's name) for TCP.
"""

from __future__ import annotations

import ipaddress
import itertools
import socket as _hostsocket
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lkl.net import rtnl

if TYPE_CHECKING:
    from lkl._kernel import Kernel

__all__ = ["Connection", "connections", "TCP_STATES"]

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
INET_DIAG_INFO, INET_DIAG_CONG = 2, 4
IPPROTO_TCP, IPPROTO_UDP = 6, 17

TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1",
              5: "FIN_WAIT2", 6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT",
              9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING", 12: "NEW_SYN_RECV"}
UDP_STATES = {1: "ESTABLISHED", 7: "UNCONN"}

_NLMSGHDR = struct.Struct("=IHHII")
# inet_diag_req_v2: family, protocol, ext, pad, states, then inet_diag_sockid.
_REQ = struct.Struct("=BBBxI")
_SOCKID = struct.Struct(">HH16s16s4x8x")  # sport, dport, src, dst (if, cookie unused)
_MSG = struct.Struct("=BBBB")           # family, state, timer, retrans
_MSG_TAIL = struct.Struct("=IIIII")     # expires, rqueue, wqueue, uid, inode
_SEQ = itertools.count(1)

# struct tcp_info offsets (linux/tcp.h) of the fields kept: (name, offset, format).
_TCP_INFO = (
    ("rto_us", 8, "I"), ("mss", 16, "I"), ("unacked", 24, "I"), ("lost", 32, "I"),
    ("rtt_us", 68, "I"), ("rttvar_us", 72, "I"), ("ssthresh", 76, "I"), ("cwnd", 80, "I"),
    ("retrans", 100, "I"), ("pacing_rate", 104, "Q"), ("bytes_acked", 120, "Q"),
    ("bytes_received", 128, "Q"), ("segs_out", 136, "I"), ("segs_in", 140, "I"),
    ("min_rtt_us", 148, "I"), ("delivery_rate", 160, "Q"), ("bytes_sent", 200, "Q"),
    ("bytes_retrans", 208, "Q"),
)


@dataclass
class Connection:
    """One socket of the kernel.

    ``family`` is ``socket.AF_INET`` or ``AF_INET6``; ``proto`` "tcp" or
    "udp"; ``state`` the kernel's state name ("ESTABLISHED", "LISTEN",
    "UNCONN"...); ``local``/``remote`` (address, port); ``recv_q``/``send_q``
    as ``ss`` shows them (for a listener: the accept queue and its limit).
    The TCP fields come from ``struct tcp_info`` (None for UDP): times in
    microseconds, ``cwnd``/``ssthresh`` in segments, rates in bytes/s.
    """

    family: int
    proto: str
    state: str
    local: tuple[str, int]
    remote: tuple[str, int]
    recv_q: int
    send_q: int
    inode: int
    uid: int
    rtt_us: int | None = None
    rttvar_us: int | None = None
    min_rtt_us: int | None = None
    rto_us: int | None = None
    cwnd: int | None = None
    ssthresh: int | None = None
    mss: int | None = None
    unacked: int | None = None
    lost: int | None = None
    retrans: int | None = None
    bytes_acked: int | None = None
    bytes_received: int | None = None
    bytes_sent: int | None = None
    bytes_retrans: int | None = None
    segs_out: int | None = None
    segs_in: int | None = None
    pacing_rate: int | None = None
    delivery_rate: int | None = None
    congestion: str | None = None


def _addr(family: int, raw: bytes) -> str:
    if family == _hostsocket.AF_INET:
        return str(ipaddress.IPv4Address(raw[:4]))
    return str(ipaddress.IPv6Address(raw[:16]))


def _parse(proto: str, buf: bytes, off: int, end: int) -> Connection:
    family, state, _timer, _retrans = _MSG.unpack_from(buf, off)
    sport, dport, src, dst = _SOCKID.unpack_from(buf, off + 4)
    _expires, rqueue, wqueue, uid, inode = _MSG_TAIL.unpack_from(buf, off + 52)
    names = TCP_STATES if proto == "tcp" else UDP_STATES
    conn = Connection(family, proto, names.get(state, str(state)),
                      (_addr(family, src), sport), (_addr(family, dst), dport),
                      rqueue, wqueue, inode, uid)
    pos = off + 72
    while pos + 4 <= end:
        alen, atype = struct.unpack_from("=HH", buf, pos)
        if alen < 4:
            break
        payload = buf[pos + 4:pos + alen]
        if atype == INET_DIAG_INFO and proto == "tcp":
            for name, at, fmt in _TCP_INFO:
                size = struct.calcsize(fmt)
                if at + size <= len(payload):
                    setattr(conn, name, struct.unpack_from("=" + fmt, payload, at)[0])
        elif atype == INET_DIAG_CONG:
            conn.congestion = payload.split(b"\0", 1)[0].decode("ascii", "replace")
        pos += (alen + 3) & ~3
    return conn


def _dump(k: Kernel, family: int, proto: int) -> list[Connection]:
    seq = next(_SEQ)
    ext = (1 << (INET_DIAG_INFO - 1)) | (1 << (INET_DIAG_CONG - 1)) if proto == IPPROTO_TCP else 0
    body = _REQ.pack(family, proto, ext, 0xFFFFFFFF) + bytes(48)
    msg = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY,
                         NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body
    name = "tcp" if proto == IPPROTO_TCP else "udp"
    out: list[Connection] = []
    for reply in rtnl.exchange(k, NETLINK_SOCK_DIAG, msg, seq, "sock_diag dump", reads=100000):
        length, mtype = _NLMSGHDR.unpack_from(reply)[:2]
        if mtype == SOCK_DIAG_BY_FAMILY and length >= _NLMSGHDR.size + 72:
            out.append(_parse(name, reply, _NLMSGHDR.size, length))
    return out


def connections(k: Kernel, tcp: bool = True, udp: bool = True) -> list[Connection]:
    """Every TCP (``tcp``) and UDP (``udp``) socket of kernel ``k``, IPv4 then IPv6."""
    rows: list[Connection] = []
    for proto, wanted in ((IPPROTO_TCP, tcp), (IPPROTO_UDP, udp)):
        if not wanted:
            continue
        for family in (_hostsocket.AF_INET, _hostsocket.AF_INET6):
            rows.extend(_dump(k, family, proto))
    return rows

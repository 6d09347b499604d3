"""The kernel's socket constants (its own values, from the lkl headers).

AF_*, SOCK_*, SOL_*, SO_*, IPPROTO_*, IP_*, IPV6_*, TCP_*, MSG_*, SHUT_*, SCM_* and
POLL* -- the values the kernel in this process uses, which ``lkl.Socket``
calls expect.  ``lkl`` re-exports them all.

Each name is written once, here: setup.py reads the declarations below and
generates the extension's table of them (build/python/lkl_constant_names.h,
compiled against the exported kernel headers, so the values are the
kernel's and a name the headers lack fails the build); this module then
takes the values from that table.
"""

from typing import TYPE_CHECKING

from lkl._lkl import constants as _values

AF_UNSPEC: int
AF_UNIX: int
AF_INET: int
AF_INET6: int
AF_NETLINK: int
AF_PACKET: int

SOCK_STREAM: int
SOCK_DGRAM: int
SOCK_RAW: int
SOCK_RDM: int
SOCK_SEQPACKET: int
SOCK_NONBLOCK: int
SOCK_CLOEXEC: int

SOMAXCONN: int

SOL_SOCKET: int
SOL_TCP: int
SOL_UDP: int
SOL_IPV6: int
SOL_IP: int

SO_DEBUG: int
SO_REUSEADDR: int
SO_TYPE: int
SO_ERROR: int
SO_DONTROUTE: int
SO_BROADCAST: int
SO_SNDBUF: int
SO_RCVBUF: int
SO_SNDBUFFORCE: int
SO_RCVBUFFORCE: int
SO_KEEPALIVE: int
SO_OOBINLINE: int
SO_NO_CHECK: int
SO_PRIORITY: int
SO_LINGER: int
SO_REUSEPORT: int
SO_PASSCRED: int
SO_PEERCRED: int
SO_RCVLOWAT: int
SO_SNDLOWAT: int
SO_RCVTIMEO: int
SO_SNDTIMEO: int
SO_BINDTODEVICE: int
SO_ACCEPTCONN: int
SO_PEERSEC: int
SO_PASSSEC: int
SO_MARK: int
SO_PROTOCOL: int
SO_DOMAIN: int
SO_TIMESTAMP: int
SO_TIMESTAMPNS: int
SO_RXQ_OVFL: int
SO_PEEK_OFF: int
SO_BUSY_POLL: int
SO_INCOMING_CPU: int
SO_COOKIE: int
SO_ZEROCOPY: int
SO_TXTIME: int
SO_BINDTOIFINDEX: int
SO_MAX_PACING_RATE: int

IPPROTO_IP: int
IPPROTO_ICMP: int
IPPROTO_IGMP: int
IPPROTO_TCP: int
IPPROTO_UDP: int
IPPROTO_IPV6: int
IPPROTO_ICMPV6: int
IPPROTO_RAW: int
IPPROTO_SCTP: int
IPPROTO_UDPLITE: int
IPPROTO_MPTCP: int

IP_TOS: int
IP_TTL: int
IP_HDRINCL: int
IP_OPTIONS: int
IP_PKTINFO: int
IP_RECVERR: int
IP_RECVTOS: int
IP_MTU_DISCOVER: int
IP_MTU: int
IP_MULTICAST_IF: int
IP_MULTICAST_TTL: int
IP_MULTICAST_LOOP: int
IP_ADD_MEMBERSHIP: int
IP_DROP_MEMBERSHIP: int

IPV6_V6ONLY: int
IPV6_UNICAST_HOPS: int
IPV6_MULTICAST_HOPS: int
IPV6_RECVPKTINFO: int
IPV6_TCLASS: int

TCP_NODELAY: int
TCP_MAXSEG: int
TCP_CORK: int
TCP_KEEPIDLE: int
TCP_KEEPINTVL: int
TCP_KEEPCNT: int
TCP_SYNCNT: int
TCP_LINGER2: int
TCP_DEFER_ACCEPT: int
TCP_WINDOW_CLAMP: int
TCP_INFO: int
TCP_QUICKACK: int
TCP_CONGESTION: int
TCP_USER_TIMEOUT: int
TCP_FASTOPEN: int
TCP_NOTSENT_LOWAT: int
TCP_INQ: int
TCP_TX_DELAY: int

MSG_OOB: int
MSG_PEEK: int
MSG_DONTROUTE: int
MSG_CTRUNC: int
MSG_TRUNC: int
MSG_DONTWAIT: int
MSG_EOR: int
MSG_WAITALL: int
MSG_CONFIRM: int
MSG_ERRQUEUE: int
MSG_NOSIGNAL: int
MSG_MORE: int
MSG_ZEROCOPY: int
MSG_FASTOPEN: int
MSG_CMSG_CLOEXEC: int

SHUT_RD: int
SHUT_WR: int
SHUT_RDWR: int

SCM_RIGHTS: int
SCM_CREDENTIALS: int

POLLIN: int

POLLPRI: int

POLLOUT: int

POLLERR: int

POLLHUP: int

POLLNVAL: int

POLLRDNORM: int

POLLRDBAND: int

POLLWRNORM: int

POLLWRBAND: int

POLLMSG: int

POLLRDHUP: int

if not TYPE_CHECKING:
    # Type checkers take the declarations above (all public names) as
    # what ``from lkl.constants import *`` brings.
    __all__ = list(__annotations__)
globals().update({_name: _values[_name] for _name in __annotations__})

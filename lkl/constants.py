"""The kernel's socket constants (its own values, from the lkl headers).

AF_*, SOCK_*, SOL_*, SO_*, IPPROTO_*, IP_*, IPV6_*, TCP_*, MSG_*, SHUT_*, SCM_* and
POLL* -- the values the kernel in this process uses, which ``lkl.Socket``
calls expect.  ``lkl`` re-exports them all.
"""

from typing import Final

from lkl._lkl import constants as _c

AF_UNSPEC: Final[int] = _c["AF_UNSPEC"]
AF_UNIX: Final[int] = _c["AF_UNIX"]
AF_INET: Final[int] = _c["AF_INET"]
AF_INET6: Final[int] = _c["AF_INET6"]
AF_NETLINK: Final[int] = _c["AF_NETLINK"]
AF_PACKET: Final[int] = _c["AF_PACKET"]

SOCK_STREAM: Final[int] = _c["SOCK_STREAM"]
SOCK_DGRAM: Final[int] = _c["SOCK_DGRAM"]
SOCK_RAW: Final[int] = _c["SOCK_RAW"]
SOCK_RDM: Final[int] = _c["SOCK_RDM"]
SOCK_SEQPACKET: Final[int] = _c["SOCK_SEQPACKET"]
SOCK_NONBLOCK: Final[int] = _c["SOCK_NONBLOCK"]
SOCK_CLOEXEC: Final[int] = _c["SOCK_CLOEXEC"]

SOMAXCONN: Final[int] = _c["SOMAXCONN"]

SOL_SOCKET: Final[int] = _c["SOL_SOCKET"]
SOL_TCP: Final[int] = _c["SOL_TCP"]
SOL_UDP: Final[int] = _c["SOL_UDP"]
SOL_IPV6: Final[int] = _c["SOL_IPV6"]
SOL_IP: Final[int] = _c["SOL_IP"]

SO_DEBUG: Final[int] = _c["SO_DEBUG"]
SO_REUSEADDR: Final[int] = _c["SO_REUSEADDR"]
SO_TYPE: Final[int] = _c["SO_TYPE"]
SO_ERROR: Final[int] = _c["SO_ERROR"]
SO_DONTROUTE: Final[int] = _c["SO_DONTROUTE"]
SO_BROADCAST: Final[int] = _c["SO_BROADCAST"]
SO_SNDBUF: Final[int] = _c["SO_SNDBUF"]
SO_RCVBUF: Final[int] = _c["SO_RCVBUF"]
SO_SNDBUFFORCE: Final[int] = _c["SO_SNDBUFFORCE"]
SO_RCVBUFFORCE: Final[int] = _c["SO_RCVBUFFORCE"]
SO_KEEPALIVE: Final[int] = _c["SO_KEEPALIVE"]
SO_OOBINLINE: Final[int] = _c["SO_OOBINLINE"]
SO_NO_CHECK: Final[int] = _c["SO_NO_CHECK"]
SO_PRIORITY: Final[int] = _c["SO_PRIORITY"]
SO_LINGER: Final[int] = _c["SO_LINGER"]
SO_REUSEPORT: Final[int] = _c["SO_REUSEPORT"]
SO_PASSCRED: Final[int] = _c["SO_PASSCRED"]
SO_PEERCRED: Final[int] = _c["SO_PEERCRED"]
SO_RCVLOWAT: Final[int] = _c["SO_RCVLOWAT"]
SO_SNDLOWAT: Final[int] = _c["SO_SNDLOWAT"]
SO_RCVTIMEO: Final[int] = _c["SO_RCVTIMEO"]
SO_SNDTIMEO: Final[int] = _c["SO_SNDTIMEO"]
SO_BINDTODEVICE: Final[int] = _c["SO_BINDTODEVICE"]
SO_ACCEPTCONN: Final[int] = _c["SO_ACCEPTCONN"]
SO_PEERSEC: Final[int] = _c["SO_PEERSEC"]
SO_PASSSEC: Final[int] = _c["SO_PASSSEC"]
SO_MARK: Final[int] = _c["SO_MARK"]
SO_PROTOCOL: Final[int] = _c["SO_PROTOCOL"]
SO_DOMAIN: Final[int] = _c["SO_DOMAIN"]
SO_TIMESTAMP: Final[int] = _c["SO_TIMESTAMP"]
SO_TIMESTAMPNS: Final[int] = _c["SO_TIMESTAMPNS"]
SO_RXQ_OVFL: Final[int] = _c["SO_RXQ_OVFL"]
SO_PEEK_OFF: Final[int] = _c["SO_PEEK_OFF"]
SO_BUSY_POLL: Final[int] = _c["SO_BUSY_POLL"]
SO_INCOMING_CPU: Final[int] = _c["SO_INCOMING_CPU"]
SO_COOKIE: Final[int] = _c["SO_COOKIE"]
SO_ZEROCOPY: Final[int] = _c["SO_ZEROCOPY"]
SO_TXTIME: Final[int] = _c["SO_TXTIME"]
SO_BINDTOIFINDEX: Final[int] = _c["SO_BINDTOIFINDEX"]
SO_MAX_PACING_RATE: Final[int] = _c["SO_MAX_PACING_RATE"]

IPPROTO_IP: Final[int] = _c["IPPROTO_IP"]
IPPROTO_ICMP: Final[int] = _c["IPPROTO_ICMP"]
IPPROTO_IGMP: Final[int] = _c["IPPROTO_IGMP"]
IPPROTO_TCP: Final[int] = _c["IPPROTO_TCP"]
IPPROTO_UDP: Final[int] = _c["IPPROTO_UDP"]
IPPROTO_IPV6: Final[int] = _c["IPPROTO_IPV6"]
IPPROTO_ICMPV6: Final[int] = _c["IPPROTO_ICMPV6"]
IPPROTO_RAW: Final[int] = _c["IPPROTO_RAW"]
IPPROTO_SCTP: Final[int] = _c["IPPROTO_SCTP"]
IPPROTO_UDPLITE: Final[int] = _c["IPPROTO_UDPLITE"]
IPPROTO_MPTCP: Final[int] = _c["IPPROTO_MPTCP"]

IP_TOS: Final[int] = _c["IP_TOS"]
IP_TTL: Final[int] = _c["IP_TTL"]
IP_HDRINCL: Final[int] = _c["IP_HDRINCL"]
IP_OPTIONS: Final[int] = _c["IP_OPTIONS"]
IP_PKTINFO: Final[int] = _c["IP_PKTINFO"]
IP_RECVERR: Final[int] = _c["IP_RECVERR"]
IP_RECVTOS: Final[int] = _c["IP_RECVTOS"]
IP_MTU_DISCOVER: Final[int] = _c["IP_MTU_DISCOVER"]
IP_MTU: Final[int] = _c["IP_MTU"]
IP_MULTICAST_IF: Final[int] = _c["IP_MULTICAST_IF"]
IP_MULTICAST_TTL: Final[int] = _c["IP_MULTICAST_TTL"]
IP_MULTICAST_LOOP: Final[int] = _c["IP_MULTICAST_LOOP"]
IP_ADD_MEMBERSHIP: Final[int] = _c["IP_ADD_MEMBERSHIP"]
IP_DROP_MEMBERSHIP: Final[int] = _c["IP_DROP_MEMBERSHIP"]

IPV6_V6ONLY: Final[int] = _c["IPV6_V6ONLY"]
IPV6_UNICAST_HOPS: Final[int] = _c["IPV6_UNICAST_HOPS"]
IPV6_MULTICAST_HOPS: Final[int] = _c["IPV6_MULTICAST_HOPS"]
IPV6_RECVPKTINFO: Final[int] = _c["IPV6_RECVPKTINFO"]
IPV6_TCLASS: Final[int] = _c["IPV6_TCLASS"]

TCP_NODELAY: Final[int] = _c["TCP_NODELAY"]
TCP_MAXSEG: Final[int] = _c["TCP_MAXSEG"]
TCP_CORK: Final[int] = _c["TCP_CORK"]
TCP_KEEPIDLE: Final[int] = _c["TCP_KEEPIDLE"]
TCP_KEEPINTVL: Final[int] = _c["TCP_KEEPINTVL"]
TCP_KEEPCNT: Final[int] = _c["TCP_KEEPCNT"]
TCP_SYNCNT: Final[int] = _c["TCP_SYNCNT"]
TCP_LINGER2: Final[int] = _c["TCP_LINGER2"]
TCP_DEFER_ACCEPT: Final[int] = _c["TCP_DEFER_ACCEPT"]
TCP_WINDOW_CLAMP: Final[int] = _c["TCP_WINDOW_CLAMP"]
TCP_INFO: Final[int] = _c["TCP_INFO"]
TCP_QUICKACK: Final[int] = _c["TCP_QUICKACK"]
TCP_CONGESTION: Final[int] = _c["TCP_CONGESTION"]
TCP_USER_TIMEOUT: Final[int] = _c["TCP_USER_TIMEOUT"]
TCP_FASTOPEN: Final[int] = _c["TCP_FASTOPEN"]
TCP_NOTSENT_LOWAT: Final[int] = _c["TCP_NOTSENT_LOWAT"]
TCP_INQ: Final[int] = _c["TCP_INQ"]
TCP_TX_DELAY: Final[int] = _c["TCP_TX_DELAY"]

MSG_OOB: Final[int] = _c["MSG_OOB"]
MSG_PEEK: Final[int] = _c["MSG_PEEK"]
MSG_DONTROUTE: Final[int] = _c["MSG_DONTROUTE"]
MSG_CTRUNC: Final[int] = _c["MSG_CTRUNC"]
MSG_TRUNC: Final[int] = _c["MSG_TRUNC"]
MSG_DONTWAIT: Final[int] = _c["MSG_DONTWAIT"]
MSG_EOR: Final[int] = _c["MSG_EOR"]
MSG_WAITALL: Final[int] = _c["MSG_WAITALL"]
MSG_CONFIRM: Final[int] = _c["MSG_CONFIRM"]
MSG_ERRQUEUE: Final[int] = _c["MSG_ERRQUEUE"]
MSG_NOSIGNAL: Final[int] = _c["MSG_NOSIGNAL"]
MSG_MORE: Final[int] = _c["MSG_MORE"]
MSG_ZEROCOPY: Final[int] = _c["MSG_ZEROCOPY"]
MSG_FASTOPEN: Final[int] = _c["MSG_FASTOPEN"]
MSG_CMSG_CLOEXEC: Final[int] = _c["MSG_CMSG_CLOEXEC"]

SHUT_RD: Final[int] = _c["SHUT_RD"]
SHUT_WR: Final[int] = _c["SHUT_WR"]
SHUT_RDWR: Final[int] = _c["SHUT_RDWR"]

SCM_RIGHTS: Final[int] = _c["SCM_RIGHTS"]
SCM_CREDENTIALS: Final[int] = _c["SCM_CREDENTIALS"]

POLLIN: Final[int] = _c["POLLIN"]

POLLPRI: Final[int] = _c["POLLPRI"]

POLLOUT: Final[int] = _c["POLLOUT"]

POLLERR: Final[int] = _c["POLLERR"]

POLLHUP: Final[int] = _c["POLLHUP"]

POLLNVAL: Final[int] = _c["POLLNVAL"]

POLLRDNORM: Final[int] = _c["POLLRDNORM"]

POLLRDBAND: Final[int] = _c["POLLRDBAND"]

POLLWRNORM: Final[int] = _c["POLLWRNORM"]

POLLWRBAND: Final[int] = _c["POLLWRBAND"]

POLLMSG: Final[int] = _c["POLLMSG"]

POLLRDHUP: Final[int] = _c["POLLRDHUP"]

__all__ = [
    "AF_UNSPEC",
    "AF_UNIX",
    "AF_INET",
    "AF_INET6",
    "AF_NETLINK",
    "AF_PACKET",
    "SOCK_STREAM",
    "SOCK_DGRAM",
    "SOCK_RAW",
    "SOCK_RDM",
    "SOCK_SEQPACKET",
    "SOCK_NONBLOCK",
    "SOCK_CLOEXEC",
    "SOMAXCONN",
    "SOL_SOCKET",
    "SOL_TCP",
    "SOL_UDP",
    "SOL_IPV6",
    "SOL_IP",
    "SO_DEBUG",
    "SO_REUSEADDR",
    "SO_TYPE",
    "SO_ERROR",
    "SO_DONTROUTE",
    "SO_BROADCAST",
    "SO_SNDBUF",
    "SO_RCVBUF",
    "SO_SNDBUFFORCE",
    "SO_RCVBUFFORCE",
    "SO_KEEPALIVE",
    "SO_OOBINLINE",
    "SO_NO_CHECK",
    "SO_PRIORITY",
    "SO_LINGER",
    "SO_REUSEPORT",
    "SO_PASSCRED",
    "SO_PEERCRED",
    "SO_RCVLOWAT",
    "SO_SNDLOWAT",
    "SO_RCVTIMEO",
    "SO_SNDTIMEO",
    "SO_BINDTODEVICE",
    "SO_ACCEPTCONN",
    "SO_PEERSEC",
    "SO_PASSSEC",
    "SO_MARK",
    "SO_PROTOCOL",
    "SO_DOMAIN",
    "SO_TIMESTAMP",
    "SO_TIMESTAMPNS",
    "SO_RXQ_OVFL",
    "SO_PEEK_OFF",
    "SO_BUSY_POLL",
    "SO_INCOMING_CPU",
    "SO_COOKIE",
    "SO_ZEROCOPY",
    "SO_TXTIME",
    "SO_BINDTOIFINDEX",
    "SO_MAX_PACING_RATE",
    "IPPROTO_IP",
    "IPPROTO_ICMP",
    "IPPROTO_IGMP",
    "IPPROTO_TCP",
    "IPPROTO_UDP",
    "IPPROTO_IPV6",
    "IPPROTO_ICMPV6",
    "IPPROTO_RAW",
    "IPPROTO_SCTP",
    "IPPROTO_UDPLITE",
    "IPPROTO_MPTCP",
    "IP_TOS",
    "IP_TTL",
    "IP_HDRINCL",
    "IP_OPTIONS",
    "IP_PKTINFO",
    "IP_RECVERR",
    "IP_RECVTOS",
    "IP_MTU_DISCOVER",
    "IP_MTU",
    "IP_MULTICAST_IF",
    "IP_MULTICAST_TTL",
    "IP_MULTICAST_LOOP",
    "IP_ADD_MEMBERSHIP",
    "IP_DROP_MEMBERSHIP",
    "IPV6_V6ONLY",
    "IPV6_UNICAST_HOPS",
    "IPV6_MULTICAST_HOPS",
    "IPV6_RECVPKTINFO",
    "IPV6_TCLASS",
    "TCP_NODELAY",
    "TCP_MAXSEG",
    "TCP_CORK",
    "TCP_KEEPIDLE",
    "TCP_KEEPINTVL",
    "TCP_KEEPCNT",
    "TCP_SYNCNT",
    "TCP_LINGER2",
    "TCP_DEFER_ACCEPT",
    "TCP_WINDOW_CLAMP",
    "TCP_INFO",
    "TCP_QUICKACK",
    "TCP_CONGESTION",
    "TCP_USER_TIMEOUT",
    "TCP_FASTOPEN",
    "TCP_NOTSENT_LOWAT",
    "TCP_INQ",
    "TCP_TX_DELAY",
    "MSG_OOB",
    "MSG_PEEK",
    "MSG_DONTROUTE",
    "MSG_CTRUNC",
    "MSG_TRUNC",
    "MSG_DONTWAIT",
    "MSG_EOR",
    "MSG_WAITALL",
    "MSG_CONFIRM",
    "MSG_ERRQUEUE",
    "MSG_NOSIGNAL",
    "MSG_MORE",
    "MSG_ZEROCOPY",
    "MSG_FASTOPEN",
    "MSG_CMSG_CLOEXEC",
    "SHUT_RD",
    "SHUT_WR",
    "SHUT_RDWR",
    "SCM_RIGHTS",
    "SCM_CREDENTIALS",
    "POLLIN",
    "POLLPRI",
    "POLLOUT",
    "POLLERR",
    "POLLHUP",
    "POLLNVAL",
    "POLLRDNORM",
    "POLLRDBAND",
    "POLLWRNORM",
    "POLLWRBAND",
    "POLLMSG",
    "POLLRDHUP",
]

"""The kernel's network configuration interfaces: rtnetlink and interface ioctls.

The one client of them in the package: :mod:`lkl.net.nic` (devices),
:mod:`lkl.net.tc` (qdiscs) and ``Kernel`` (routes, neighbours, loopback)
all configure the kernel through here.  Every request runs on a socket of
the kernel itself (AF_NETLINK or AF_INET), never of the host.  pyroute2's
message classes encode and decode the netlink messages; the numbers
(ioctls, message types, flags) are the kernel's own, from its headers.
"""

from __future__ import annotations

import ctypes
import ipaddress
import itertools
import os
import re
import socket as _hostsocket
import struct
from typing import TYPE_CHECKING, Any, Protocol

from lkl import _lkl

if TYPE_CHECKING:
    from lkl._kernel import Kernel

_K = _lkl.internal_constants
_C = _lkl.constants

#: The kernel's values (linux/netlink.h, linux/rtnetlink.h, linux/pkt_sched.h...).
NLM_F_ACK = _K["NLM_F_ACK"]
NLM_F_DUMP = _K["NLM_F_DUMP"]
NLM_F_CREATE = _K["NLM_F_CREATE"]
NLM_F_EXCL = _K["NLM_F_EXCL"]
NLM_F_REPLACE = _K["NLM_F_REPLACE"]
#: Create, failing if it exists / create or replace.
NEW = NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
REPLACE = NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE

# The ethtool commands of the kernel's own offloads: (get, set).
ETHTOOL_FEATURES = {
    "rx_csum": (_K["ETHTOOL_GRXCSUM"], _K["ETHTOOL_SRXCSUM"]),
    "tx_csum": (_K["ETHTOOL_GTXCSUM"], _K["ETHTOOL_STXCSUM"]),
    "tso": (_K["ETHTOOL_GTSO"], _K["ETHTOOL_STSO"]),
    "gso": (_K["ETHTOOL_GGSO"], _K["ETHTOOL_SGSO"]),
    "gro": (_K["ETHTOOL_GGRO"], _K["ETHTOOL_SGRO"]),
}

_IFNAMSIZ = _K["IFNAMSIZ"]
_seq = itertools.count(1)


class HasIfindex(Protocol):
    """A device that knows its interface index (lkl.Nic)."""

    @property
    def ifindex(self) -> int:
        """The kernel's interface index."""
        ...


Device = HasIfindex | str | int


# ---- interface ioctls ---------------------------------------------------------


def ioctl_ifreq(k: Kernel, request: int, name: str = "", tail: bytes = b"") -> bytearray:
    """Run ioctl ``request`` with a struct ifreq on a kernel AF_INET socket.

    The ifreq holds ``name``, then ``tail`` as its union; returns it as the
    kernel left it.
    """
    req = bytearray(_K["sizeof_ifreq"])
    raw = os.fsencode(name)
    if len(raw) >= _IFNAMSIZ:
        raise ValueError(f"interface name too long: {name!r}")
    req[:len(raw)] = raw
    req[_IFNAMSIZ:_IFNAMSIZ + len(tail)] = tail
    fd = k.syscall("socket", _C["AF_INET"], _C["SOCK_DGRAM"] | _C["SOCK_CLOEXEC"], 0)
    try:
        k.syscall("ioctl", fd, request, req)
    finally:
        k.syscall("close", fd)
    return req


def ifindex(k: Kernel, dev: Device) -> int:
    """The interface index of ``dev``: a Nic, an interface name or an index."""
    if isinstance(dev, bool):
        raise TypeError("dev must be a Nic, an interface name or an index, not bool")
    if isinstance(dev, int):
        return dev
    if isinstance(dev, str):
        req = ioctl_ifreq(k, _K["SIOCGIFINDEX"], dev)
        return int(struct.unpack_from("i", req, _IFNAMSIZ)[0])
    if hasattr(dev, "ifindex"):
        return int(dev.ifindex)
    raise TypeError(f"dev must be a Nic, an interface name or an index, not {type(dev).__name__}")


def lookup(k: Kernel, name: str) -> int | None:
    """The interface index of ``name``, or None if the kernel has no such device."""
    try:
        return ifindex(k, name)
    except _lkl.KernelError:
        raise
    except OSError as e:
        if e.errno == _K["ENODEV"]:
            return None
        raise


def ifname(k: Kernel, index: int) -> str:
    """The kernel's name of interface ``index``."""
    req = ioctl_ifreq(k, _K["SIOCGIFNAME"], "", struct.pack("i", index))
    return bytes(req[:_IFNAMSIZ]).split(b"\0", 1)[0].decode()


def set_up(k: Kernel, name: str, up: bool = True) -> None:
    """Bring interface ``name`` up or down (SIOCSIFFLAGS)."""
    req = ioctl_ifreq(k, _K["SIOCGIFFLAGS"], name)
    flags = struct.unpack_from("H", req, _IFNAMSIZ)[0]
    flags = flags | _K["IFF_UP"] if up else flags & ~_K["IFF_UP"]
    ioctl_ifreq(k, _K["SIOCSIFFLAGS"], name, struct.pack("H", flags))


def set_mtu(k: Kernel, name: str, mtu: int) -> None:
    """Set the MTU of interface ``name``."""
    ioctl_ifreq(k, _K["SIOCSIFMTU"], name, struct.pack("i", mtu))


def hwaddr(k: Kernel, name: str) -> bytes:
    """The hardware (MAC) address of interface ``name``."""
    req = ioctl_ifreq(k, _K["SIOCGIFHWADDR"], name)
    return bytes(req[_IFNAMSIZ + 2:_IFNAMSIZ + 8])  # struct sockaddr's sa_data


def ethtool_value(k: Kernel, name: str, cmd: int, value: int = 0) -> int:
    """Run ethtool command ``cmd`` with a struct ethtool_value on ``name``.

    Returns its data field after the call (the state, for a get command).
    """
    ev = (ctypes.c_uint32 * 2)(cmd, value)
    ioctl_ifreq(k, _K["SIOCETHTOOL"], name, struct.pack("P", ctypes.addressof(ev)))
    return int(ev[1])


# ---- rtnetlink ------------------------------------------------------------------


def exchange(k: Kernel, protocol: int, data: bytes, seq: int, what: str,
             reads: int = 10000) -> list[bytes]:
    """Send netlink message ``data`` on a new socket of ``protocol``.

    Returns the replies with sequence number ``seq`` (whole messages) up
    to the dump's NLMSG_DONE or the acknowledgement; raises the kernel's
    error as OSError, TimeoutError (naming ``what``) after ``reads``
    reads without an end.
    """
    fd = k.syscall("socket", _C["AF_NETLINK"], _C["SOCK_RAW"] | _C["SOCK_CLOEXEC"], protocol)
    replies: list[bytes] = []
    try:
        k.syscall("sendto", fd, data, len(data), 0, None, 0)
        buf = bytearray(1 << 16)
        for _ in range(reads):  # bounded: a dump ends with NLMSG_DONE
            n = k.syscall("recvfrom", fd, buf, len(buf), 0, None, None)
            off = 0
            while off + 16 <= n:
                length, rtype, _rflags, rseq = struct.unpack_from("IHHI", buf, off)
                if length < 16 or off + length > n:
                    break
                if rseq == seq:
                    if rtype == _K["NLMSG_DONE"]:
                        return replies
                    if rtype == _K["NLMSG_ERROR"]:
                        err = struct.unpack_from("i", buf, off + 16)[0]
                        if err < 0:
                            raise _lkl.errno_error(-err)
                        return replies
                    replies.append(bytes(buf[off:off + length]))
                off += (length + 3) & ~3
        raise TimeoutError(f"no end to the {what}")
    finally:
        k.syscall("close", fd)


def request(k: Kernel, msg: Any, mtype: int, flags: int) -> list[bytes]:
    """Send the pyroute2 message ``msg`` as rtnetlink message ``mtype``.

    Returns the raw reply messages (a dump's; none for an acknowledged
    request).  Raises the kernel's error as OSError.
    """
    seq = next(_seq)
    msg["header"]["type"] = mtype
    msg["header"]["flags"] = _K["NLM_F_REQUEST"] | flags
    msg["header"]["sequence_number"] = seq
    msg.encode()
    return exchange(k, _K["NETLINK_ROUTE"], bytes(msg.data), seq, "rtnetlink reply")


def _family(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    return _hostsocket.AF_INET6 if addr.version == 6 else _hostsocket.AF_INET


def add_address(k: Kernel, index: int, cidr: str) -> None:
    """Add address ``cidr`` ("10.0.0.2/24", "fd00::2/64": IPv6 without DAD)."""
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg  # type: ignore[import-untyped]

    iface = ipaddress.ip_interface(cidr)
    addr = str(iface.ip)
    msg = ifaddrmsg()
    msg["family"] = _family(iface.ip)
    msg["prefixlen"] = iface.network.prefixlen
    msg["index"] = index
    attrs: list[tuple[str, Any]] = [("IFA_LOCAL", addr), ("IFA_ADDRESS", addr)]
    if iface.version == 6:
        msg["flags"] = _K["IFA_F_NODAD"]
        attrs = [("IFA_ADDRESS", addr)]
    msg["attrs"] = attrs
    request(k, msg, _K["RTM_NEWADDR"], NEW)


def addresses(k: Kernel) -> list[tuple[int, str, int]]:
    """Every address of the kernel's interfaces: ``(family, address, ifindex)``."""
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg

    out = []
    for raw in request(k, ifaddrmsg(), _K["RTM_GETADDR"], NLM_F_DUMP):
        reply = ifaddrmsg(raw)
        reply.decode()
        addr = reply.get_attr("IFA_LOCAL") or reply.get_attr("IFA_ADDRESS")
        if addr:
            out.append((int(reply["family"]), str(addr), int(reply["index"])))
    return out


def add_route(k: Kernel, dst: str, via: str | None = None, dev: Device | None = None) -> None:
    """Add a route to the main table (see Kernel.add_route)."""
    from pyroute2.netlink.rtnl.rtmsg import rtmsg  # type: ignore[import-untyped]

    gw = ipaddress.ip_address(via) if via is not None else None
    if dst == "default":
        version = gw.version if gw is not None else 4
        net = ipaddress.ip_network("::/0" if version == 6 else "0.0.0.0/0")
    else:
        net = ipaddress.ip_network(dst, strict=False)
    if gw is not None and gw.version != net.version:
        raise ValueError("dst and via must be of the same IP version")
    if gw is None and dev is None:
        raise ValueError("a route needs via or dev")
    msg = rtmsg()
    msg["family"] = _family(net.network_address)
    msg["dst_len"] = net.prefixlen
    msg["table"] = _K["RT_TABLE_MAIN"]
    msg["proto"] = _K["RTPROT_BOOT"]  # as ip(8)
    msg["scope"] = _K["RT_SCOPE_UNIVERSE"] if gw is not None else _K["RT_SCOPE_LINK"]
    msg["type"] = _K["RTN_UNICAST"]
    attrs: list[tuple[str, Any]] = []
    if net.prefixlen:
        attrs.append(("RTA_DST", str(net.network_address)))
    if gw is not None:
        attrs.append(("RTA_GATEWAY", str(gw)))
    if dev is not None:
        attrs.append(("RTA_OIF", ifindex(k, dev)))
    msg["attrs"] = attrs
    request(k, msg, _K["RTM_NEWROUTE"], NEW)


def add_neighbor(k: Kernel, ip: str, mac: str | bytes, dev: Device) -> None:
    """Add a permanent neighbour entry (see Kernel.add_neighbor)."""
    from pyroute2.netlink.rtnl.ndmsg import ndmsg  # type: ignore[import-untyped]

    addr = ipaddress.ip_address(ip)
    msg = ndmsg()
    msg["family"] = _family(addr)
    msg["ifindex"] = ifindex(k, dev)
    msg["state"] = _K["NUD_PERMANENT"]
    msg["attrs"] = [("NDA_DST", str(addr)), ("NDA_LLADDR", mac_str(mac_bytes(mac)))]
    request(k, msg, _K["RTM_NEWNEIGH"], REPLACE)


def new_link(k: Kernel, name: str, kind: str) -> int:
    """Create interface ``name`` of ``kind`` ("ifb"...); returns its index."""
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg  # type: ignore[import-untyped]

    msg = ifinfmsg()
    msg["family"] = 0
    msg["attrs"] = [("IFLA_IFNAME", name), ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", kind)]})]
    request(k, msg, _K["RTM_NEWLINK"], NEW)
    return ifindex(k, name)


def del_link(k: Kernel, index: int) -> None:
    """Delete interface ``index``."""
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg  # type: ignore[import-untyped]

    msg = ifinfmsg()
    msg["family"] = 0
    msg["index"] = index
    request(k, msg, _K["RTM_DELLINK"], NLM_F_ACK)


# ---- MAC addresses ----------------------------------------------------------------


def mac_bytes(mac: str | bytes) -> bytes:
    """``mac`` ("02:00:00:00:00:01", "02-00-..." or 6 bytes) as 6 bytes."""
    if isinstance(mac, (bytes, bytearray)):
        raw = bytes(mac)
    elif isinstance(mac, str):
        parts = re.split(r"[:-]", mac)
        if len(parts) != 6 or not all(re.fullmatch(r"[0-9a-fA-F]{1,2}", p) for p in parts):
            raise ValueError(f"invalid MAC address {mac!r}")
        raw = bytes(int(p, 16) for p in parts)
    else:
        raise TypeError(f"mac must be a str or bytes, not {type(mac).__name__}")
    if len(raw) != 6:
        raise ValueError(f"a MAC address has 6 bytes, not {len(raw)}")
    return raw


def mac_str(raw: bytes) -> str:
    """6 bytes as "aa:bb:cc:dd:ee:ff"."""
    return ":".join(f"{b:02x}" for b in raw)

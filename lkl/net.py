"""Network devices: virtio-net NICs on TAP, raw-socket or pipe backends.

A :class:`Nic` is a virtio-net device served by this process and driven by
the kernel's own virtio_net driver; its frames go to a backend::

    import lkl

    nic = lkl.Nic(lkl.Tap("tap0"), offload=lkl.Offload.LARGE_SEGMENTS)
    with lkl.boot(nics=[nic]) as k:
        nic.up()
        nic.add_address("10.0.0.2/24")
        k.add_route("default", via="10.0.0.1")

Devices can also be hot-added after boot with ``Kernel.add_nic``.  The
kernel is configured over rtnetlink (an AF_NETLINK socket of the kernel;
pyroute2's message classes encode the messages) and ioctls.
"""

from __future__ import annotations

import ctypes
import enum
import ipaddress
import itertools
import os
import re
import socket as _hostsocket
import struct
from typing import TYPE_CHECKING, Any

from lkl import _lkl

if TYPE_CHECKING:
    from lkl._kernel import Kernel

__all__ = ["Offload", "Backend", "Tap", "RawSocket", "Pipe", "Nic"]

_K = _lkl.internal_constants
_C = _lkl.constants


class Offload(enum.IntFlag):
    """Virtio-net offload feature bits (the spec's bit numbers) and presets."""

    NONE = 0
    #: The kernel may send frames with partial checksums.
    CSUM = 1 << 0
    #: The kernel takes frames with partial checksums.
    GUEST_CSUM = 1 << 1
    #: The kernel takes TCPv4 / TCPv6 super-frames.
    GUEST_TSO4 = 1 << 7
    GUEST_TSO6 = 1 << 8
    #: The kernel may send TCPv4 / TCPv6 super-frames.
    HOST_TSO4 = 1 << 11
    HOST_TSO6 = 1 << 12
    #: Mergeable receive buffers.
    MRG_RXBUF = 1 << 15
    #: Checksum offload both ways.
    CHECKSUM = CSUM | GUEST_CSUM
    #: Checksums, TSO both ways and mergeable receive buffers.
    LARGE_SEGMENTS = CHECKSUM | GUEST_TSO4 | GUEST_TSO6 | HOST_TSO4 | HOST_TSO6 | MRG_RXBUF
    #: LARGE_SEGMENTS without MRG_RXBUF (the driver's "big packets" mode).
    BIG_PACKETS = CHECKSUM | GUEST_TSO4 | GUEST_TSO6 | HOST_TSO4 | HOST_TSO6


_OFFLOAD_MASK = int(Offload.LARGE_SEGMENTS)


# ---- backends ---------------------------------------------------------------


class Backend:
    """Where a Nic's frames go (base class of Tap, RawSocket and Pipe)."""

    def _open(self) -> Any:
        raise NotImplementedError


class Tap(Backend):
    """The host TAP device ``ifname`` (created if missing: needs CAP_NET_ADMIN).

    The device is opened when a Nic is made on it.
    """

    def __init__(self, ifname: str) -> None:
        if not isinstance(ifname, str) or not ifname or len(ifname) >= 16:
            raise ValueError(f"invalid interface name {ifname!r}")
        self.ifname = ifname

    def _open(self) -> Any:
        return _lkl._tap_backend(self.ifname)

    def __repr__(self) -> str:
        return f"lkl.Tap({self.ifname!r})"


class RawSocket(Backend):
    """An AF_PACKET socket on the existing host interface ``ifname``.

    Promiscuous; needs CAP_NET_RAW.
    """

    def __init__(self, ifname: str) -> None:
        if not isinstance(ifname, str) or not ifname or len(ifname) >= 16:
            raise ValueError(f"invalid interface name {ifname!r}")
        self.ifname = ifname

    def _open(self) -> Any:
        return _lkl._raw_backend(self.ifname)

    def __repr__(self) -> str:
        return f"lkl.RawSocket({self.ifname!r})"


class Pipe(Backend):
    """One end of a pipe between two kernels: a host socket fd carrying frames.

    Make both ends with :meth:`Pipe.pair`; pass one end's ``fd`` to another
    process (``subprocess.Popen(pass_fds=...)``) and wrap it there with
    ``lkl.Pipe(fd)``.  The Nic made on an end uses a duplicate of the fd;
    :meth:`close` closes this object's own fd.
    """

    def __init__(self, fd: int) -> None:
        if isinstance(fd, bool) or not isinstance(fd, int) or fd < 0:
            raise ValueError("fd must be a non-negative int")
        self.fd: int | None = fd

    @classmethod
    def pair(cls) -> tuple[Pipe, Pipe]:
        """Two connected ends (a SOCK_SEQPACKET pair; the fds are inheritable)."""
        a, b = _lkl._pipe_pair()
        return cls(a), cls(b)

    def fileno(self) -> int:
        """The host fd of this end."""
        if self.fd is None:
            raise ValueError("the pipe end is closed")
        return self.fd

    def close(self) -> None:
        """Close this object's fd (a Nic made on it keeps its own)."""
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)

    def _open(self) -> Any:
        fd = os.dup(self.fileno())
        try:
            return _lkl._pipe_backend(fd, fd)
        except BaseException:
            os.close(fd)
            raise

    def __repr__(self) -> str:
        return f"lkl.Pipe({self.fd})"


# ---- kernel-side helpers: ioctls and rtnetlink ------------------------------

_SIOCGIFNAME = 0x8910
_SIOCGIFINDEX = 0x8933
_SIOCSIFMTU = 0x8922
_SIOCGIFHWADDR = 0x8927
_SIOCETHTOOL = 0x8946

_ETHTOOL_SET = {
    "rx_csum": 0x15,  # ETHTOOL_SRXCSUM
    "tx_csum": 0x17,  # ETHTOOL_STXCSUM
    "tso": 0x1F,  # ETHTOOL_STSO
    "gso": 0x24,  # ETHTOOL_SGSO
    "gro": 0x2C,  # ETHTOOL_SGRO
}

_AF_NETLINK = 16
_NETLINK_ROUTE = 0
_NLMSG_ERROR = 2
_NLMSG_DONE = 3
_NLM_F_REQUEST = 0x1
_NLM_F_ACK = 0x4
_NLM_F_DUMP = 0x300
_NLM_F_REPLACE = 0x100
_NLM_F_EXCL = 0x200
_NLM_F_CREATE = 0x400
_RTM_NEWROUTE = 24
_RTM_NEWNEIGH = 28
_RTM_NEWADDR = 20

_seq = itertools.count(1)


def _ioctl_ifreq(k: Kernel, request: int, name: str = "", tail: bytes = b"") -> bytearray:
    """An ioctl on an AF_INET socket of the kernel with a struct ifreq."""
    req = bytearray(_K["sizeof_ifreq"])
    raw = os.fsencode(name)
    req[:len(raw)] = raw
    req[16:16 + len(tail)] = tail
    fd = k.syscall("socket", _C["AF_INET"], _C["SOCK_DGRAM"] | _C["SOCK_CLOEXEC"], 0)
    try:
        k.syscall("ioctl", fd, request, req)
    finally:
        k.syscall("close", fd)
    return req


def _ifindex(k: Kernel, dev: Nic | str | int) -> int:
    if isinstance(dev, Nic):
        return dev.ifindex
    if isinstance(dev, int) and not isinstance(dev, bool):
        return dev
    if isinstance(dev, str):
        return struct.unpack_from("i", _ioctl_ifreq(k, _SIOCGIFINDEX, dev), 16)[0]
    raise TypeError(f"dev must be a Nic, an interface name or an index, not {type(dev).__name__}")


def _ifname(k: Kernel, ifindex: int) -> str:
    """The kernel's name of interface ``ifindex``."""
    req = _ioctl_ifreq(k, _SIOCGIFNAME, "", struct.pack("i", ifindex))
    return bytes(req[:16]).split(b"\0", 1)[0].decode()


def _set_up(k: Kernel, name: str, up: bool) -> None:
    """Bring interface ``name`` up or down (SIOCSIFFLAGS)."""
    req = _ioctl_ifreq(k, _K["SIOCGIFFLAGS"], name)
    flags = struct.unpack_from("H", req, 16)[0]
    flags = flags | _K["IFF_UP"] if up else flags & ~_K["IFF_UP"]
    _ioctl_ifreq(k, _K["SIOCSIFFLAGS"], name, struct.pack("H", flags))


def _netlink(k: Kernel, msg: Any, mtype: int, flags: int) -> list[bytes]:
    """Send the pyroute2 message ``msg`` to the kernel's rtnetlink.

    Returns the raw reply messages (a dump's, or none for an acknowledged
    request).  Raises the kernel's error as OSError.
    """
    seq = next(_seq)
    msg["header"]["type"] = mtype
    msg["header"]["flags"] = _NLM_F_REQUEST | flags
    msg["header"]["sequence_number"] = seq
    msg.encode()
    data = bytes(msg.data)
    fd = k.syscall("socket", _AF_NETLINK, 3 | _C["SOCK_CLOEXEC"], _NETLINK_ROUTE)  # SOCK_RAW
    replies: list[bytes] = []
    try:
        k.syscall("sendto", fd, data, len(data), 0, None, 0)
        buf = bytearray(1 << 16)
        for _ in range(10000):  # bounded: a dump ends with NLMSG_DONE
            n = k.syscall("recvfrom", fd, buf, len(buf), 0, None, None)
            off = 0
            while off + 16 <= n:
                length, rtype, _rflags, rseq = struct.unpack_from("IHHI", buf, off)
                if length < 16:
                    break
                if rseq == seq:
                    if rtype == _NLMSG_DONE:
                        return replies
                    if rtype == _NLMSG_ERROR:
                        err = struct.unpack_from("i", buf, off + 16)[0]
                        if err < 0:
                            raise _lkl.errno_error(-err)
                        return replies
                    replies.append(bytes(buf[off:off + length]))
                off += (length + 3) & ~3
        raise TimeoutError("no end to the rtnetlink reply")
    finally:
        k.syscall("close", fd)


def _family(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    return _hostsocket.AF_INET6 if addr.version == 6 else _hostsocket.AF_INET


def add_route(k: Kernel, dst: str, via: str | None = None,
              dev: Nic | str | int | None = None) -> None:
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
    msg["table"] = 254  # RT_TABLE_MAIN
    msg["proto"] = 3  # RTPROT_BOOT, as ip(8)
    msg["scope"] = 0 if gw is not None else 253  # RT_SCOPE_UNIVERSE / LINK
    msg["type"] = 1  # RTN_UNICAST
    attrs: list[tuple[str, Any]] = []
    if net.prefixlen:
        attrs.append(("RTA_DST", str(net.network_address)))
    if gw is not None:
        attrs.append(("RTA_GATEWAY", str(gw)))
    if dev is not None:
        attrs.append(("RTA_OIF", _ifindex(k, dev)))
    msg["attrs"] = attrs
    _netlink(k, msg, _RTM_NEWROUTE, _NLM_F_ACK | _NLM_F_CREATE | _NLM_F_EXCL)


def add_neighbor(k: Kernel, ip: str, mac: str | bytes, dev: Nic | str | int) -> None:
    """Add a permanent neighbour entry (see Kernel.add_neighbor)."""
    from pyroute2.netlink.rtnl.ndmsg import ndmsg  # type: ignore[import-untyped]

    addr = ipaddress.ip_address(ip)
    msg = ndmsg()
    msg["family"] = _family(addr)
    msg["ifindex"] = _ifindex(k, dev)
    msg["state"] = 0x80  # NUD_PERMANENT
    msg["attrs"] = [("NDA_DST", str(addr)), ("NDA_LLADDR", _mac_str(_mac_bytes(mac)))]
    _netlink(k, msg, _RTM_NEWNEIGH, _NLM_F_ACK | _NLM_F_CREATE | _NLM_F_REPLACE)


def _mac_bytes(mac: str | bytes) -> bytes:
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


def _mac_str(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


# ---- devices ----------------------------------------------------------------


class Nic:
    """A virtio-net network device of the kernel, on ``backend``.

    ``offload``: the :class:`Offload` bits to offer the driver (limited to
    what the backend carries); ``mac``: "02:00:00:00:00:01" or 6 bytes
    (None: random); ``mtu``: MTU advice to the driver (None: 1500);
    ``direct_rx``: with ``syscall_mode="direct"``, a thread whose syscall
    sleeps receives this device's frames itself, instead of the device's
    poller thread receiving them and then waking it (one host context
    switch less per wakeup: TCP_RR latency, see bench/tcp_rr.py).  One
    device per process can do this, the first created with it.

    Pass it to ``lkl.boot(nics=[...])``, or use ``Kernel.add_nic``.  The
    device is freed after the kernel halts.
    """

    def __init__(self, backend: Backend, offload: Offload | int = Offload.NONE,
                 mac: str | bytes | None = None, mtu: int | None = None,
                 direct_rx: bool = False) -> None:
        if not isinstance(backend, Backend):
            raise TypeError(f"backend must be an lkl.Tap, RawSocket or Pipe, not "
                            f"{type(backend).__name__}")
        if isinstance(offload, bool) or not isinstance(offload, int):
            raise TypeError("offload must be an lkl.Offload")
        if offload & ~_OFFLOAD_MASK:
            raise ValueError(f"unknown offload bits {offload & ~_OFFLOAD_MASK:#x}")
        if mtu is not None and (isinstance(mtu, bool) or not isinstance(mtu, int)
                                or not 68 <= mtu <= 65535):
            raise ValueError("mtu must be None or an int in 68..65535")
        raw_mac = _mac_bytes(mac) if mac is not None else None
        self.backend = backend
        self.offload = Offload(offload)
        self._kernel: Kernel | None = None
        self._name: str | None = None
        self._index: int | None = None
        self.direct_rx = bool(direct_rx)
        self._dev = _lkl._netdev_create(backend._open(), int(offload), raw_mac, mtu or 0,
                                        direct_rx=self.direct_rx)

    def __repr__(self) -> str:
        where = self._name or ("attached" if self._kernel is not None else "not attached")
        return f"<lkl.Nic {where} on {self.backend!r} offload={self.offload!r}>"

    # ---- attachment (used by lkl.boot and Kernel.add_nic) ------------------

    def _cmdline(self) -> str:
        if self._kernel is not None:
            raise ValueError("this Nic is already attached to a kernel")
        return self._dev.cmdline()

    def _attach(self) -> None:
        if self._kernel is not None:
            raise ValueError("this Nic is already attached to a kernel")
        self._dev.attach()

    def _free(self) -> None:
        from lkl import capture
        capture.stop_all(self)  # a capture holds the device
        self._dev.free()

    def _k(self) -> Kernel:
        k = self._kernel
        if k is None:
            raise ValueError("this Nic is not attached to a kernel")
        k._check()
        return k

    # ---- identity ----------------------------------------------------------

    @property
    def ifindex(self) -> int:
        """The kernel's interface index of the device."""
        if self._index is None:
            self._k()
            self._index = self._dev.ifindex()
        return self._index

    @property
    def name(self) -> str:
        """The kernel's interface name ("eth0"...)."""
        if self._name is None:
            self._name = _ifname(self._k(), self.ifindex)
        return self._name

    @property
    def mac(self) -> str:
        """The device's MAC address, "aa:bb:cc:dd:ee:ff"."""
        req = _ioctl_ifreq(self._k(), _SIOCGIFHWADDR, self.name)
        return _mac_str(bytes(req[18:24]))

    @property
    def features_offered(self) -> Offload:
        """The offload bits offered to the driver."""
        return Offload(self._dev.offered & _OFFLOAD_MASK)

    @property
    def features_negotiated(self) -> Offload:
        """The offload bits the driver accepted."""
        return Offload(self._dev.negotiated & _OFFLOAD_MASK)

    # ---- configuration -----------------------------------------------------

    def up(self) -> None:
        """Bring the interface up."""
        _set_up(self._k(), self.name, True)

    def down(self) -> None:
        """Take the interface down."""
        _set_up(self._k(), self.name, False)

    def set_mtu(self, mtu: int) -> None:
        """Set the interface's MTU."""
        if isinstance(mtu, bool) or not isinstance(mtu, int):
            raise TypeError("mtu must be an int")
        _ioctl_ifreq(self._k(), _SIOCSIFMTU, self.name, struct.pack("i", mtu))

    def add_address(self, cidr: str) -> None:
        """Add an address, "10.0.0.2/24" or "fd00::2/64" (IPv6 without DAD)."""
        from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg  # type: ignore[import-untyped]

        iface = ipaddress.ip_interface(cidr)
        addr = str(iface.ip)
        msg = ifaddrmsg()
        msg["family"] = _family(iface.ip)
        msg["prefixlen"] = iface.network.prefixlen
        msg["index"] = self.ifindex
        attrs: list[tuple[str, Any]] = [("IFA_LOCAL", addr), ("IFA_ADDRESS", addr)]
        if iface.version == 6:
            msg["flags"] = 0x80  # IFA_F_NODAD
            attrs = [("IFA_ADDRESS", addr)]
        msg["attrs"] = attrs
        _netlink(self._k(), msg, _RTM_NEWADDR, _NLM_F_ACK | _NLM_F_CREATE | _NLM_F_EXCL)

    def set_kernel_offloads(self, gso: bool | None = None, gro: bool | None = None,
                            tso: bool | None = None, rx_csum: bool | None = None,
                            tx_csum: bool | None = None) -> None:
        """Switch the kernel's own offloads of this interface.

        Ethtool features via SIOCETHTOOL; None leaves one as it is.
        """
        k = self._k()
        wanted = {"gso": gso, "gro": gro, "tso": tso, "rx_csum": rx_csum, "tx_csum": tx_csum}
        for key, value in wanted.items():
            if value is None:
                continue
            # Read first (ETHTOOL_G* is ETHTOOL_S* - 1): a feature the device
            # cannot change is only an error when it would have to change.
            ev = ctypes.create_string_buffer(struct.pack("II", _ETHTOOL_SET[key] - 1, 0))
            _ioctl_ifreq(k, _SIOCETHTOOL, self.name, struct.pack("P", ctypes.addressof(ev)))
            if bool(struct.unpack_from("I", ev.raw, 4)[0]) == bool(value):
                continue
            ev = ctypes.create_string_buffer(struct.pack("II", _ETHTOOL_SET[key], bool(value)))
            _ioctl_ifreq(k, _SIOCETHTOOL, self.name, struct.pack("P", ctypes.addressof(ev)))

    def set_busy_poll(self, us: int) -> None:
        """How long the device's poller spins before sleeping (0: sleep at once)."""
        self._dev.set_busy_poll(int(us))

    # ---- packet capture (lkl.capture) ----------------------------------------

    def capture(self, path_or_file: Any, snaplen: int = 65535, count: int | None = None,
                stop: Any = None, ring_bytes: int = 4 << 20) -> Any:
        """Capture every frame this device moves, both ways, to a pcap file.

        ``path_or_file``: a path, a binary file or an fd.  ``snaplen``: bytes
        kept per frame; ``count``: stop recording after that many frames;
        ``stop``: None, a duration in seconds or a threading.Event that ends
        the capture.  Returns an lkl.capture.Capture (``stop()``, ``stats``,
        ``wait``; a context manager).  OSError (EBUSY) if one already runs.
        """
        from lkl import capture
        return capture.capture(self, path_or_file, snaplen=snaplen, count=count, stop=stop,
                               ring_bytes=ring_bytes)

    # ---- counters ----------------------------------------------------------

    def stats(self) -> dict[str, dict[str, int]]:
        """Counters: ``{"kernel": {...}, "device": {...}}``.

        "kernel": /sys/class/net/<name>/statistics (rx_packets, rx_bytes,
        rx_dropped, rx_errors, tx_*...).  "device": the device's own
        (rx_packets, tx_packets, rx_dropped, rx_malformed, rx_oversize,
        rx_errors, tx_dropped, tx_errors, rx_sw_csum, rx_sw_gso, irqs, kicks,
        rx_direct: receives done on a sleeping syscall's thread, see direct_rx).
        """
        k = self._k()
        base = f"/sys/class/net/{self.name}/statistics"
        kernel: dict[str, int] = {}
        for entry in sorted(k.listdir(base)):
            try:
                kernel[entry] = int(k.read_text(f"{base}/{entry}").strip())
            except (OSError, ValueError):
                continue
        return {"kernel": kernel, "device": self._dev.stats()}

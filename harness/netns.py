"""Network namespaces for the tests and the benchmarks, with pyroute2.

Every TAP or veth device a test or a benchmark uses lives in a namespace
that it creates and deletes, so no packet can reach a real network.  Tests
use only 10.200.x.0/24 and fd00:200:x::/64 addresses in them.

    with Netns() as ns:
        ns.add_tap("tap0", "10.200.1.1/24")
        subprocess.run(ns.exec_argv(["ping", "-c1", "10.200.1.2"]))
        with ns.entered():
            sock = socket.socket()      # a socket inside the namespace
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import threading
from collections.abc import Iterator

from pyroute2 import NetNS, netns
from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_NODAD

_counter = itertools.count()

#: The congestion control the benchmarks give every sender, host and lkl:
#: Linux's default and lkl's kernel's (kernel-config DEFAULT_CUBIC).  A
#: machine's own may differ, and bbr without an fq qdisc paces in hrtimers
#: (a fifth of cubic's bulk throughput on this VM).
BENCH_CONGESTION_CONTROL = "cubic"


_ALLOWED = "/proc/sys/net/ipv4/tcp_allowed_congestion_control"
_allowed_lock = threading.Lock()
_allowed_users = 0
_allowed_before: list[str] = []


def machine_congestion_control() -> str:
    """The congestion control a new namespace on this machine inherits."""
    with open("/proc/sys/net/ipv4/tcp_congestion_control") as f:
        return f.read().strip()


@contextlib.contextmanager
def _allowed_in_namespaces(cc: str) -> Iterator[None]:
    """Let namespaces make ``cc`` their default while the block runs.

    Outside the initial namespace Linux lets only the machine's allowed
    algorithms be the default (EPERM otherwise); a machine whose default
    is bbr allows "reno bbr" and not cubic.  The list is the machine's:
    it is widened for the block and put back by the last user."""
    global _allowed_users, _allowed_before
    with _allowed_lock:
        with open(_ALLOWED) as f:
            now = f.read().split()
        if not _allowed_users:
            _allowed_before = now
        if cc not in now:
            with open(_ALLOWED, "w") as f:
                f.write(" ".join([*now, cc]))
        _allowed_users += 1
    try:
        yield
    finally:
        with _allowed_lock:
            _allowed_users -= 1
            if not _allowed_users:
                with open(_ALLOWED) as f:
                    widened = f.read().split() != _allowed_before
                if widened:
                    with open(_ALLOWED, "w") as f:
                        f.write(" ".join(_allowed_before))


class Netns:
    """A network namespace that exists for the duration of a with-block.

    ``congestion_control`` (benchmarks): the namespace's TCP uses it
    instead of the one it inherits from the machine."""

    def __init__(self, prefix: str = "lkltest", tag: str = "",
                 congestion_control: str | None = None) -> None:
        self.name = "-".join(p for p in (prefix, tag, str(os.getpid()), str(next(_counter))) if p)
        self.congestion_control = congestion_control
        self._undo = contextlib.ExitStack()

    def __enter__(self) -> Netns:
        netns.create(self.name)
        self._undo.callback(netns.remove, self.name)
        try:
            with self.ipr() as ipr:
                lo = ipr.link_lookup(ifname="lo")[0]
                ipr.link("set", index=lo, state="up")
            if self.congestion_control:
                self._undo.enter_context(_allowed_in_namespaces(self.congestion_control))
                self.sysctl("net.ipv4.tcp_congestion_control", self.congestion_control)
        except BaseException:
            self._undo.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        # Deleting the namespace deletes every device in it.
        self._undo.close()

    def ipr(self) -> NetNS:
        return NetNS(self.name)

    def exec_argv(self, argv: list[str], cpu: int | None = None) -> list[str]:
        """argv run inside the namespace (confined to host CPU ``cpu`` if given)."""
        pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
        return ["ip", "netns", "exec", self.name, *pin, *argv]

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Sockets created in this block belong to the namespace."""
        netns.pushns(self.name)
        try:
            yield
        finally:
            netns.popns()

    def _address(self, ipr: NetNS, index: int, cidr: str) -> None:
        addr, prefix = cidr.split("/")
        ipr.addr("add", index=index, address=addr, prefixlen=int(prefix),
                 # IPv6: usable at once, no duplicate address detection.
                 **({"flags": IFA_F_NODAD} if ":" in addr else {}))

    def address(self, ifname: str, cidr: str) -> None:
        """Put ``cidr`` on ``ifname`` and bring it up."""
        with self.ipr() as ipr:
            index = ipr.link_lookup(ifname=ifname)[0]
            self._address(ipr, index, cidr)
            ipr.link("set", index=index, state="up")

    def add_tap(self, name: str, *cidrs: str, mtu: int | None = None) -> int:
        """A persistent TAP device, up, with addresses; returns its index."""
        with self.ipr() as ipr:
            ipr.link("add", ifname=name, kind="tuntap", mode="tap")
            index = ipr.link_lookup(ifname=name)[0]
            if mtu:
                ipr.link("set", index=index, mtu=mtu)
            ipr.link("set", index=index, state="up")
            for cidr in cidrs:
                self._address(ipr, index, cidr)
            return index

    def add_veth(self, name: str, peer: str, *peer_cidrs: str) -> None:
        """A veth pair, both ends up; the addresses go on peer."""
        with self.ipr() as ipr:
            ipr.link("add", ifname=name, kind="veth", peer=peer)
            for ifname in (name, peer):
                ipr.link("set", index=ipr.link_lookup(ifname=ifname)[0],
                         state="up")
            index = ipr.link_lookup(ifname=peer)[0]
            for cidr in peer_cidrs:
                self._address(ipr, index, cidr)

    def add_veth_to(self, other: Netns, name: str, peer: str, cidr: str,
                    peer_cidr: str) -> None:
        """A veth pair from here (``name``, ``cidr``) to namespace ``other``
        (``peer``, ``peer_cidr``), both ends up."""
        with self.ipr() as ipr:
            ipr.link("add", ifname=name, kind="veth", peer=peer)
            ipr.link("set", index=ipr.link_lookup(ifname=peer)[0], net_ns_fd=other.name)
        self.address(name, cidr)
        other.address(peer, peer_cidr)

    def set_mtu(self, name: str, mtu: int) -> None:
        with self.ipr() as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname=name)[0], mtu=mtu)

    def run(self, argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(self.exec_argv(argv), capture_output=True,
                              text=True, timeout=timeout)

    def sysctl(self, name: str, value: str) -> None:
        """Set a per-namespace sysctl (dotted name) inside this namespace."""
        out = self.run(["sysctl", "-qw", f"{name}={value}"])
        if out.returncode:
            raise RuntimeError(f"sysctl {name}={value} in {self.name}: {out.stderr.strip()}")

    def read_sys(self, path: str) -> str:
        """A /sys file as seen from inside the namespace."""
        return self.run(["cat", path]).stdout.strip()


def _icmp_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ping(ns: Netns, addr: str, count: int = 3, timeout: float = 1.0,
         size: int = 56) -> int:
    """ICMP echo from inside ns (no ping binary needed); returns replies."""
    import select
    import socket
    import struct
    import time

    v6 = ":" in addr
    with ns.entered():
        sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET,
                             socket.SOCK_RAW,
                             socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    replies = 0
    with sock:
        for seq in range(count):
            payload = bytes(range(256)) * (size // 256 + 1)
            payload = payload[:size]
            kind = 128 if v6 else 8
            hdr = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
            # The kernel fills in ICMPv6 checksums itself.
            csum = 0 if v6 else _icmp_checksum(hdr + payload)
            sock.sendto(struct.pack("!BBHHH", kind, 0, csum, ident, seq) + payload,
                        (addr, 0))
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                if not select.select([sock], [], [], left)[0]:
                    break
                data = sock.recv(65536)
                icmp = data if v6 else data[(data[0] & 0xF) * 4:]
                rtype, _, _, rid, rseq = struct.unpack("!BBHHH", icmp[:8])
                if rtype == (129 if v6 else 0) and rid == ident and rseq == seq:
                    replies += 1
                    break
    return replies

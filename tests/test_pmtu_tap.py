"""Path MTU discovery through a real router (issue 15).

lkl talks TCP over a TAP to a host-kernel router (a namespace with
forwarding on) whose link towards the server is narrower (MTU 1300) than
both ends' own links (1500): the server advertises MSS 1460, lkl's
full-sized segments cannot pass, the router answers with ICMP
"fragmentation needed", and lkl must lower the connection's MSS and get
every byte through.  Everything lives in two namespaces the test makes
and deletes; addresses 10.200.30.0/24 and 10.200.31.0/24 only.
"""

from __future__ import annotations

import os
import textwrap

import pytest

from harness.netns import Netns
from harness.sink import with_sink

NBYTES = 1 << 20
PORT = 5400

CLIENT = textwrap.dedent(f"""
    import socket, lkl
    nic = lkl.Nic(lkl.Tap("pm0"), offload=lkl.Offload.LARGE_SEGMENTS)
    k = lkl.boot(nics=[nic])
    nic.up(); nic.add_address("10.200.30.2/24")
    k.add_route("default", via="10.200.30.1")
    s = k.socket(); s.settimeout(30)
    s.connect(("10.200.31.2", {PORT}))
    before = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
    s.sendall(b"x" * {NBYTES}); s.shutdown(socket.SHUT_WR)
    reply = b""
    while data := s.recv(64):
        reply += data
    after = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
    print(before, after, int(reply.split()[0]), k.snmp()["Icmp"]["InDestUnreachs"])
    k.halt()
""")


@pytest.mark.skipif(os.geteuid() != 0, reason="namespaces and TAP devices need root")
def test_frag_needed_from_a_router_lowers_the_mss() -> None:
    with Netns("lklpmtur") as router, Netns("lklpmtus") as server_ns:
        router.add_tap("pm0", "10.200.30.1/24")
        with router.ipr() as ipr:
            ipr.link("add", ifname="pmv0", kind="veth", peer="pmv1")
            ipr.link("set", index=ipr.link_lookup(ifname="pmv1")[0], net_ns_fd=server_ns.name)
            inner = ipr.link_lookup(ifname="pmv0")[0]
            ipr.link("set", index=inner, mtu=1300, state="up")
            ipr.addr("add", index=inner, address="10.200.31.1", prefixlen=24)
        with server_ns.ipr() as ipr:
            outer = ipr.link_lookup(ifname="pmv1")[0]
            ipr.link("set", index=outer, state="up")
            ipr.addr("add", index=outer, address="10.200.31.2", prefixlen=24)
            ipr.route("add", dst="10.200.30.0/24", gateway="10.200.31.1")
        assert router.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"]).returncode == 0

        out = with_sink(server_ns, "10.200.31.2", PORT, router, CLIENT)
        before, after, received, unreachables = map(int, out.split()[-4:])
        assert before >= 1400, before          # the server's MSS, less options
        assert after <= 1300 - 40, (before, after)
        assert received == NBYTES
        assert unreachables >= 1

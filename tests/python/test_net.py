"""Network devices from Python: lkl.Nic on TAP and pipe backends.

A kernel boots once per process, so each kernel runs in a child
interpreter.  TAP devices live in a network namespace the test creates
and deletes (tests/netns.py); the child enters it (pyroute2's
netns.setns) before it boots.  Addresses: 10.204.x.0/24 only.  Every
transfer is bounded in bytes and every wait in time.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
from pathlib import Path

import pytest
from helpers import in_netns, pipe_pair, run_ok

import lkl
from harness.netns import Netns

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.isolated

IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="TAP devices need root")
NBYTES = 4 << 20

def test_offload_flags():
    Off = lkl.Offload
    assert Off.CSUM == 1 and Off.GUEST_CSUM == 2 and Off.GUEST_TSO4 == 1 << 7
    assert Off.HOST_TSO6 == 1 << 12 and Off.MRG_RXBUF == 1 << 15
    assert Off.CHECKSUM == Off.CSUM | Off.GUEST_CSUM
    assert Off.LARGE_SEGMENTS == 0x9983 and Off.BIG_PACKETS == 0x1983
    assert Off.NONE == 0


def test_nic_argument_checks():
    a, b = lkl.Pipe.pair()
    with pytest.raises(TypeError):
        lkl.Nic("tap0")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        lkl.Nic(a, offload=1 << 40)
    with pytest.raises(ValueError):
        lkl.Nic(a, mac="zz:00:00:00:00:00")
    with pytest.raises(ValueError):
        lkl.Tap("x" * 20)
    with pytest.raises(ValueError):
        lkl.Nic(a, busy_poll_us=-1)
    a.close()
    b.close()


@needs_root
@pytest.mark.watchdog(150)
@pytest.mark.parametrize("preset", ["NONE", "LARGE_SEGMENTS"])
def test_tap_tcp_both_ways(preset):
    with Netns() as ns:
        ns.add_tap("t0", "10.204.1.1/24")
        out = in_netns(ns.name, f"""
            import os, lkl
            nic = lkl.Nic(lkl.Tap("t0"), offload=lkl.Offload.{preset},
                          mac="02:04:cc:01:00:02")
            k = lkl.boot(nics=[nic])
            assert k.nics == [nic]
            assert nic.features_offered == lkl.Offload.{preset}, nic.features_offered
            assert nic.features_negotiated == lkl.Offload.{preset}, nic.features_negotiated
            assert nic.mac == "02:04:cc:01:00:02", nic.mac
            nic.up()
            nic.add_address("10.204.1.2/24")
            tcp_both_ways(k, "10.204.1.1", "10.204.1.2", os.urandom({NBYTES}))
            st = nic.stats()
            assert st["kernel"]["rx_packets"] > 0 and st["kernel"]["tx_packets"] > 0, st
            assert st["device"]["rx_malformed"] == 0, st
            assert st["device"]["tx_packets"] > 0, st
            k.halt()
            print("OK", nic.name, nic.ifindex)
        """)
        assert out.startswith("OK eth0")


@needs_root
@pytest.mark.watchdog(150)
@pytest.mark.parametrize("busy_poll_us", [0, 50])
def test_direct_rx_in_direct_mode(busy_poll_us: int):
    with Netns() as ns:
        ns.add_tap("t5", "10.204.5.1/24")
        out = in_netns(ns.name, f"""
            import os, lkl
            nic = lkl.Nic(lkl.Tap("t5"), offload=lkl.Offload.LARGE_SEGMENTS, direct_rx=True,
                          busy_poll_us={busy_poll_us})
            assert nic.direct_rx
            k = lkl.boot(nics=[nic], syscall_mode="direct", cmdline="nohz=off")
            nic.up()
            nic.add_address("10.204.5.2/24")
            tcp_both_ways(k, "10.204.5.1", "10.204.5.2", os.urandom({NBYTES}))
            st = nic.stats()["device"]
            assert st["rx_direct"] > 0 and st["rx_dropped"] == 0, st
            assert st["busy_poll_hits"] <= st["busy_polls"], st
            if not {busy_poll_us}:
                assert st["busy_polls"] == 0, st
            nic.set_busy_poll(0)   # and back: the poller takes receive again
            tcp_both_ways(k, "10.204.5.1", "10.204.5.2", os.urandom(1 << 16))
            k.halt()
            print("OK")
        """)
        assert out.strip() == "OK"


@needs_root
@pytest.mark.watchdog(150)
def test_hot_added_nic_carries_traffic():
    with Netns() as ns:
        ns.add_tap("t1", "10.204.2.1/24")
        out = in_netns(ns.name, f"""
            import os, lkl
            k = lkl.boot()
            assert k.nics == []
            nic = k.add_nic(lkl.Tap("t1"), offload=lkl.Offload.CHECKSUM)
            assert k.nics == [nic]
            assert nic.features_negotiated == lkl.Offload.CHECKSUM
            nic.set_mtu(1400)
            assert k.read_text(f"/sys/class/net/{{nic.name}}/mtu").strip() == "1400"
            nic.up()
            nic.add_address("10.204.2.2/24")
            nic.add_address("fd00:204:2::2/64")
            tcp_both_ways(k, "10.204.2.1", "10.204.2.2", os.urandom({NBYTES}))
            nic.set_kernel_offloads(gso=False, gro=False, tso=False, tx_csum=False)
            tcp_both_ways(k, "10.204.2.1", "10.204.2.2", os.urandom(1 << 20))
            nic.down()
            k.halt()
            print("OK")
        """)
        assert out.strip() == "OK"


@needs_root
@pytest.mark.watchdog(150)
@pytest.mark.parametrize("preset", ["NONE", "LARGE_SEGMENTS"])
def test_raw_socket_backend_on_a_veth(preset):
    with Netns() as ns:
        ns.add_veth("vlkl4", "vhost4", "10.204.4.1/24")
        out = in_netns(ns.name, f"""
            import errno, os, lkl
            try:
                lkl.Nic(lkl.RawSocket("nosuch0"))
            except OSError as e:
                assert e.errno == errno.ENODEV, e
            else:
                raise AssertionError("a raw socket on a missing interface")
            nic = lkl.Nic(lkl.RawSocket("vlkl4"), offload=lkl.Offload.{preset})
            k = lkl.boot(nics=[nic])
            assert nic.features_negotiated == lkl.Offload.{preset}, nic.features_negotiated
            nic.up()
            nic.add_address("10.204.4.2/24")
            tcp_both_ways(k, "10.204.4.1", "10.204.4.2", os.urandom({NBYTES}))
            st = nic.stats()
            assert st["device"]["rx_packets"] > 0 and st["device"]["tx_packets"] > 0, st
            k.halt()
            print("OK", repr(lkl.RawSocket("vlkl4")))
        """)
        assert out.startswith("OK")


@pytest.mark.watchdog(120)
def test_pipe_between_two_kernels():
    outs = pipe_pair("10.204.9", NBYTES, seed=7)
    want = hashlib.sha256(random.Random(7).randbytes(NBYTES)).hexdigest()
    assert outs[0][:2] == [want, str(NBYTES)]
    assert outs[1][:2] == [want, str(NBYTES)]


def test_route_neighbor_qdisc():
    out = run_ok("""
        import lkl
        from lkl import net, tc
        a, b = lkl.Pipe.pair()
        nic = lkl.Nic(a)
        k = lkl.boot(nics=[nic])
        nic.up()
        nic.add_address("10.204.5.2/24")
        k.add_route("10.204.6.0/24", via="10.204.5.1")
        k.add_route("10.204.7.0/24", dev=nic)
        k.add_route("default", via="10.204.5.1", dev=nic.name)
        routes = [line.split() for line in k.read_text("/proc/net/route").splitlines()[1:]]
        table = {(r[0], r[1], r[2], r[7]) for r in routes}
        assert ("eth0", "0006CC0A", "0105CC0A", "00FFFFFF") in table, routes
        assert ("eth0", "0007CC0A", "00000000", "00FFFFFF") in table, routes
        assert ("eth0", "00000000", "0105CC0A", "00000000") in table, routes
        k.add_neighbor("10.204.5.9", "02:04:cc:05:00:09", nic)
        arp = k.read_text("/proc/net/arp")
        assert any(line.split()[:1] == ["10.204.5.9"] and "02:04:cc:05:00:09" in line
                   and line.split()[-1] == "eth0" for line in arp.splitlines()), arp
        default = tc.qdiscs(k, nic)
        for kind in ("fq", "fq_codel", "pfifo_fast"):
            k.set_qdisc(nic, kind)
            assert tc.qdiscs(k, nic) == [(nic.ifindex, 0xFFFFFFFF, kind)], tc.qdiscs(k, nic)
        k.del_qdisc(nic)
        assert tc.qdiscs(k, nic) == default == [(nic.ifindex, 0xFFFFFFFF, "fq_codel")]
        try:
            k.set_qdisc(nic, "no_such_qdisc")
        except OSError:
            pass
        else:
            raise AssertionError("unknown qdisc accepted")
        k.halt()
        print("OK")
    """)
    assert out.strip() == "OK"


def test_nic_freed_after_halt_only():
    out = run_ok("""
        import lkl
        a, b = lkl.Pipe.pair()
        nic = lkl.Nic(a)
        k = lkl.boot(nics=[nic])
        assert nic._dev.free() < 0   # -EBUSY while the kernel runs
        k.halt()
        assert nic._dev.free() == 0  # already freed by halt
        try:
            nic.up()
        except lkl.KernelError:
            print("OK")
    """)
    assert out.strip() == "OK"


def test_kernel_offloads_all_off_and_clear_refusals():
    # The paper's baseline: a device without offloads and every kernel
    # offload off.  virtio_net keeps rx_csum on, which without GUEST_CSUM
    # changes nothing (no frame is ever marked checksum-valid): no error.
    # What must change and cannot is an OSError naming the feature.
    out = run_ok("""
        import json, lkl
        def outcome(nic, **features):
            try:
                nic.set_kernel_offloads(**features)
                return "ok"
            except OSError as e:
                return [e.errno, str(e)]
        a, b = lkl.Pipe.pair()
        plain = lkl.Nic(a, offload=lkl.Offload.NONE)
        k = lkl.boot(nics=[plain])
        off = dict(gso=False, gro=False, tso=False, rx_csum=False, tx_csum=False)
        got = {"all off": outcome(plain, **off), "again": outcome(plain, **off),
               "tx_csum": outcome(plain, tx_csum=True), "tso": outcome(plain, tso=True)}
        c, d = lkl.Pipe.pair()
        csum = k.add_nic(c, offload=lkl.Offload.CHECKSUM)
        got["csum tx off"] = outcome(csum, tx_csum=False, gro=False)
        got["csum tx on"] = outcome(csum, tx_csum=True)
        got["rx_csum"] = outcome(csum, rx_csum=False)  # here checksums are marked valid
        k.halt()
        print(json.dumps(got))
    """)
    got = json.loads(out)
    assert got["all off"] == got["again"] == got["csum tx off"] == got["csum tx on"] == "ok", got
    for case in ("tx_csum", "tso", "rx_csum"):
        err, text = got[case]
        assert err == errno.EOPNOTSUPP and case in text, got


def test_ingress_ifb_names_are_unique_for_long_interface_names():
    from lkl import tc

    assert tc.ifb_name("eth0", 2) == "ifb4eth0"
    assert tc.ifb_name("longname-abc-1", 7) != tc.ifb_name("longname-abc-2", 8)
    out = run_ok("""
        import lkl
        from lkl import tc
        from lkl.net import rtnl
        k = lkl.boot()
        devs = ["longname-abc-1", "longname-abc-2"]   # the same 15-character prefix
        for name in devs:
            rtnl.new_link(k, name, "ifb")
            rtnl.set_up(k, name)
            k.set_qdisc(name, "netem delay 1ms", ingress=True)
        ifbs = {tc.ifb_name(name, rtnl.ifindex(k, name)) for name in devs}
        assert len(ifbs) == 2 and ifbs <= set(k.listdir("/sys/class/net")), ifbs
        for name in devs:
            assert tc.qdisc_stats(k, name, ingress=True)["kind"] == "netem"
        k.del_qdisc(devs[0], ingress=True)
        assert tc.qdisc_stats(k, devs[1], ingress=True)["kind"] == "netem"   # still there
        k.halt()
        print("OK")
    """)
    assert out.strip() == "OK"

"""TCP through a faulty network: netem loss, reordering, duplication and
corruption, and the transfers still arrive byte-exact.

The host kernel of these machines has no sch_netem (modprobe finds no
module), so the faults come from the netem qdisc of the kernel under test
itself, on both paths: its egress qdisc hits what the kernel sends, and an
ingress qdisc (an IFB device fed by a mirred redirect, see lkl.tc) hits
what arrives before its TCP sees it.  The host's TCP on the other end of
the TAP is the real host stack.  TAPs live in a namespace the test creates
and deletes; addresses 10.204.x.0/24 only; every transfer is bounded in
bytes and every wait in time.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from pathlib import Path

import pytest
from helpers import in_netns, pipe_pair, run_ok

from harness.netns import Netns
from lkl import tc

ROOT = Path(__file__).resolve().parents[2]

IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="TAP devices need root")
FAULT_BYTES = 64 << 20
# The fault mix; netem reorders by delaying the other 75 %.
NETEM = "netem delay 200us loss 5% reorder 25% duplicate 1% corrupt 1% limit 10000"


def test_qdisc_specs_parse_like_tc() -> None:
    kind, opts = tc.parse_qdisc(NETEM)
    assert kind == "netem"
    assert opts == {"delay": 200, "loss": 5.0, "prob_reorder": 25.0, "duplicate": 1.0,
                    "prob_corrupt": 1.0, "limit": 10000}
    assert tc.parse_qdisc("netem delay 1ms 100us reorder 10% 50% loss random 2") == (
        "netem", {"delay": 1000, "jitter": 100, "prob_reorder": 10.0, "corr_reorder": 50.0,
                  "loss": 2.0, "limit": 1000})
    assert tc.parse_qdisc("netem rate 100mbit") == ("netem", {"rate": 12_500_000,
                                                             "limit": 1000})
    assert tc.parse_qdisc("pfifo limit 10") == ("pfifo", {"limit": 10})
    assert tc.parse_qdisc("  fq_codel ") == ("fq_codel", {})


@pytest.mark.parametrize("spec", [
    "", "Netem", "netem loss", "netem loss 101%", "netem delay fast", "netem bogus 1",
    "netem reorder 25%",  # reordering needs a delay
    "fq_codel limit 5", "pfifo limit -1", "pfifo depth 3",
])
def test_bad_qdisc_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        tc.parse_qdisc(spec)


def test_qdisc_spec_must_be_text() -> None:
    with pytest.raises(TypeError):
        tc.parse_qdisc(5)  # type: ignore[arg-type]


@pytest.mark.isolated
def test_egress_and_ingress_qdiscs_in_the_kernel() -> None:
    """On a fresh kernel's loopback: an egress netem, then an ingress qdisc
    through ifb4lo, visible in the qdisc dump with moving counters."""
    out = run_ok("""
        import time, lkl
        from helpers import assert_refuses
        from lkl import tc
        k = lkl.boot()
        k.set_qdisc("lo", "netem delay 1ms limit 500")
        k.set_qdisc("lo", "netem loss 0%", ingress=True)
        k.set_qdisc("lo", "pfifo limit 100", ingress=True)  # replaces the IFB's root
        ifb = int(k.read_text("/sys/class/net/ifb4lo/ifindex"))
        assert int(k.read_text("/sys/class/net/ifb4lo/flags"), 16) & 1  # up
        kinds = set(tc.qdiscs(k))
        assert (1, 0xFFFFFFFF, "netem") in kinds, kinds
        assert (1, 0xFFFFFFF1, "ingress") in kinds, kinds
        assert (ifb, 0xFFFFFFFF, "pfifo") in kinds, kinds
        with k.socket(type=lkl.SOCK_DGRAM) as s:  # through lo: egress, then ingress
            s.sendto(b"x" * 100, ("127.0.0.1", 9))
        deadline = time.monotonic() + 5
        while tc.qdisc_stats(k, "lo", ingress=True)["packets"] == 0:
            assert time.monotonic() < deadline, tc.qdisc_stats(k, "lo", ingress=True)
            time.sleep(0.01)
        st = tc.qdisc_stats(k, "lo")
        assert st["kind"] == "netem" and st["packets"] >= 1, st
        # Undo both; undoing again is no error.
        for _ in range(2):
            k.del_qdisc("lo")
            k.del_qdisc("lo", ingress=True)
        kinds = set(tc.qdiscs(k, "lo"))
        assert kinds == {(1, 0xFFFFFFFF, "noqueue")}, kinds
        assert "ifb4lo" not in k.listdir("/sys/class/net")
        with k.socket(type=lkl.SOCK_DGRAM) as s:  # lo still carries traffic
            s.bind(("127.0.0.1", 0))
            s.sendto(b"ok", s.getsockname())
            assert s.recv(10) == b"ok"
        assert_refuses(lambda bad: k.set_qdisc("lo", bad),
                       (("netem bogus 1", ValueError), ("no_such_qdisc", FileNotFoundError)))
        k.halt()
        print("OK")
    """)
    assert out.strip() == "OK"


@needs_root
@pytest.mark.isolated
@pytest.mark.watchdog(240)
@pytest.mark.parametrize("preset", ["NONE", "LARGE_SEGMENTS"])
def test_tap_transfers_survive_netem_faults(preset: str) -> None:
    with Netns() as ns:
        ns.add_tap("t8", "10.204.8.1/24")
        out = in_netns(ns.name, f"""
            import os, lkl
            from lkl import tc
            nic = lkl.Nic(lkl.Tap("t8"), offload=lkl.Offload.{preset})
            k = lkl.boot(memory="256M", nics=[nic])
            nic.up()
            nic.add_address("10.204.8.2/24")
            # GRO validates checksums before the ingress qdisc: off, so
            # that netem's corruption is caught as on the wire.
            nic.set_kernel_offloads(gro=False)
            k.set_qdisc(nic, {NETEM!r})
            k.set_qdisc(nic, {NETEM!r}, ingress=True)
            before = k.snmp()
            tcp_both_ways(k, "10.204.8.1", "10.204.8.2", os.urandom({FAULT_BYTES}), timeout=90)
            after = k.snmp()
            d = lambda g, n: after[g][n] - before[g][n]
            out, inq = tc.qdisc_stats(k, nic), tc.qdisc_stats(k, nic, ingress=True)
            # netem really dropped (loss) on both paths, and TCP repaired it:
            # retransmissions out, out-of-order and duplicate data in.
            assert out["drops"] > 0 and inq["drops"] > 0, (out, inq)
            assert d("Tcp", "RetransSegs") > 0, after["Tcp"]
            assert d("TcpExt", "TCPOFOQueue") > 0, after["TcpExt"]
            assert d("TcpExt", "TCPDSACKOldSent") + d("TcpExt", "TCPDSACKOfoSent") > 0
            # Corrupted segments were caught by the checksum, not delivered.
            assert d("Tcp", "InCsumErrors") > 0, after["Tcp"]
            print("OK", out["drops"], inq["drops"], d("Tcp", "RetransSegs"),
                  d("Tcp", "InCsumErrors"), d("Ip", "InHdrErrors"))
            k.halt()
        """, timeout=220)
        assert out.startswith("OK"), out
        print(preset, out)


@pytest.mark.watchdog(200)
def test_two_kernels_over_a_faulty_pipe() -> None:
    """Both kernels lose, reorder, duplicate and corrupt what they send:
    data one way, ACKs the other.  Rootless."""
    outs = pipe_pair("10.204.10", FAULT_BYTES, seed=11, spec=NETEM, timeout=60, wait=180,
                     memory="256M")
    want = hashlib.sha256(random.Random(11).randbytes(FAULT_BYTES)).hexdigest()
    (h_srv, n_srv, drops_srv, _), (h_cli, n_cli, drops_cli, retrans) = outs
    assert h_srv == h_cli == want
    assert int(n_srv) == int(n_cli) == FAULT_BYTES
    assert int(drops_srv) > 0 and int(drops_cli) > 0 and int(retrans) > 0


@pytest.mark.watchdog(120)
def test_pipe_pair_timeout_bounds_progress_not_the_transfer() -> None:
    """A link that never stops but is slow (netem rate): the transfer takes
    three times the pair's timeout and passes.  The timeout is for stalls;
    the faulty pipe's 64 MiB take about a minute, mostly TCP's 200 ms
    retransmission timeouts, and used to fail a 60 s bound on the whole
    sendall now and then."""
    nbytes, timeout = 6 << 20, 2.0
    t0 = time.monotonic()
    outs = pipe_pair("10.204.11", nbytes, seed=5, spec="netem rate 8mbit", timeout=timeout,
                     wait=90)
    elapsed = time.monotonic() - t0
    want = hashlib.sha256(random.Random(5).randbytes(nbytes)).hexdigest()
    assert [out[:2] for out in outs] == [[want, str(nbytes)]] * 2
    assert elapsed > 3 * timeout, elapsed  # 6 MiB at 8 Mbit/s: 6.3 s at least


@pytest.mark.watchdog(120)
def test_a_stalled_pipe_pair_fails_at_once_with_both_kernels_state() -> None:
    """Nothing gets through (netem loss 100%): the client's connect times
    out, and the error is the client's, with its socket, TCP counters and
    device counters; the server, interrupted instead of waiting out its own
    timeout, adds its state."""
    t0 = time.monotonic()
    with pytest.raises(AssertionError) as err:
        pipe_pair("10.204.12", 1 << 20, seed=1, spec="netem loss 100%", timeout=2, wait=60)
    elapsed = time.monotonic() - t0
    text = str(err.value)
    assert text.startswith("client exit 1:\nclient timed out after 0 bytes:"), text
    assert "local_address" in text and "'TCPTimeouts': " in text and "'tx_packets': " in text
    assert "TimeoutError" in text and "server interrupted after 0 bytes:" in text, text
    assert elapsed < 30, elapsed  # not the server's wait of 60 s

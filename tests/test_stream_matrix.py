"""The TCP_STREAM offload matrix (bench/tcp_stream.py, the paper's Figure 7)
as tests: each row of the matrix moves 64 MiB intact over a TAP, in both
directions, with the features the row claims, and large segments really
travel large (and the baseline's really do not).

The TAP lives in a namespace each test creates and deletes (tests/netns.py);
addresses are 10.200.7.0/24 there only.  Every transfer is bounded in
bytes and time, and every test has a timeout.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from harness.netns import Netns, machine_congestion_control
from harness.tcp_stream import BIN, ROWS, Proc  # the matrix's own rows

ROOT = Path(__file__).resolve().parent.parent

NBYTES = 64 << 20
HOST, LKL = "10.200.7.1", "10.200.7.2"
# What each preset must negotiate with the kernel's driver: the spec's
# bits, written out here rather than taken from the code under test.
NEGOTIATED = {
    "NONE": 0x0,
    "CHECKSUM": 0x3,              # CSUM, GUEST_CSUM
    "LARGE_SEGMENTS": 0x9983,     # + GUEST_TSO4/6, HOST_TSO4/6, MRG_RXBUF
    "BIG_PACKETS": 0x1983,        # the same without MRG_RXBUF
}
ETH_FRAME_MAX = 1514              # a 1500-byte MTU frame, no FCS
MSS = 1460
LARGE = 4 * ETH_FRAME_MAX         # "far above the MTU"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="TAP needs root")


@pytest.fixture(scope="module", autouse=True)
def program() -> None:
    subprocess.run(["make", "-s", "-C", str(ROOT / "bench" / "native"),
                    f"BUILD={ROOT / 'build'}", str(BIN)], check=True, timeout=300)


def transfer(row, direction: str) -> tuple[dict, dict, str]:
    """64 MiB of a deterministic stream over a TAP; returns the lkl and
    the host side's results and the TAP's TSO switch as the host saw it."""
    with Netns("lklstream") as ns:
        ns.add_tap("st0", f"{HOST}/24")
        args = [x for k, v in row.host.items() for x in (k, v)]
        subprocess.run(ns.exec_argv(["ethtool", "-K", "st0", *args]), check=True,
                       capture_output=True, timeout=10)
        common = ["--hash", "--bytes", str(NBYTES), "--seconds", "30", "--msg", "65536"]
        lkl = ["--tap", "st0", "--ip", f"{LKL}/24", "--offload", row.offload,
               *[x for k, v in row.kernel.items() for x in (f"--{k}", v)]]
        if direction == "lkl_to_host":
            sink = Proc(ns.exec_argv([str(BIN), "host-sink", HOST, "5001", *common]))
            send_argv = [str(BIN), "lkl-send", HOST, "5001", *lkl, *common]
        else:
            sink = Proc(ns.exec_argv([str(BIN), "lkl-sink", LKL, "5001", *lkl, *common]))
            send_argv = [str(BIN), "host-send", LKL, "5001", *common]
        send = None
        try:
            sink.ready_pid(30)
            send = Proc(ns.exec_argv(send_argv))
            send.ready_pid(30)
            got, sent = sink.result(60), send.result(60)
            tso = ns.run(["ethtool", "-k", "st0"]).stdout
            sink.finish()
            send.finish()
        finally:
            sink.kill()
            if send:
                send.kill()
    tap_tso = next((line.split(": ")[1].split()[0] for line in tso.splitlines()
                    if line.strip().startswith("tcp-segmentation-offload:")), "?")
    assert got["bytes"] == sent["bytes"] == NBYTES
    assert got["sha256"] == sent["sha256"], "the stream arrived changed"
    lkl_side, host_side = (sent, got) if sent["stack"] == "lkl" else (got, sent)
    return lkl_side, host_side, tap_tso


@pytest.mark.timeout(60)
@pytest.mark.parametrize("direction", ["lkl_to_host", "host_to_lkl"])
@pytest.mark.parametrize("row", ROWS, ids=[r.key for r in ROWS])
def test_row_moves_64mib_intact_with_its_features(row, direction: str) -> None:
    lkl, _, tap_tso = transfer(row, direction)
    info, dev, d = lkl["lkl"], lkl["device"], lkl["derived"]
    print(f"{row.key} {direction}: {lkl['gbps']:.2f} Gbit/s with SHA-256, "
          + json.dumps(d))

    # The features the row claims, on all three layers.
    assert int(info["negotiated"], 16) == NEGOTIATED[row.offload]
    k = info["kernel_offloads"]
    assert k["gro"] == (row.kernel["gro"] == "on")
    assert k["gso"] == (row.kernel["gso"] == "on" and row.offload != "NONE"), \
        "software GSO needs scatter-gather, which only comes with CSUM"
    assert k["tx_csum"] == (row.offload != "NONE")
    assert k["tso"] == (row.kernel.get("tso") == "on")
    assert tap_tso == ("on" if NEGOTIATED[row.offload] & 0x80 else "off"), \
        "the TAP takes super-frames from the host only for GUEST_TSO4"
    assert dev["rx_dropped"] == dev["tx_dropped"] == dev["rx_malformed"] == 0

    large = row.offload in ("LARGE_SEGMENTS", "BIG_PACKETS")
    if direction == "lkl_to_host":
        # OutSegs counts MSS-sized segments: per frame, the TSO factor.
        frame, per_frame = d["avg_tx_frame"], d["tcp_out_segs_per_tx_frame"]
        if large:
            assert frame > LARGE and per_frame > 4
        else:
            assert frame <= ETH_FRAME_MAX and per_frame <= 1.0
    else:
        # InSegs counts skbs TCP took in: bytes per InSeg is the size after
        # the device (host GSO frames) and GRO.
        frame = d["avg_rx_frame"]
        per_seg = lkl["bytes"] / d["tcp_in_segs"]
        if large:
            assert frame > LARGE and per_seg > LARGE
        else:
            assert frame <= ETH_FRAME_MAX and dev["rx_oversize"] == 0
        if row.key == "baseline":
            assert per_seg <= MSS, "GRO is off: TCP sees every frame"


@pytest.mark.timeout(60)
def test_a_row_without_offloads_after_large_segments_on_one_tap() -> None:
    """A persistent TAP keeps the offloads its last user set: the next
    device, offering none, must turn them off, or the host would hand it
    super-frames it cannot take."""
    def tap_tso(ns) -> str:
        out = ns.run(["ethtool", "-k", "st0"]).stdout
        return next(line.split(": ")[1].split()[0] for line in out.splitlines()
                    if line.startswith("tcp-segmentation-offload:"))

    with Netns("lklstream") as ns:
        ns.add_tap("st0", f"{HOST}/24")
        for offload, tso in (("LARGE_SEGMENTS", "on"), ("NONE", "off")):
            p = Proc(ns.exec_argv([str(BIN), "lkl-sink", LKL, "5001", "--tap", "st0",
                                   "--ip", f"{LKL}/24", "--offload", offload, "--sync"]))
            try:
                p.ready_pid(30)
                assert tap_tso(ns) == tso
            finally:
                p.kill()


def pair_argv(offload: str, *args: str) -> list[str]:
    return [str(BIN), "lkl-pair", "10.200.8.1", "5001", "--ip", "10.200.8.1/24",
            "--peer-ip", "10.200.8.2/24", "--offload", offload, *args]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("queue", ["128", "256"])
@pytest.mark.parametrize("offload", ["LARGE_SEGMENTS", "BIG_PACKETS"])
def test_large_segments_at_full_speed_do_not_stall(offload: str, queue: str) -> None:
    """At full speed the receiving ring runs short of room for a 64 KiB
    frame while some buffers are still posted.  The device then waits for
    the driver to post more; that notification was once lost (EVENT_IDX
    asked for it at the wrong index) and every such run stalled for good.
    Two kernels over the pipe, no hashing, so the ring does run short."""
    p = Proc(pair_argv(offload, "--queue", queue, "--seconds", "2", "--msg", "65536",
                       "--mode", "direct", "--nohz-off"))
    try:
        got = [p.result(30), p.result(30)]
        assert p.proc.wait(timeout=30) == 0
    finally:
        p.kill()
    assert got[0]["bytes"] == got[1]["bytes"] > 0


@pytest.mark.timeout(30)
def test_a_ring_too_short_for_mergeable_large_segments_is_refused() -> None:
    """Below 128 entries the driver never posts room for a 64 KiB frame
    with mergeable buffers: the device refuses such a ring up front."""
    proc = subprocess.run(pair_argv("LARGE_SEGMENTS", "--queue", "64", "--seconds", "1"),
                          capture_output=True, text=True, timeout=20)
    assert proc.returncode != 0
    assert "lkl_netdev_create" in proc.stderr and "Invalid argument" in proc.stderr


def test_a_benchmark_namespace_pins_its_congestion_control():
    """bench/ senders use one congestion control whatever the machine's
    default is (bbr without fq paces in hrtimers: a fifth of cubic here)."""
    machine = machine_congestion_control()
    allowed = Path("/proc/sys/net/ipv4/tcp_allowed_congestion_control")
    allowed_before = allowed.read_text()
    available = Path("/proc/sys/net/ipv4/tcp_available_congestion_control").read_text().split()
    # One the machine does not allow namespaces by default, if it has one.
    others = sorted((c for c in available if c != machine),
                    key=lambda c: c in allowed_before.split())
    assert others, available
    other = others[0]
    with Netns("lklstream", congestion_control=other) as ns:
        assert ns.run(["cat", "/proc/sys/net/ipv4/tcp_congestion_control"]).stdout.strip() \
            == other
        with ns.entered():
            s = socket.socket()
        with s:
            got = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16)
        assert got.rstrip(b"\0").decode() == other
    assert machine_congestion_control() == machine
    assert allowed.read_text() == allowed_before

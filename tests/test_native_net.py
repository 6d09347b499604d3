"""virtio-net devices of the kernel library, from C (tests/native/net_*.c).

Rootless: two kernels joined by a pipe, malformed frames from a pipe.
As root (CI): TAP and veth devices, each inside a network namespace the
test creates and deletes (tests/netns.py); addresses are 10.200.x.0/24
and fd00:200:x::/64 there only.  Every transfer is bounded in bytes and
every wait in time.

The per-preset TAP and pipe transfers move 256 MiB each way
(LKL_NET_FULL_BYTES); the other TCP tests move a fraction of
LKL_NET_BYTES (16 MiB).
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import socket
import subprocess
from typing import NoReturn

import pytest
from native_programs import BIN, build

from harness.lines import LineProcess

PEER = BIN / "net_peer"
MALFORMED = BIN / "net_malformed"
PIPE_TAIL = BIN / "net_pipe_tail"
POLL_ERRORS = BIN / "net_poll_errors"
UNIT_BACKENDS = BIN / "unit_backends"
NBYTES = int(os.environ.get("LKL_NET_BYTES", 16 << 20))
FULL_BYTES = int(os.environ.get("LKL_NET_FULL_BYTES", 256 << 20))
# The C side's deterministic stream needs no agreement: each end hashes
# what it sent or got, and the hashes must match.
PRESETS = ["none", "checksum", "large", "big"]
OFFLOAD_BITS = {"none": 0x0, "checksum": 0x3, "large": 0x9983, "big": 0x1983}
# <linux/if_packet.h>; the socket module has no names for them.
SOL_PACKET = 263
PACKET_QDISC_BYPASS = 20
IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="TAP/veth need root")


@pytest.fixture(scope="session", autouse=True)
def native_programs() -> None:
    build(PEER, MALFORMED, PIPE_TAIL, POLL_ERRORS, UNIT_BACKENDS)


class Peer(LineProcess):
    """A net_peer process."""

    def fail(self, message: str) -> NoReturn:
        pytest.fail(message)

    def send_line(self) -> None:
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 60) -> None:
        self.expect("done", timeout)
        assert self.proc.wait(timeout=timeout) == 0


def fields(line: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S+)", line))


def host_send(sock: socket.socket, nbytes: int) -> str:
    """Send nbytes of seeded random data; returns its SHA-256."""
    rng = random.Random(nbytes)
    h = hashlib.sha256()
    left = nbytes
    while left:
        chunk = rng.randbytes(min(left, 1 << 20))
        sock.sendall(chunk)
        h.update(chunk)
        left -= len(chunk)
    sock.shutdown(socket.SHUT_WR)
    sock.recv(1)  # the peer's close: everything arrived
    sock.close()
    return h.hexdigest()


def host_sink(conn: socket.socket) -> tuple[int, str]:
    h = hashlib.sha256()
    n = 0
    buf = bytearray(1 << 20)
    while k := conn.recv_into(buf):
        h.update(memoryview(buf)[:k])
        n += k
    conn.close()
    return n, h.hexdigest()


def peer_argv(ns, backend: list[str], *args: str) -> list[str]:
    argv = [str(PEER), *backend, *args]
    return ns.exec_argv(argv) if ns else argv


def tcp_both_ways(ns, peer: Peer, lkl_addr: str, host_addr: str,
                  nbytes: int = NBYTES) -> None:
    """net_peer ran with: tcp-sink LKL 5001 tcp-send HOST 5002 nbytes."""
    family = socket.AF_INET6 if ":" in host_addr else socket.AF_INET
    with ns.entered():
        srv = socket.socket(family)
        srv.bind((host_addr, 5002))
        srv.listen()
        srv.settimeout(60)
        peer.expect("listening")
        cli = socket.create_connection((lkl_addr, 5001), timeout=60)
    digest = host_send(cli, nbytes)
    sink = fields(peer.expect("sink", 120))
    assert int(sink["bytes"]) == nbytes and sink["sha256"] == digest
    conn, _ = srv.accept()
    conn.settimeout(60)
    srv.close()
    n, digest = host_sink(conn)
    sent = fields(peer.expect("sent", 120))
    assert n == nbytes == int(sent["bytes"]) and sent["sha256"] == digest
    peer.host_to_lkl_gbps = float(sink["gbps"])
    peer.lkl_to_host_gbps = float(sent["gbps"])


def host_listener(ns, addr: str, port: int) -> socket.socket:
    """A listening host socket inside namespace ns (30 s accept timeout)."""
    with ns.entered():
        srv = socket.socket()
    srv.bind((addr, port))
    srv.listen()
    srv.settimeout(30)
    return srv


def halt_while_receiving(srv: socket.socket, peer: Peer) -> None:
    """Accept net_peer's halt-sending connection and read from it until
    the kernel halts under it: the halt returns in time, the device is
    freed and the process exits cleanly."""
    conn, _ = srv.accept()
    conn.settimeout(5)
    got = 0
    try:
        while got < 1 << 30 and (k := conn.recv(1 << 20)):
            got += len(k)
    except (TimeoutError, ConnectionResetError):
        pass
    halted = fields(peer.expect("halted", 30))
    assert halted["ret"] == "0" and float(halted["ms"]) < 5000
    peer.expect("freed", 30)
    assert peer.proc.wait(timeout=30) == 0
    assert got > 0


# ---- rootless ---------------------------------------------------------------


def test_malformed_frames_from_a_pipe_are_dropped_and_counted() -> None:
    proc = subprocess.run([str(MALFORMED)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for check in ("malformed frames dropped and counted",
                  "still answers ARP and echo",
                  "super-frame segmented for a driver without TSO",
                  "halt and free"):
        assert f"ok {check}" in proc.stdout


def test_backends_consume_what_they_refuse() -> None:
    """The receive contract on the pipe, TAP and raw backends' own code
    (no kernel): -EMSGSIZE and -EBADMSG consume the frame, also with
    more buffers than a backend takes; a short header is -EBADMSG."""
    proc = subprocess.run([str(UNIT_BACKENDS)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("pipe", "tap", "raw"):
        assert f"ok {name} backend" in proc.stdout


def test_stream_pipe_sends_a_frames_tail_once_writable() -> None:
    """A frame only partly written to a stream socket goes out whole as
    soon as the socket is writable, without waiting for another frame."""
    proc = subprocess.run([str(PIPE_TAIL)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok a frame's tail goes out once the socket is writable" in proc.stdout
    assert "ok halt and free" in proc.stdout


def test_epoll_failures_are_counted_logged_and_never_spin() -> None:
    """The device's epoll fds replaced under it: a serving direct_rx
    thread and then the poller each log once and count; the waiting call
    completes, transmit goes on, halt and free work."""
    proc = subprocess.run([str(POLL_ERRORS)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for check in ("a serving thread whose epoll fails waits, counted, and its call completes",
                  "a failed poller is counted and transmit does not wait for it",
                  "halt and free"):
        assert f"ok {check}" in proc.stdout
    assert proc.stderr.count("lkl: direct_rx: epoll_wait failed") == 1, proc.stderr
    assert proc.stderr.count("poller: epoll_wait failed") == 1, proc.stderr


def pipe_transfer(kind: int, off_a: str, off_b: str, nbytes: int = NBYTES,
                  extra: tuple[str, ...] | list[str] = ()) -> dict[str, str]:
    """Two kernels over a socket pair: the sender's bytes reach the sink
    whole.  Returns the sink's device counters at its end."""
    a, b = socket.socketpair(socket.AF_UNIX, kind)
    sink = sender = None
    try:
        sink = Peer(peer_argv(None, ["--pipe-fd", str(a.fileno())], *extra, "--offload",
                              off_a, "--ip", "10.200.9.1/24", "tcp-sink",
                              "10.200.9.1", "5001"), pass_fds=(a.fileno(),))
        # The sender starts once the sink can answer its ARP at once.
        sink.expect("listening")
        sender = Peer(peer_argv(None, ["--pipe-fd", str(b.fileno())], *extra,
                                "--offload", off_b, "--ip", "10.200.9.2/24", "tcp-send",
                                "10.200.9.1", "5001", str(nbytes)),
                      pass_fds=(b.fileno(),))
        a.close()
        b.close()
        got = fields(sink.expect("sink", 120))
        sent = fields(sender.expect("sent", 120))
        assert int(got["bytes"]) == int(sent["bytes"]) == nbytes
        assert got["sha256"] == sent["sha256"]
        sink_stats = fields(sink.expect("stats"))
        sink.finish()
        sender.finish()
        return sink_stats
    finally:
        for p in (sink, sender):
            if p:
                p.kill()


@pytest.mark.parametrize("preset", PRESETS)
def test_two_kernels_over_a_pipe(preset: str) -> None:
    pipe_transfer(socket.SOCK_SEQPACKET, preset, preset, FULL_BYTES)


def test_two_kernels_over_a_pipe_direct_rx() -> None:
    pipe_transfer(socket.SOCK_SEQPACKET, "large", "large", FULL_BYTES,
                  extra=["--direct-rx", "--cmdline", "lkl.syscall_mode=direct"])


def test_pipe_offload_mismatch_is_finished_in_software() -> None:
    # The sender's super-frames and partial checksums reach a driver that
    # took no offloads: the receiving device segments and checksums.
    st = pipe_transfer(socket.SOCK_SEQPACKET, "none", "large")
    assert int(st["rx_sw_gso"]) > 0, st
    assert int(st["rx_sw_csum"]) > 0, st
    assert int(st["rx_malformed"]) == 0, st


def test_two_kernels_over_a_stream_socket() -> None:
    pipe_transfer(socket.SOCK_STREAM, "large", "large")


# ---- TAP in a namespace -----------------------------------------------------


def warm_up(ns, addr: str) -> None:
    """One echo to settle address resolution on both sides.  The first
    reply is sometimes late past a 1 s wait (see the report on kernel
    timers), so it is not counted; every later one must come."""
    from harness.netns import ping

    ping(ns, addr, count=1, timeout=2)


@pytest.fixture
def ns():
    from harness.netns import Netns

    with Netns() as n:
        yield n


def tap_peer(ns, *args: str, offload: str = "none") -> Peer:
    return Peer(peer_argv(ns, ["--tap", "tap0"], "--offload", offload, *args))


@needs_root
@pytest.mark.parametrize("preset", PRESETS)
def test_tap_ping_and_tcp_both_ways(ns, preset: str) -> None:
    from harness.netns import ping

    ns.add_tap("tap0", "10.200.1.1/24")
    peer = tap_peer(ns, "--ip", "10.200.1.2/24", "features", "tcp-sink",
                    "10.200.1.2", "5001", "tcp-send", "10.200.1.1", "5002",
                    str(FULL_BYTES), offload=preset)
    try:
        feats = fields(peer.expect("features"))
        assert int(feats["negotiated"], 16) == OFFLOAD_BITS[preset]
        warm_up(ns, "10.200.1.2")
        assert ping(ns, "10.200.1.2", count=3) == 3
        tcp_both_ways(ns, peer, "10.200.1.2", "10.200.1.1", FULL_BYTES)
        print(f"{preset}: host->lkl {peer.host_to_lkl_gbps:.2f} Gbit/s, "
              f"lkl->host {peer.lkl_to_host_gbps:.2f} Gbit/s (with SHA-256)")
        peer.finish()
    finally:
        peer.kill()


@needs_root
@pytest.mark.parametrize(("preset", "busy_poll"), [("none", 0), ("large", 0), ("large", 50),
                                                   ("none", 20)])
def test_tap_direct_mode_with_direct_rx(ns, preset: str, busy_poll: int) -> None:
    """Direct syscalls whose sleeping threads receive the device's frames
    themselves (--direct-rx), also busy polling before they sleep: the
    same ping and 256 MiB both ways, every byte checked."""
    from harness.netns import ping

    ns.add_tap("tap0", "10.200.1.1/24")
    peer = tap_peer(ns, "--direct-rx", "--busy-poll", str(busy_poll),
                    "--cmdline", "lkl.syscall_mode=direct nohz=off",
                    "--ip", "10.200.1.2/24", "tcp-sink", "10.200.1.2", "5001",
                    "tcp-send", "10.200.1.1", "5002", str(FULL_BYTES), "stats",
                    offload=preset)
    try:
        peer.expect("up")
        warm_up(ns, "10.200.1.2")
        assert ping(ns, "10.200.1.2", count=3) == 3
        tcp_both_ways(ns, peer, "10.200.1.2", "10.200.1.1", FULL_BYTES)
        st = fields(peer.expect("stats"))
        assert int(st["rx_dropped"]) == 0 and int(st["rx_errors"]) == 0
        assert int(st["rx_direct"]) > 0, st      # sleeping syscalls received
        # Busy polls only when asked for; their hits are a subset of them.
        assert int(st["busy_poll_hits"]) <= int(st["busy_polls"]), st
        if not busy_poll:
            assert int(st["busy_polls"]) == 0 and int(st["busy_poll_ns"]) == 0, st
        peer.finish()
    finally:
        peer.kill()


@needs_root
def test_direct_rx_halt_in_flight_returns(ns) -> None:
    ns.add_tap("tap0", "10.200.1.1/24")
    srv = host_listener(ns, "10.200.1.1", 5002)
    peer = tap_peer(ns, "--direct-rx", "--cmdline", "lkl.syscall_mode=direct",
                    "--ip", "10.200.1.2/24", "halt-sending", "10.200.1.1", "5002", "300",
                    offload="large")
    try:
        halt_while_receiving(srv, peer)
    finally:
        peer.kill()
        srv.close()


@needs_root
def test_tap_udp(ns) -> None:
    ns.add_tap("tap0", "10.200.1.1/24")
    peer = tap_peer(ns, "--ip", "10.200.1.2/24", "udp-echo", "10.200.1.2",
                    "6001", "20", "udp-send", "10.200.1.1", "6002", "20", "1400",
                    offload="checksum")
    try:
        peer.expect("listening")
        with ns.entered():
            cli = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        cli.settimeout(2)
        srv.settimeout(10)
        srv.bind(("10.200.1.1", 6002))
        ok = 0
        for i in range(20):
            msg = os.urandom(100 + i * 50)
            cli.sendto(msg, ("10.200.1.2", 6001))
            try:
                ok += cli.recv(65536) == msg
            except TimeoutError:
                pass
        assert ok == 20
        peer.expect("echoed 20")
        for _ in range(20):
            data, addr = srv.recvfrom(65536)
            srv.sendto(data, addr)
        assert peer.expect("udp ok") == "udp ok=20 of 20"
        peer.finish()
    finally:
        peer.kill()


@needs_root
def test_tap_ipv6_neighbour_discovery_and_tcp(ns) -> None:
    from harness.netns import ping

    ns.add_tap("tap0", "fd00:200:1::1/64")
    peer = tap_peer(ns, "--ip", "fd00:200:1::2/64", "tcp-sink", "fd00:200:1::2",
                    "5001", "tcp-send", "fd00:200:1::1", "5002", str(NBYTES // 4),
                    offload="large")
    try:
        peer.expect("up")
        # Neighbour discovery both ways: the host resolves the kernel's
        # address, the kernel resolves the host's to answer.
        replies = sum(ping(ns, "fd00:200:1::2", count=1, timeout=2) for _ in range(4))
        assert replies >= 3
        tcp_both_ways(ns, peer, "fd00:200:1::2", "fd00:200:1::1", NBYTES // 4)
        peer.finish()
    finally:
        peer.kill()


@needs_root
@pytest.mark.parametrize("preset", ["none", "large"])
def test_tap_mtu_9000(ns, preset: str) -> None:
    from harness.netns import ping

    ns.add_tap("tap0", "10.200.1.1/24", mtu=9000)
    peer = tap_peer(ns, "--mtu", "9000", "--ip", "10.200.1.2/24", "tcp-sink",
                    "10.200.1.2", "5001", "tcp-send", "10.200.1.1", "5002",
                    str(NBYTES // 4), "stats", offload=preset)
    try:
        peer.expect("up")
        warm_up(ns, "10.200.1.2")
        assert ping(ns, "10.200.1.2", count=2, size=8900) == 2
        tcp_both_ways(ns, peer, "10.200.1.2", "10.200.1.1", NBYTES // 4)
        st = fields(peer.expect("stats"))
        assert int(st["rx_dropped"]) == 0
        peer.finish()
    finally:
        peer.kill()


# TUN_F_* the TAP must carry, by offered set: what the kernel's driver
# accepts of GUEST_CSUM/GUEST_TSO4/GUEST_TSO6.
NEGOTIATION = [
    (0x0, 0x0),
    (0x1, 0x1),            # CSUM only: the kernel sends partial checksums
    (0x2, 0x2),            # GUEST_CSUM
    (0x3, 0x3),
    (0x83, 0x83),          # + GUEST_TSO4
    (0x183, 0x183),
    (0x1983, 0x1983),      # big packets
    (0x9983, 0x9983),      # large segments
    (0x8000, 0x8000),      # MRG_RXBUF alone
    (0x180, 0x0),          # GUEST_TSO without GUEST_CSUM is not offered
    (0x1800, 0x0),         # HOST_TSO without CSUM is not offered
]


def tap_offloads(ns) -> dict[str, bool]:
    out = ns.run(["ethtool", "-k", "tap0"]).stdout
    feats = dict(re.findall(r"^\s*([\w-]+): (on|off)", out, re.M))
    return {k: v == "on" for k, v in feats.items()}


@needs_root
@pytest.mark.parametrize("offered,negotiated", NEGOTIATION,
                         ids=[hex(o) for o, _ in NEGOTIATION])
def test_negotiation_matches_tap_flags(ns, offered: int, negotiated: int) -> None:
    ns.add_tap("tap0", "10.200.1.1/24")
    peer = tap_peer(ns, "features", "wait", offload=hex(offered))
    try:
        feats = fields(peer.expect("features"))
        assert int(feats["offered"], 16) == negotiated
        assert int(feats["negotiated"], 16) == negotiated
        flags = int(ns.read_sys("/sys/class/net/tap0/tun_flags"), 16)
        assert bool(flags & 0x4000) == bool(negotiated), "IFF_VNET_HDR"
        tap = tap_offloads(ns)
        guest_csum = bool(negotiated & 0x2)
        assert tap["tx-checksum-ip-generic"] == guest_csum
        assert tap["tx-tcp-segmentation"] == (guest_csum and bool(negotiated & 0x80))
        assert tap["tx-tcp6-segmentation"] == (guest_csum and bool(negotiated & 0x100))
        peer.send_line()
        peer.finish()
    finally:
        peer.kill()


@needs_root
def test_malformed_frames_from_the_host_side_of_a_tap(ns) -> None:
    """What a host can put on a TAP: frames too big for the driver's
    buffers (the device drops and counts them) and broken IP (the
    kernel's IP layer does).  Shorter than Ethernet the host cannot send."""
    from harness.netns import ping

    ns.add_tap("tap0", "10.200.1.1/24", mtu=9000)
    peer = tap_peer(ns, "--ip", "10.200.1.2/24", "ipstats", "wait", "stats",
                    "ipstats", offload="none")
    try:
        before = fields(peer.expect("ipstats"))
        warm_up(ns, "10.200.1.2")
        with ns.entered():
            raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        raw.bind(("tap0", 0))
        # Straight onto the TAP's queue, ahead of the ping below: the
        # device reads the queue in order, so once the echo is answered
        # every frame sent here has been read and judged.
        raw.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
        eth = bytes.fromhex("ffffffffffff" "020000000101" "0800")
        broken = [eth + b"\x01" * 10,                   # no whole IP header
                  eth + b"\x55" + bytes(39),           # IP version 5
                  eth + b"\x44" + bytes(39)]           # header of 16 bytes
        for frame in broken:
            raw.send(frame)
        # Larger than the 1.5 KB buffers of a driver without offloads.
        for _ in range(3):
            raw.send(eth + b"\0" * 4000)
        raw.close()
        assert ping(ns, "10.200.1.2", count=2) == 2
        peer.send_line()
        st = fields(peer.expect("stats"))
        assert int(st["rx_oversize"]) == 3
        assert int(st["rx_dropped"]) == 3
        after = fields(peer.expect("ipstats"))
        assert int(after["InHdrErrors"]) - int(before["InHdrErrors"]) == len(broken)
        peer.finish()
    finally:
        peer.kill()


@needs_root
def test_hot_added_device_carries_traffic_and_halt_in_flight_returns(ns) -> None:
    ns.add_tap("tap0", "10.200.1.1/24")
    srv = host_listener(ns, "10.200.1.1", 5002)
    peer = tap_peer(ns, "--hotadd", "--ip", "10.200.1.2/24", "tcp-send",
                    "10.200.1.1", "5002", str(NBYTES // 4), "halt-sending",
                    "10.200.1.1", "5002", "300", offload="large")
    try:
        conn, _ = srv.accept()
        conn.settimeout(30)
        n, digest = host_sink(conn)
        sent = fields(peer.expect("sent", 60))
        assert n == int(sent["bytes"]) and digest == sent["sha256"]
        # A second connection, still sending when the kernel halts.
        halt_while_receiving(srv, peer)
    finally:
        peer.kill()
        srv.close()


# ---- raw AF_PACKET on a veth in a namespace ---------------------------------


@needs_root
@pytest.mark.parametrize("preset", ["none", "large"])
def test_raw_backend_on_a_veth(ns, preset: str) -> None:
    from harness.netns import ping

    ns.add_veth("vlkl0", "vhost0", "10.200.3.1/24")
    peer = Peer(peer_argv(ns, ["--raw", "vlkl0"], "--offload", preset, "--ip",
                          "10.200.3.2/24", "tcp-sink", "10.200.3.2", "5001",
                          "tcp-send", "10.200.3.1", "5002", str(NBYTES // 2),
                          "stats"))
    try:
        peer.expect("up")
        warm_up(ns, "10.200.3.2")
        assert ping(ns, "10.200.3.2", count=3) == 3
        tcp_both_ways(ns, peer, "10.200.3.2", "10.200.3.1", NBYTES // 2)
        st = fields(peer.expect("stats"))
        if preset == "none":
            # The host's stack hands the veth super-frames and partial
            # checksums; the device finished them for the driver.
            assert int(st["rx_sw_gso"]) + int(st["rx_sw_csum"]) > 0
        peer.finish()
    finally:
        peer.kill()

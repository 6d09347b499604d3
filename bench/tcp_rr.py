#!/usr/bin/env python3
"""TCP_RR, the paper's Figure 6: 1-byte request/response latency.

LKL <-> host over a TAP inside a network namespace, for the paper's steps
(base, pinned, direct syscalls, direct + busy polling, direct + receiving
on the sleeping syscall's thread), beside host <-> host
over a veth pair between two namespaces, all in one run.  Every namespace
is created here and deleted afterwards; addresses are 10.201.0.0/24 and
10.202.0.0/24 inside them only.

Writes bench/results/tcp_rr.json and prints a table with each variant's
ratio to the host stack with the same pinning.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from pyroute2 import NetNS

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from harness.netns import Netns  # noqa: E402

TCP_RR = ROOT / "build" / "bench" / "tcp_rr"
RESULTS = ROOT / "bench" / "results"
PORT = 5201


def run_pair(server_ns: Netns, server_addr: str, client_ns: Netns,
             client_argv: list[str], cpu: int | None, timeout: float) -> dict:
    """Start the host-stack responder, run one requester, return its JSON."""
    server = subprocess.Popen(
        server_ns.exec_argv([str(TCP_RR), "server", server_addr, str(PORT)], cpu),
        stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout and server.stdout.readline().strip() == "listening"
        out = subprocess.run(client_ns.exec_argv(client_argv, cpu), capture_output=True, text=True,
                             timeout=timeout)
        if out.returncode:
            raise RuntimeError(f"{client_argv}: {out.stdout}{out.stderr}")
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        server.wait(timeout=10)


def host_veth(cpu: int | None, opts: list[str], timeout: float) -> dict:
    """host <-> host over a veth pair between two namespaces."""
    with Netns("lklbench", "a") as a, Netns("lklbench", "b") as b:
        with NetNS(a.name) as ipr:
            ipr.link("add", ifname="rr0", kind="veth", peer="rr1")
            ipr.link("set", index=ipr.link_lookup(ifname="rr1")[0], net_ns_fd=b.name)
        a.address("rr0", "10.202.0.1/24")
        b.address("rr1", "10.202.0.2/24")
        return run_pair(b, "10.202.0.2", a, [str(TCP_RR), "host", "10.202.0.2", str(PORT), *opts],
                        cpu, timeout)


def lkl_tap(cpu: int | None, lkl_args: list[str], opts: list[str], timeout: float) -> dict:
    """lkl <-> host over a TAP device inside one namespace."""
    with Netns("lklbench", "tap") as ns:
        with NetNS(ns.name) as ipr:
            ipr.link("add", ifname="rrtap", kind="tuntap", mode="tap")
        ns.address("rrtap", "10.201.0.1/24")
        argv = [str(TCP_RR), "lkl", "10.201.0.1", str(PORT), "--tap", "rrtap",
                "--ip", "10.201.0.2/24", *lkl_args, *opts]
        return run_pair(ns, "10.201.0.1", ns, argv, cpu, timeout)


def variants(busy_poll_us: int) -> list[tuple[str, str, int | None, list[str]]]:
    """(name, stack, cpu, lkl arguments): the paper's Figure 6 steps."""
    return [
        ("host, unpinned", "host", None, []),
        ("host, one core", "host", 0, []),
        ("lkl base (shadow)", "lkl", None, ["--mode", "shadow"]),
        ("lkl pinned (shadow, one core)", "lkl", 0, ["--mode", "shadow", "--pin", "0"]),
        ("lkl direct syscall", "lkl", 0,
         ["--mode", "direct", "--pin", "0", "--nohz-off"]),
        ("lkl direct + busy poll", "lkl", 0,
         ["--mode", "direct", "--pin", "0", "--nohz-off", "--busy-poll", str(busy_poll_us)]),
        # The paper's "direct IRQ handling" step: the sleeping syscall's own
        # thread receives the frame, no device poller in between.
        ("lkl direct + direct RX", "lkl", 0,
         ["--mode", "direct", "--pin", "0", "--nohz-off", "--direct-rx"]),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50000, help="transactions per variant")
    parser.add_argument("--seconds", type=float, default=5.0, help="time bound per variant")
    parser.add_argument("--busy-poll-us", type=int, default=50)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("tcp_rr needs root (network namespaces)", file=sys.stderr)
        return 1
    opts = ["--count", str(args.count), "--seconds", str(args.seconds)]
    timeout = args.seconds * 4 + 30

    rows = []
    for name, stack, cpu, lkl_args in variants(args.busy_poll_us):
        if stack == "host":
            result = host_veth(cpu, opts, timeout)
        else:
            result = lkl_tap(cpu, lkl_args, opts, timeout)
        result.update(name=name, cpu=cpu)
        rows.append(result)
        print(f"  {name}: {result['rtt_p50_us']:.1f} µs p50", flush=True)

    baseline = {cpu: next(r for r in rows if r["stack"] == "host" and r["cpu"] == cpu)
                for cpu in (None, 0)}
    for r in rows:
        r["ratio_to_host_p50"] = round(r["rtt_p50_us"] / baseline[r["cpu"]]["rtt_p50_us"], 2)
        r["ratio_to_host_mean"] = round(r["rtt_mean_us"] / baseline[r["cpu"]]["rtt_mean_us"], 2)

    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"benchmark": "TCP_RR 1 byte", "unit": "µs round trip",
              "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "rows": rows}
    (RESULTS / "tcp_rr.json").write_text(json.dumps(report, indent=2) + "\n")
    print("\n| variant | tps | mean µs | p50 µs | p99 µs | p50 vs host (same pinning) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['tps']:.0f} | {r['rtt_mean_us']:.1f} | {r['rtt_p50_us']:.1f} "
              f"| {r['rtt_p99_us']:.1f} | {r['ratio_to_host_p50']:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

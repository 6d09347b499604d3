#!/usr/bin/env python3
"""TCP_RR, the paper's Figure 6: 1-byte request/response latency.

LKL <-> host over a TAP inside a network namespace, for the paper's steps
(base, pinned, direct syscalls, direct + the poller's busy polling, direct
+ receiving on the sleeping syscall's thread, and that thread's adaptive
busy polling), LKL <-> LKL over the pipe backend (two processes, both
stacks in user space, no host TCP), beside host <-> host over a veth pair
between two namespaces, all in one run, in two layouts:

  one core    every thread of both ends on host CPU 0
  two cores   the requester (the lkl process, or the host client) on CPU 0,
              the responder on CPU 1

Each variant runs --repeat times, the rounds interleaved (A B C ... A B C
...), so that load from elsewhere on the machine spreads over all of them;
a row reports the median of the rounds' p50 and p99 and their spread
(min..max), the ratio of its median p50 and p99 to the host's in the same
layout, and what a transaction cost: CPU µs of the requester and of the
responder process (getrusage, every thread; the requester's also by
thread), voluntary context switches, and the device's counters (frames,
receives on the syscall's thread, busy polls and their hits).  Every
namespace is created here and deleted afterwards; addresses are
10.201.0.0/24, 10.202.0.0/24 inside them and 10.204.0.0/24 between the
two kernels of a pair.

Writes bench/results/tcp_rr.json and tcp_rr.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pyroute2 import NetNS

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from harness.netns import BENCH_CONGESTION_CONTROL, Netns  # noqa: E402

TCP_RR = ROOT / "build" / "bench" / "tcp_rr"
RESULTS = ROOT / "bench" / "results"
PORT = 5201
DIRECT = ["--mode", "direct", "--nohz-off"]
CC = BENCH_CONGESTION_CONTROL


def last_json(text: str, role: str | None = None) -> dict:
    """The last JSON line of a program's output (of a role, if given)."""
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            d = json.loads(line)
            if role is None or d.get("role") == role:
                return d
    raise RuntimeError(f"no JSON line in {text!r}")


def run_pair(server_ns: Netns, server_addr: str, client_ns: Netns,
             client_argv: list[str], cpu: int | None, timeout: float,
             server_cpu: int | None = None) -> dict:
    """Start the host-stack responder, run one requester, return its JSON
    (with the responder's under "server")."""
    server = subprocess.Popen(
        server_ns.exec_argv([str(TCP_RR), "server", server_addr, str(PORT)],
                            cpu if server_cpu is None else server_cpu),
        stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout and server.stdout.readline().strip() == "listening"
        out = subprocess.run(client_ns.exec_argv(client_argv, cpu), capture_output=True, text=True,
                             timeout=timeout)
        if out.returncode:
            raise RuntimeError(f"{client_argv}: {out.stdout}{out.stderr}")
        result = last_json(out.stdout)
        rest, _ = server.communicate(timeout=10)
        with contextlib.suppress(RuntimeError):
            result["server"] = last_json(rest, "server")
        return result
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(timeout=10)


def host_veth(cpu: int | None, opts: list[str], timeout: float,
              server_cpu: int | None = None) -> dict:
    """host <-> host over a veth pair between two namespaces."""
    with Netns("lklbench", "a", CC) as a, Netns("lklbench", "b", CC) as b:
        with NetNS(a.name) as ipr:
            ipr.link("add", ifname="rr0", kind="veth", peer="rr1")
            ipr.link("set", index=ipr.link_lookup(ifname="rr1")[0], net_ns_fd=b.name)
        a.address("rr0", "10.202.0.1/24")
        b.address("rr1", "10.202.0.2/24")
        return run_pair(b, "10.202.0.2", a, [str(TCP_RR), "host", "10.202.0.2", str(PORT), *opts],
                        cpu, timeout, server_cpu)


def lkl_tap(cpu: int | None, lkl_args: list[str], opts: list[str], timeout: float,
            server_cpu: int | None = None) -> dict:
    """lkl <-> host over a TAP device inside one namespace."""
    with Netns("lklbench", "tap", CC) as ns:
        with NetNS(ns.name) as ipr:
            ipr.link("add", ifname="rrtap", kind="tuntap", mode="tap")
        ns.address("rrtap", "10.201.0.1/24")
        argv = [str(TCP_RR), "lkl", "10.201.0.1", str(PORT), "--tap", "rrtap",
                "--ip", "10.201.0.2/24", *lkl_args, *opts]
        return run_pair(ns, "10.201.0.1", ns, argv, cpu, timeout, server_cpu)


def lkl_pipe(cpu: int | None, lkl_args: list[str], opts: list[str], timeout: float,
             server_cpu: int | None = None) -> dict:
    """lkl <-> lkl over the pipe backend: two processes, no namespace."""
    argv = [str(TCP_RR), "lkl-pair", "10.204.0.1", str(PORT), "--ip", "10.204.0.1/24",
            "--peer-ip", "10.204.0.2/24", *lkl_args, *opts]
    if cpu is not None:
        argv += ["--cpu", str(cpu)]
    if server_cpu is not None:
        argv += ["--peer-cpu", str(server_cpu)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if out.returncode:
        raise RuntimeError(f"{argv}: {out.stdout}{out.stderr}")
    lines = [json.loads(x) for x in out.stdout.splitlines() if x.startswith("{")]
    result = next(x for x in lines if "transactions" in x)
    server = next((x for x in lines if x.get("role") == "server"), None)
    if server:
        result["server"] = server
    return result


# (name, layout, kind, lkl arguments); kind: host, tap, pipe.
Variant = tuple[str, str, str, list[str]]
LAYOUTS = {"one core": (0, 0), "two cores": (0, 1), "unpinned": (None, None)}


def variants(busy_poll_us: int) -> list[Variant]:
    """The paper's Figure 6 steps, then the new mechanisms in both layouts."""
    bp = ["--busy-poll", str(busy_poll_us)]
    rows: list[Variant] = [
        ("host, unpinned", "unpinned", "host", []),
        ("lkl base (shadow)", "unpinned", "tap", ["--mode", "shadow"]),
        ("lkl pinned (shadow)", "one core", "tap", ["--mode", "shadow", "--pin", "0"]),
        ("lkl direct syscall", "one core", "tap", [*DIRECT, "--pin", "0"]),
        ("lkl direct + poller busy poll", "one core", "tap", [*DIRECT, "--pin", "0", *bp]),
    ]
    for layout in ("one core", "two cores"):
        rows += [
            (f"host, {layout}", layout, "host", []),
            (f"lkl direct + direct RX, {layout}", layout, "tap",
             [*DIRECT, "--pin", "0", "--direct-rx"]),
            (f"lkl direct RX + adaptive busy poll, {layout}", layout, "tap",
             [*DIRECT, "--pin", "0", "--direct-rx", *bp]),
            (f"lkl<->lkl pipe, direct RX, {layout}", layout, "pipe",
             [*DIRECT, "--pin", "0", "--direct-rx"]),
            (f"lkl<->lkl pipe, direct RX + adaptive busy poll, {layout}", layout, "pipe",
             [*DIRECT, "--pin", "0", "--direct-rx", *bp]),
        ]
    return rows


def run_variant(v: Variant, opts: list[str], timeout: float) -> dict:
    name, layout, kind, lkl_args = v
    cpu, server_cpu = LAYOUTS[layout]
    for attempt in range(2):
        try:
            if kind == "host":
                return host_veth(cpu, opts, timeout, server_cpu)
            if kind == "tap":
                return lkl_tap(cpu, lkl_args, opts, timeout, server_cpu)
            return lkl_pipe(cpu, lkl_args, opts, timeout, server_cpu)
        except (RuntimeError, StopIteration, subprocess.TimeoutExpired, json.JSONDecodeError) as e:
            print(f"    {name}: attempt {attempt + 1} failed: {e}", file=sys.stderr, flush=True)
    return {"failed": True}


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def med(xs: list[float]) -> float:
    return round(statistics.median(xs), 2)


def summarize(v: Variant, rounds: list[dict]) -> dict:
    """One row: medians of the rounds, their spread, the median round's costs."""
    name, layout, kind, lkl_args = v
    ok = [r for r in rounds if not r.get("failed")]
    row: dict[str, Any] = {"name": name, "layout": layout, "kind": kind,
                           "stack": "host" if kind == "host" else "lkl",
                           "lkl_args": lkl_args, "rounds": len(ok)}
    if not ok:
        row["failed"] = True
        return row
    for k in ("rtt_p50_us", "rtt_p99_us", "rtt_mean_us", "tps"):
        xs = [r[k] for r in ok]
        row[k] = med(xs)
        row[k.replace("rtt_", "") + "_samples"] = xs
    typical = sorted(ok, key=lambda r: r["rtt_p50_us"])[(len(ok) - 1) // 2]
    for k in ("cpu_us_per_tx", "nvcsw_per_tx", "nivcsw_per_tx", "thread_cpu_us_per_tx",
              "netdev_per_tx"):
        if k in typical:
            row[k] = typical[k]
    row["cpu_us_per_tx_samples"] = [r.get("cpu_us_per_tx") for r in ok]
    srv = typical.get("server")
    if srv:
        row["server"] = {k: srv[k] for k in ("stack", "echoes", "cpu_us_per_tx", "nvcsw_per_tx",
                                             "nivcsw_per_tx", "thread_cpu_us_per_tx",
                                             "netdev_per_tx") if k in srv}
    return row


def spread(xs: list[float]) -> str:
    return f"{min(xs):.1f}..{max(xs):.1f}"


def markdown(report: dict) -> list[str]:
    cfg = report["config"]
    md = [f"# TCP_RR, 1 byte (Figure 6), {report['when']}", "",
          f"{cfg['repeat']} interleaved rounds per variant, each up to {cfg['count']} "
          f"transactions or {cfg['seconds']} s after 1000 warm-up ones; medians of the "
          f"rounds (spread min..max); ratios to the host stack in the same layout. "
          f"Busy polling: at most {cfg['busy_poll_us']} µs per wait. Load average before, "
          f"after: {report['loadavg_before']}, {report['loadavg_after']}. "
          "CPU: µs per transaction of the requester process (the lkl one) and of the "
          "responder, getrusage, every thread.", "",
          "| variant | layout | p50 µs (spread) | p99 µs (spread) | p50 / host | p99 / host "
          "| tps | CPU µs/tx requester, responder | vol. cs/tx | busy polls/tx (hits) |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        if r.get("failed"):
            md.append(f"| {r['name']} | {r['layout']} | failed | | | | | | | |")
            continue
        srv = r.get("server", {})
        nd = r.get("netdev_per_tx", {})
        bp = (f"{nd['busy_polls']:.2f} ({nd['busy_poll_hits']:.2f})"
              if nd.get("busy_polls") else "-")
        md.append(
            f"| {r['name']} | {r['layout']} "
            f"| {r['rtt_p50_us']:.1f} ({spread(r['p50_us_samples'])}) "
            f"| {r['rtt_p99_us']:.1f} ({spread(r['p99_us_samples'])}) "
            f"| {r['ratio_to_host_p50']:.2f}x | {r['ratio_to_host_p99']:.2f}x | {r['tps']:.0f} "
            f"| {r.get('cpu_us_per_tx', 0):.1f}, {srv.get('cpu_us_per_tx', 0):.1f} "
            f"| {r.get('nvcsw_per_tx', 0):.2f} | {bp} |")
    md += ["", "Per thread (requester, CPU µs per transaction, median round):", ""]
    for r in report["rows"]:
        if r.get("thread_cpu_us_per_tx") and r["stack"] == "lkl":
            t = ", ".join(f"{k} {v:.1f}" for k, v in r["thread_cpu_us_per_tx"].items())
            md.append(f"- {r['name']}: {t}")
    return md


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50000, help="transactions per round")
    parser.add_argument("--seconds", type=float, default=3.0, help="time bound per round")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--busy-poll-us", type=int, default=50)
    parser.add_argument("--only", help="comma-separated substrings of variant names")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("tcp_rr needs root (network namespaces)", file=sys.stderr)
        return 1
    opts = ["--count", str(args.count), "--seconds", str(args.seconds)]
    timeout = args.seconds * 4 + 30
    todo = [v for v in variants(args.busy_poll_us)
            if not args.only or any(s in v[0] for s in args.only.split(","))]

    before = loadavg()
    rounds: dict[str, list[dict]] = {v[0]: [] for v in todo}
    for i in range(args.repeat):
        for v in todo:
            r = run_variant(v, opts, timeout)
            rounds[v[0]].append(r)
            p50 = "failed" if r.get("failed") else f"{r['rtt_p50_us']:.1f} µs p50"
            print(f"  [{i + 1}/{args.repeat}] {v[0]}: {p50}", flush=True)
    rows = [summarize(v, rounds[v[0]]) for v in todo]
    for r in rows:
        base = next((b for b in rows if b["stack"] == "host" and b["layout"] == r["layout"]
                     and not b.get("failed")), None)
        if base and not r.get("failed"):
            r["ratio_to_host_p50"] = round(r["rtt_p50_us"] / base["rtt_p50_us"], 2)
            r["ratio_to_host_p99"] = round(r["rtt_p99_us"] / base["rtt_p99_us"], 2)
            r["ratio_to_host_mean"] = round(r["rtt_mean_us"] / base["rtt_mean_us"], 2)
        elif not r.get("failed"):
            r["ratio_to_host_p50"] = r["ratio_to_host_p99"] = r["ratio_to_host_mean"] = 0.0

    report = {"benchmark": "TCP_RR 1 byte", "unit": "µs round trip",
              "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "config": {"count": args.count, "seconds": args.seconds, "repeat": args.repeat,
                         "busy_poll_us": args.busy_poll_us, "cpus": os.cpu_count(),
                         "congestion_control": CC},
              "loadavg_before": before, "loadavg_after": loadavg(), "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tcp_rr.json").write_text(json.dumps(report, indent=1) + "\n")
    md = markdown(report)
    (RESULTS / "tcp_rr.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())

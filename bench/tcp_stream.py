#!/usr/bin/env python3
"""TCP_STREAM, the paper's Figure 7: bulk throughput by offload configuration.

netperf's TCP_STREAM semantics: one connection, the sender calls send()
with a fixed message size for a fixed time, the receiver reads (128 KiB
recv() calls) until EOF; throughput is the bytes the receiver got over
the time from its first byte to EOF, in Gbit/s (10^9 bit/s).  Each point
also records the sender's retransmitted segments (the kernel's Tcp
RetransSegs delta) and the CPU seconds per GB (10^9 bytes) of the sender
and the receiver process (psutil, from "ready" to the result) and of the
whole machine (psutil.cpu_times, every core, busy time).

The matrix rows, as in the paper:
  baseline   every offload off: the device offers none, the kernel's GSO
             and GRO are off, and so are the host TAP's GSO and GRO
  gso_gro    the kernel's GSO and GRO on (the device still offers none;
             without checksum offload the kernel keeps GSO off itself)
  csum       + checksum offload (CSUM, GUEST_CSUM)
  large_mrg  large segments (all TSO bits) with mergeable_rx_bufs
  large_big  large segments in the driver's big_packets mode
for LKL->host and host->LKL over a TAP (lkl in one process, the host
stack in another, one namespace) and LKL->LKL over the pipe backend (two
processes, lkl_netdev_pipe_pair); host<->host over a veth pair between
two namespaces is the reference, measured in the same run.

Every sender uses one congestion control, --cc (default cubic, Linux's
own default and the paper's): it is set in every namespace made here and
in each LKL kernel.  The host's default is the machine's choice and moves
the figures more than anything measured: with bbr and no fq qdisc the
host paces with hrtimers (this VM: host<->host 14.6 against 67 Gbit/s
with cubic, host->LKL large segments 11.2 against 37).

Every namespace is created here and deleted afterwards; addresses are
10.203.0.0/16 inside them only.  Needs root.

Writes bench/results/tcp_stream.json, tcp_stream.md and, if matplotlib is
importable, tcp_stream.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil
from pyroute2 import NetNS

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from harness.netns import BENCH_CONGESTION_CONTROL, Netns, machine_congestion_control  # noqa: E402
from harness.tcp_stream import BIN, ROWS, Proc, Row  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PORT = 5201
KIB = 1024
# The default run (about 4 minutes on 2 cores) takes two sizes; --full all.
DEFAULT_SIZES = [4 * KIB, 64 * KIB]
FULL_SIZES = [1 * KIB, 2 * KIB, 4 * KIB, 8 * KIB, 16 * KIB, 32 * KIB, 64 * KIB]
TAP_HOST, TAP_LKL = "10.203.1.1", "10.203.1.2"
PIPE_SINK, PIPE_SEND = "10.203.9.1", "10.203.9.2"
VETH_A, VETH_B = "10.203.2.1", "10.203.2.2"


DIRECTIONS = {
    "lkl_to_host": "LKL->host (TAP)",
    "host_to_lkl": "host->LKL (TAP)",
    "lkl_to_lkl": "LKL->LKL (pipe)",
}


class Namespace(Netns):
    """A benchmark namespace whose TCP uses congestion control ``cc``; it
    also reads and sets ethtool offloads."""

    def __init__(self, tag: str, cc: str) -> None:
        super().__init__("lklstream", tag, congestion_control=cc)

    def ethtool_set(self, ifname: str, settings: dict[str, str]) -> None:
        args = [x for k, v in settings.items() for x in (k, v)]
        subprocess.run(self.exec_argv(["ethtool", "-K", ifname, *args]), check=True,
                       capture_output=True, timeout=10)

    def ethtool_get(self, ifname: str) -> dict[str, str]:
        """The interface's offload switches that matter here."""
        out = subprocess.run(self.exec_argv(["ethtool", "-k", ifname]), capture_output=True,
                             text=True, timeout=10).stdout
        keep = ("tx-checksumming", "scatter-gather", "tcp-segmentation-offload",
                "generic-segmentation-offload", "generic-receive-offload")
        feats = {}
        for line in out.splitlines():
            name, _, value = line.strip().partition(": ")
            if name in keep:
                feats[name] = value.split()[0]
        return feats


def busy_seconds() -> float:
    t = psutil.cpu_times()
    return sum(v for k, v in t._asdict().items() if k not in ("idle", "iowait", "guest",
                                                               "guest_nice"))


def wait_quiet(limit_s: float = 5.0) -> float:
    """Wait (bounded) until the machine is nearly idle: other work on a
    2-core machine moves the figures more than anything measured here.
    Returns the busy share of the last look."""
    deadline = time.monotonic() + limit_s
    while True:
        busy = psutil.cpu_percent(interval=0.3)
        if busy < 15 or time.monotonic() > deadline:
            return busy


def measure(procs: list[Proc], pids: dict[str, int], sender: Proc,
            seconds: float) -> tuple[dict[str, dict], dict[str, float]]:
    """Start the transfer, collect both results, and the CPU each side used."""
    cpu0 = {k: sum(psutil.Process(p).cpu_times()[:2]) for k, p in pids.items()}
    sys0 = busy_seconds()
    sender.go()
    results: dict[str, dict] = {}
    for p in procs:
        for _ in range(2 if len(procs) == 1 else 1):
            r = p.result(seconds * 3 + 60)
            results[r["role"]] = r
    cpu = {k: sum(psutil.Process(p).cpu_times()[:2]) - cpu0[k] for k, p in pids.items()}
    cpu["system"] = busy_seconds() - sys0
    # Busy time of the machine not spent in the two processes: other
    # work, and host softirq work charged to neither (ksoftirqd).
    cpu["other"] = cpu["system"] - cpu["sender"] - cpu["receiver"]
    for p in procs:
        p.finish()
    return results, cpu


def common_args(args: argparse.Namespace, msg: int) -> list[str]:
    out = ["--msg", str(msg), "--seconds", str(args.seconds), "--sync"]
    if args.threads:
        out.append("--threads")
    return out


def lkl_args(row: Row, args: argparse.Namespace, mode: str) -> list[str]:
    out = ["--offload", row.offload, "--mem", "256M", *mode.split(),
           "--sysctl", f"net.ipv4.tcp_congestion_control={args.cc}"]
    for k, v in row.kernel.items():
        out += [f"--{k}", v]
    return out


def tap_point(row: Row, direction: str, msg: int, args: argparse.Namespace,
              mode: str, binary: Path) -> dict:
    with Namespace("tap", args.cc) as ns:
        with NetNS(ns.name) as ipr:
            ipr.link("add", ifname="st0", kind="tuntap", mode="tap")
        ns.address("st0", f"{TAP_HOST}/24")
        ns.ethtool_set("st0", row.host)
        common = common_args(args, msg)
        lkl = ["--tap", "st0", "--ip", f"{TAP_LKL}/24", *lkl_args(row, args, mode)]
        if direction == "lkl_to_host":
            sink = Proc(ns.exec_argv([str(binary), "host-sink", TAP_HOST, str(PORT), *common]))
            pids = {"receiver": sink.ready_pid()}
            send = Proc(ns.exec_argv([str(binary), "lkl-send", TAP_HOST, str(PORT), *lkl, *common]))
        else:
            sink = Proc(ns.exec_argv([str(binary), "lkl-sink", TAP_LKL, str(PORT), *lkl, *common]))
            pids = {"receiver": sink.ready_pid()}
            send = Proc(ns.exec_argv([str(binary), "host-send", TAP_LKL, str(PORT), *common]))
        try:
            pids["sender"] = send.ready_pid()
            # The device has negotiated and set the TAP's offloads by now.
            host = ns.ethtool_get("st0")
            results, cpu = measure([sink, send], pids, send, args.seconds)
        finally:
            sink.kill()
            send.kill()
    return {"results": results, "cpu": cpu, "host_tap": host}


def pipe_point(row: Row, msg: int, args: argparse.Namespace, mode: str,
               binary: Path) -> dict:
    p = Proc([str(binary), "lkl-pair", PIPE_SINK, str(PORT), "--ip", f"{PIPE_SINK}/24",
              "--peer-ip", f"{PIPE_SEND}/24", *lkl_args(row, args, mode),
              *common_args(args, msg)])
    try:
        # The child (receiver) and this process (sender) both say ready.
        a, b = p.ready_pid(), p.ready_pid()
        pids = {"receiver": a if a != p.proc.pid else b, "sender": p.proc.pid}
        results, cpu = measure([p], pids, p, args.seconds)
    finally:
        p.kill()
    return {"results": results, "cpu": cpu}


def veth_point(msg: int, args: argparse.Namespace, binary: Path) -> dict:
    with Namespace("va", args.cc) as a, Namespace("vb", args.cc) as b:
        with NetNS(a.name) as ipr:
            ipr.link("add", ifname="sv0", kind="veth", peer="sv1")
            ipr.link("set", index=ipr.link_lookup(ifname="sv1")[0], net_ns_fd=b.name)
        a.address("sv0", f"{VETH_A}/24")
        b.address("sv1", f"{VETH_B}/24")
        common = common_args(args, msg)
        sink = Proc(b.exec_argv([str(binary), "host-sink", VETH_B, str(PORT), *common]))
        send = None
        try:
            pids = {"receiver": sink.ready_pid()}
            send = Proc(a.exec_argv([str(binary), "host-send", VETH_B, str(PORT), *common]))
            pids["sender"] = send.ready_pid()
            host = {"sender veth": a.ethtool_get("sv0"), "receiver veth": b.ethtool_get("sv1")}
            results, cpu = measure([sink, send], pids, send, args.seconds)
        finally:
            sink.kill()
            if send:
                send.kill()
    return {"results": results, "cpu": cpu, "host_veth": host}


def summarize(raw: dict, row: str, direction: str, msg: int, mode: str) -> dict:
    rx, tx = raw["results"]["receiver"], raw["results"]["sender"]
    gb = rx["bytes"] / 1e9
    point = {
        "row": row, "direction": direction, "msg_size": msg, "mode": mode,
        "gbps": rx["gbps"], "bytes": rx["bytes"], "seconds": rx["seconds"],
        "retransmits": tx["retransmits"],
        # The receiver's kernel ran out of receive buffer (window 0).
        "zero_window_adverts": rx.get("snmp", {}).get("TcpExt.TCPToZeroWindowAdv", 0),
        "cpu_s_per_gb": {k: round(v / gb, 3) for k, v in raw["cpu"].items()},
        "sender": tx, "receiver": rx,
    }
    lkl = [r for r in (tx, rx) if r["stack"] == "lkl"]
    if lkl:
        point["negotiated"] = lkl[0]["lkl"]["negotiated"]
        point["kernel_offloads"] = lkl[0]["lkl"]["kernel_offloads"]
        # Frames as they crossed the device, in the direction of the data.
        point["avg_data_frame"] = (tx["derived"]["avg_tx_frame"] if tx["stack"] == "lkl"
                                   else rx["derived"]["avg_rx_frame"])
    for k in ("host_tap", "host_veth"):
        if k in raw:
            point[k] = raw[k]
    return point


def run_one(kind: str, row: Row | None, msg: int, args, mode: str, binary: Path) -> dict:
    for attempt in range(2):
        busy = wait_quiet()
        try:
            if kind == "host_to_host":
                raw = veth_point(msg, args, binary)
            elif kind == "lkl_to_lkl":
                raw = pipe_point(row, msg, args, mode, binary)
            else:
                raw = tap_point(row, kind, msg, args, mode, binary)
            point = summarize(raw, row.key if row else "reference", kind, msg,
                              mode if row else "host")
            point["machine_busy_pct_before"] = busy
            return point
        except (RuntimeError, subprocess.TimeoutExpired, KeyError) as e:
            print(f"    {kind} {row.key if row else ''} {msg}: attempt {attempt + 1} "
                  f"failed: {e}", file=sys.stderr, flush=True)
    return {"row": row.key if row else "reference", "direction": kind, "msg_size": msg,
            "mode": mode, "failed": True}


def med(points: list[dict]) -> dict:
    """The repeat with the median throughput (its other figures with it)."""
    ok = [p for p in points if not p.get("failed")]
    if not ok:
        return points[0]
    ok.sort(key=lambda p: p["gbps"])
    best = dict(ok[(len(ok) - 1) // 2])
    best["gbps_samples"] = [p["gbps"] for p in ok]
    best["gbps_median"] = round(statistics.median(best["gbps_samples"]), 3)
    return best


def fmt_size(n: int) -> str:
    return f"{n // KIB}K"


def table(points: list[dict], sizes: list[int], mode: str) -> list[str]:
    def get(row: str, d: str, msg: int, m: str):
        return next((p for p in points if p["row"] == row and p["direction"] == d
                     and p["msg_size"] == msg and p["mode"] == m), None)

    def g(p) -> str:
        if p is None:
            return "-"
        return "failed" if p.get("failed") else f"{p['gbps_median']:.2f}"

    dirs = list(DIRECTIONS)
    out = ["| configuration | " + " | ".join(f"{DIRECTIONS[d]} {fmt_size(s)}" for d in dirs
                                              for s in sizes) + " |",
           "|---" * (1 + len(dirs) * len(sizes)) + "|"]
    for row in ROWS:
        out.append(f"| {row.label} | " + " | ".join(g(get(row.key, d, s, mode))
                                                   for d in dirs for s in sizes) + " |")
    ref = [g(get("reference", "host_to_host", s, "host")) for s in sizes]
    out.append("| host<->host veth (reference) | " + " | ".join(
        ref[i] for _ in dirs for i in range(len(sizes))) + " |")
    return out


SHORT = {"tx-checksumming": "tx-csum", "scatter-gather": "sg",
         "tcp-segmentation-offload": "tso", "generic-segmentation-offload": "gso",
         "generic-receive-offload": "gro"}


def detail_table(points: list[dict]) -> list[str]:
    out = ["| direction | configuration | mode | msg | Gbit/s (median; samples) | retrans, 0-win "
           "| CPU s/GB sender | CPU s/GB receiver | CPU s/GB machine (other) | avg data frame B "
           "| negotiated | host side |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in points:
        if p.get("failed"):
            out.append(f"| {p['direction']} | {p['row']} | {p['mode']} | "
                       f"{fmt_size(p['msg_size'])} | failed | | | | | | | |")
            continue
        c = p["cpu_s_per_gb"]
        host = p.get("host_tap") or {}
        host_s = ", ".join(f"{SHORT.get(k, k)}={v}" for k, v in host.items()) if host else (
            "veth defaults" if "host_veth" in p else "-")
        samples = ", ".join(f"{x:.2f}" for x in p["gbps_samples"])
        out.append(
            f"| {p['direction']} | {p['row']} | {p['mode']} | {fmt_size(p['msg_size'])} "
            f"| {p['gbps_median']:.2f} ({samples}) | {p['retransmits']}, "
            f"{p.get('zero_window_adverts', '-')} "
            f"| {c['sender']:.2f} | {c['receiver']:.2f} | {c['system']:.2f} ({c['other']:.2f}) "
            f"| {p.get('avg_data_frame', '-')} | {p.get('negotiated', '-')} | {host_s} |")
    return out


def targets(points: list[dict], size: int, mode: str) -> dict:
    def gbps(row: str, d: str, m: str = mode) -> float | None:
        p = next((p for p in points if p["row"] == row and p["direction"] == d
                  and p["msg_size"] == size and p["mode"] == m and not p.get("failed")), None)
        return p["gbps_median"] if p else None

    out: dict = {"msg_size": size, "mode": mode}
    for d in DIRECTIONS:
        base, large = gbps("baseline", d), gbps("large_mrg", d)
        if base and large:
            out[f"large_over_baseline_{d}"] = round(large / base, 2)
    ref, l2h = gbps("reference", "host_to_host", "host"), gbps("large_mrg", "lkl_to_host")
    if ref and l2h:
        out["lkl_to_host_over_veth"] = round(l2h / ref, 2)
    out["met_large_4x"] = all(v >= 4 for k, v in out.items()
                              if k.startswith("large_over_baseline"))
    out["met_lkl_to_host_70pct"] = out.get("lkl_to_host_over_veth", 0) >= 0.7
    return out


def figure(points: list[dict], size: int, mode: str, path: Path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(9, 4.5))
    dirs = list(DIRECTIONS)
    width = 0.8 / len(ROWS)
    for i, row in enumerate(ROWS):
        ys = []
        for d in dirs:
            p = next((p for p in points if p["row"] == row.key and p["direction"] == d
                      and p["msg_size"] == size and p["mode"] == mode
                      and not p.get("failed")), None)
            ys.append(p["gbps_median"] if p else 0)
        ax.bar([j + i * width for j in range(len(dirs))], ys, width, label=row.label)
    ref = next((p for p in points if p["direction"] == "host_to_host"
                and p["msg_size"] == size and not p.get("failed")), None)
    if ref:
        ax.axhline(ref["gbps_median"], color="k", linestyle="--", label="host<->host veth")
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(dirs))])
    ax.set_xticklabels([DIRECTIONS[d] for d in dirs])
    ax.set_ylabel("Gbit/s")
    ax.set_title(f"TCP_STREAM, {fmt_size(size)} messages, LKL 256 MB, {mode}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def write_markdown(report: dict, out: str) -> None:
    """tcp_stream.md (and .png) from the JSON report."""
    cfg, points = report["config"], report["points"]
    sizes, mode = cfg["sizes"], cfg["mode"]
    md = [f"# TCP_STREAM (Figure 7), {report['when']}", "",
          report["semantics"] + ".", "",
          f"Gbit/s, median of {cfg['repeat']} run(s) of {cfg['seconds']} s per point; "
          f"LKL with 256 MB, syscall mode `{mode}`; every sender's congestion control "
          f"`{cfg.get('congestion_control', 'the host default')}` (the host's default: "
          f"`{cfg.get('host_default_congestion_control', '?')}`); "
          f"{report['elapsed_s']} s in all; load average before, after: "
          f"{cfg.get('loadavg_before')}, {report.get('loadavg_after')}.", ""]
    md += table(points, sizes, mode)
    md += ["", "## Every point", "", *detail_table(points)]
    md += ["", "## Targets", "", "```", json.dumps(report["targets"], indent=1), "```"]
    if "compare" in report:
        md += ["", f"## A/B: `{cfg['binary']}` against `{report['compare']['binary']}` "
               "(interleaved runs)", "",
               "| direction | configuration | mode | msg | Gbit/s | compare Gbit/s | ratio "
               "| CPU s/GB sender, receiver | compare |", "|---|---|---|---|---|---|---|---|---|"]
        for p, o in zip(points, report["compare"]["points"], strict=False):
            if p.get("failed") or o.get("failed"):
                continue
            c, d = p["cpu_s_per_gb"], o["cpu_s_per_gb"]
            md.append(f"| {p['direction']} | {p['row']} | {p['mode']} | "
                      f"{fmt_size(p['msg_size'])} | {p['gbps_median']:.2f} | "
                      f"{o['gbps_median']:.2f} | {p['gbps_median'] / o['gbps_median']:.2f} | "
                      f"{c['sender']:.2f}, {c['receiver']:.2f} | "
                      f"{d['sender']:.2f}, {d['receiver']:.2f} |")
    if figure(points, max(sizes), mode, RESULTS / f"{out}.png"):
        md += ["", f"![TCP_STREAM]({out}.png)"]
    (RESULTS / f"{out}.md").write_text("\n".join(md) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="sending time per point")
    parser.add_argument("--full", action="store_true", help="every size 1 KiB..64 KiB")
    parser.add_argument("--sizes", help="comma-separated message sizes in KiB")
    parser.add_argument("--repeat", type=int, default=1, help="runs per point (median kept)")
    parser.add_argument("--mode", default="direct nohz",
                        help="syscall mode of the matrix: shadow, direct, 'direct nohz', "
                             "'direct nohz rx' (+ direct RX)")
    parser.add_argument("--no-modes", action="store_true",
                        help="skip the syscall-mode comparison (large segments, 64 KiB)")
    parser.add_argument("--rows", help="comma-separated row keys (default: all)")
    parser.add_argument("--directions", help="comma-separated directions (default: all)")
    parser.add_argument("--binary", type=Path, default=BIN)
    parser.add_argument("--cc", default=BENCH_CONGESTION_CONTROL,
                        help="congestion control of every sender, host and LKL (default "
                             "cubic; the host's own default is in the report)")
    parser.add_argument("--threads", action="store_true", help="per-thread CPU in the JSON")
    parser.add_argument("--out", default="tcp_stream", help="result file name stem")
    parser.add_argument("--compare", type=Path, metavar="BINARY",
                        help="A/B: run every point with BINARY too, interleaved "
                             "(e.g. a tcp_stream linked against an older library)")
    parser.add_argument("--render", type=Path, metavar="JSON",
                        help="only write the markdown (and figure) of a saved report")
    args = parser.parse_args()
    if args.render:
        write_markdown(json.loads(args.render.read_text()), args.render.name[:-5])
        return 0
    if os.geteuid() != 0:
        print("tcp_stream needs root (network namespaces)", file=sys.stderr)
        return 1
    if not args.binary.exists():
        subprocess.run(["make", "-s", "-C", str(ROOT / "bench" / "native"),
                        f"BUILD={ROOT / 'build'}"], check=True, timeout=300)
    sizes = ([int(s) * KIB for s in args.sizes.split(",")] if args.sizes
             else FULL_SIZES if args.full else DEFAULT_SIZES)
    rows = [r for r in ROWS if not args.rows or r.key in args.rows.split(",")]
    dirs = [d for d in DIRECTIONS if not args.directions or d in args.directions.split(",")]
    modes = {"shadow": "--mode shadow", "direct": "--mode direct",
             "direct nohz": "--mode direct --nohz-off", "shadow nohz": "--mode shadow --nohz-off",
             "direct nohz rx": "--mode direct --nohz-off --direct-rx"}
    mode = args.mode

    plan: list[tuple[str, Row | None, int, str]] = []
    for msg in sizes:
        plan.append(("host_to_host", None, msg, "host"))
        for row in rows:
            for d in dirs:
                plan.append((d, row, msg, mode))
    if not args.no_modes:
        large = next(r for r in ROWS if r.key == "large_mrg")
        for m in modes:
            for d in ("lkl_to_host", "host_to_lkl"):
                if m != mode:
                    plan.append((d, large, 64 * KIB, m))

    started = time.monotonic()
    load_before = [round(x, 2) for x in os.getloadavg()]
    points, compared = [], []
    for i, (kind, row, msg, m) in enumerate(plan, 1):
        samples, others = [], []
        for _ in range(args.repeat):
            samples.append(run_one(kind, row, msg, args, modes.get(m, ""), args.binary))
            if args.compare:
                others.append(run_one(kind, row, msg, args, modes.get(m, ""), args.compare))
        for s in samples + others:
            s["mode"] = m
        p = med(samples)
        points.append(p)
        g = "failed" if p.get("failed") else f"{p['gbps_median']:.2f} Gbit/s"
        if args.compare:
            compared.append(med(others))
            o = compared[-1]
            g += " (compare: " + ("failed" if o.get("failed")
                                  else f"{o['gbps_median']:.2f} Gbit/s") + ")"
        print(f"  [{i}/{len(plan)}] {kind} {row.key if row else 'veth'} "
              f"{fmt_size(msg)} {m}: {g}", flush=True)

    summary = targets(points, max(sizes), mode)
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "TCP_STREAM",
        "semantics": "one connection; sender send()s msg_size bytes for `seconds`, "
                     "receiver recv()s 128 KiB until EOF; gbps = receiver bytes * 8 / "
                     "(first byte .. EOF) / 1e9; retransmits = sender's Tcp RetransSegs "
                     "delta; cpu_s_per_gb = process CPU (psutil user+system, ready .. "
                     "result) per 1e9 bytes; 'system' = every core's busy time",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
        "config": {"seconds": args.seconds, "sizes": sizes, "repeat": args.repeat,
                   "mode": mode, "lkl_mem": "256M", "binary": str(args.binary),
                   "congestion_control": args.cc,
                   "host_default_congestion_control": machine_congestion_control(),
                   "loadavg_before": load_before,
                   "rows": {r.key: {"label": r.label, "offload": r.offload,
                                    "kernel": r.kernel, "host_tap": r.host} for r in ROWS}},
        "elapsed_s": round(time.monotonic() - started, 1),
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "targets": summary,
        "points": points,
    }
    if args.compare:
        report["compare"] = {"binary": str(args.compare), "points": compared}
    (RESULTS / f"{args.out}.json").write_text(json.dumps(report, indent=1) + "\n")
    write_markdown(report, args.out)
    print("\n".join(table(points, sizes, mode)))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Summarise bench/results/*.json: bench/results/SUMMARY.md and, when
matplotlib is importable, figures like the paper's (figure6_tcp_rr.png).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table's lines."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows)]


def syscall_table(rows: list[dict]) -> list[str]:
    """bench/syscall_latency.py's rows (it prints them so too)."""
    return table(["variant", "lkl median", "lkl p99", "host getpid median", "ratio"],
                 [[r["name"], f"{r['lkl_median_ns']:.0f}", f"{r['lkl_p99_ns']:.0f}",
                   f"{r['host_median_ns']:.0f}", f"{r['ratio_median']:.2f}x"] for r in rows])


def syscall_section(data: dict) -> list[str]:
    return ["## getpid latency from C (ns per call, median of 100,000)", "",
            *syscall_table(data["rows"]), ""]


def tcp_rr_section(data: dict) -> list[str]:
    rows = []
    for r in data["rows"]:
        if r.get("failed"):
            rows.append([r["name"], "failed", "", "", "", "", ""])
            continue
        rows.append([r["name"], f"{r['tps']:.0f}", f"{r['rtt_mean_us']:.1f}",
                     f"{r['rtt_p50_us']:.1f}", f"{r['rtt_p99_us']:.1f}",
                     f"{r['ratio_to_host_p50']:.2f}x, {r.get('ratio_to_host_p99', 0):.2f}x",
                     f"{r.get('cpu_us_per_tx', 0):.1f}"])
    return ["## TCP_RR, 1 byte, round trip (µs)", "", *table(
        ["variant", "transactions/s", "mean", "p50", "p99", "p50, p99 vs host, same layout",
         "CPU µs/transaction"], rows), ""]


def figure6(data: dict) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [r for r in data["rows"] if not r.get("failed")]
    fig, ax = plt.subplots(figsize=(9, 6))
    names = [r["name"] for r in rows]
    ax.barh(names, [r["rtt_p50_us"] for r in rows], color=[
        "#888888" if r["stack"] == "host" else "#3b75af" for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("1-byte TCP_RR round trip, median p50 (µs)")
    ax.set_title("TCP_RR latency (cf. the paper's Figure 6)")
    fig.tight_layout()
    fig.savefig(RESULTS / "figure6_tcp_rr.png", dpi=120)
    return True


def main() -> int:
    out = ["# Benchmark summary", "",
           "Every figure comes with its baseline from the same run; absolute "
           "times drift between runs and machines.", ""]
    syscall = load("syscall_latency.json")
    if syscall:
        out += syscall_section(syscall)
    rr = load("tcp_rr.json")
    if rr:
        out += tcp_rr_section(rr)
        if figure6(rr):
            out += ["![TCP_RR](figure6_tcp_rr.png)", ""]
    stream = RESULTS / "tcp_stream.md"
    if stream.exists():
        out += [stream.read_text(), ""]
    python_net = RESULTS / "python_net.md"
    if python_net.exists():
        out += [python_net.read_text().replace("# ", "## ", 1), ""]
    iperf3 = RESULTS / "iperf3.md"  # bench/iperf3.py: unmodified iperf3, preloaded
    if iperf3.exists():
        out += [iperf3.read_text(), ""]
    (RESULTS / "SUMMARY.md").write_text("\n".join(out))
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

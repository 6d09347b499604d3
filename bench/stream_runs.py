#!/usr/bin/env python3
"""Host->LKL 64 KiB receive over consecutive bench/tcp_stream.py runs.

Reads bench/results/tcp_stream.run1.json .. runN.json (made by
``bench/tcp_stream.py --repeat 3 --out tcp_stream.runI``, one after the
other) and writes tcp_stream.runs.md and .json: per run the baseline and
large-segment (mergeable) throughput with their samples, their ratio, the
same with direct RX, zero-window adverts, the machine's other CPU and the
load average; then the ratio's median and spread over the runs.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

R = Path(__file__).resolve().parent / "results"


def point(d: dict, row: str, direction: str, mode: str = "direct nohz",
          size: int = 65536) -> dict | None:
    """The point of a report for row, direction, mode and size (None if failed)."""
    return next((p for p in d["points"] if p["row"] == row and p["direction"] == direction
                 and p["msg_size"] == size and p["mode"] == mode and not p.get("failed")), None)


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    rows: list[dict[str, Any]] = []
    for i in range(1, n + 1):
        d = json.loads((R / f"tcp_stream.run{i}.json").read_text())
        b, lg = point(d, "baseline", "host_to_lkl"), point(d, "large_mrg", "host_to_lkl")
        rx = point(d, "large_mrg", "host_to_lkl", "direct nohz rx")
        ref = point(d, "reference", "host_to_host", "host")
        lb, ll = point(d, "baseline", "lkl_to_host"), point(d, "large_mrg", "lkl_to_host")
        if not (b and lg and ref and lb and ll):
            print(f"run {i}: a point failed", file=sys.stderr)
            return 1
        rows.append(dict(
            run=i, when=d["when"],
            cc=d["config"].get("congestion_control") or
            "host default " + d["config"].get("host_default_congestion_control", "?"),
            load=(d["config"].get("loadavg_before"), d.get("loadavg_after")),
            base=b["gbps_median"], base_s=b["gbps_samples"],
            large=lg["gbps_median"], large_s=lg["gbps_samples"],
            ratio=round(lg["gbps_median"] / b["gbps_median"], 2),
            large_rx=rx["gbps_median"] if rx else None,
            zw=lg.get("zero_window_adverts"), other=lg["cpu_s_per_gb"].get("other"),
            ref=ref["gbps_median"], l2h_ratio=round(ll["gbps_median"] / lb["gbps_median"], 2)))
    md = ["# host->LKL 64 KiB, consecutive `bench/tcp_stream.py --repeat 3` runs", "",
          "Each run: every point 3 times (its median kept); large = large segments with "
          "mergeable_rx_bufs; syscall mode direct + nohz=off. Load averages and the machine "
          "CPU not spent in the two processes ('other', CPU s/GB) tell how busy the 2 vCPUs "
          "were. Sender CC: the congestion control of every sender (host namespaces and "
          "LKL kernels alike).", "",
          "| run | when | sender CC | load avg before / after | baseline Gbit/s (samples) "
          "| large Gbit/s (samples) | large / baseline | large, direct RX "
          "| 0-window adverts (large) | other CPU s/GB (large) | host<->host veth "
          "| LKL->host large / baseline |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        bs = ", ".join(f"{x:.2f}" for x in r["base_s"])
        ls = ", ".join(f"{x:.2f}" for x in r["large_s"])
        md.append(f"| {r['run']} | {r['when']} | {r['cc']} | {r['load'][0]} / {r['load'][1]} "
                  f"| {r['base']:.2f} ({bs}) | {r['large']:.2f} ({ls}) | {r['ratio']:.2f}x "
                  f"| {r['large_rx']} | {r['zw']} | {r['other']} | {r['ref']:.2f} "
                  f"| {r['l2h_ratio']:.2f}x |")
    ratios = [r["ratio"] for r in rows]
    md += ["", f"large / baseline over the {n} runs: median {statistics.median(ratios):.2f}x, "
           f"spread {min(ratios):.2f}..{max(ratios):.2f}x (target: >= 4x in each)."]
    (R / "tcp_stream.runs.md").write_text("\n".join(md) + "\n")
    (R / "tcp_stream.runs.json").write_text(json.dumps(rows, indent=1) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""MSG_ZEROCOPY on lkl: TCP_STREAM LKL->host over a TAP, zero copy on and off.

The large-segments row (LARGE_SEGMENTS, TSO) of bench/tcp_stream.py, 64
KiB sends, LKL sender in direct syscall mode with a periodic tick, three
sender variants interleaved in each round (same run, same namespaces
code):

  off      plain send() from host memory (one copy, into skb pages)
  kernel   MSG_ZEROCOPY from a buffer mapped inside the kernel
           (Kernel.alloc_buffer / mmap in the kernel): TCP references its
           pages, virtio-net puts them on the TX ring, the TAP's writev
           reads them: no copy on the sender's side
  heap     MSG_ZEROCOPY from host memory: arch/lkl copies it into kernel
           pages (completions say COPIED): Linux semantics, one copy

Figures: receiver-side Gbit/s and the sender process's CPU seconds per GB
(psutil, user+system), medians over --rounds; completions counted.
Writes bench/results/zerocopy.json and zerocopy.md.  Needs root.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import tcp_stream as ts  # noqa: E402

from harness.tcp_stream import BIN, ROWS  # noqa: E402

VARIANTS = {"off": "", "kernel": " --zerocopy kernel", "heap": " --zerocopy heap"}
MODE = "--mode direct --nohz-off"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--msg", type=int, default=64 * 1024)
    parser.add_argument("--binary", type=Path, default=BIN)
    args = parser.parse_args()
    args.threads = False
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 1
    row = next(r for r in ROWS if r.key == "large_mrg")
    points: dict[str, list[dict]] = {k: [] for k in VARIANTS}
    for rnd in range(args.rounds):
        for name, extra in VARIANTS.items():
            p = ts.run_one("lkl_to_host", row, args.msg, args, MODE + extra, args.binary)
            if p.get("failed"):
                print(f"round {rnd} {name}: failed", flush=True)
                continue
            tx = p["sender"]
            keep = {"gbps": p["gbps"], "sender_cpu_s_per_gb": p["cpu_s_per_gb"]["sender"],
                    "receiver_cpu_s_per_gb": p["cpu_s_per_gb"]["receiver"],
                    "retransmits": p["retransmits"],
                    "avg_data_frame": p.get("avg_data_frame"),
                    "zc_completed": tx.get("zc_completed"), "zc_copied": tx.get("zc_copied"),
                    "zc_enobufs": tx.get("zc_enobufs")}
            points[name].append(keep)
            print(f"round {rnd} {name:6} {keep['gbps']:.2f} Gbit/s sender "
                  f"{keep['sender_cpu_s_per_gb']:.3f} CPU s/GB zc {keep['zc_completed']}"
                  f"/{keep['zc_copied']} copied", flush=True)
    summary = {}
    for name, ps in points.items():
        if ps:
            summary[name] = {
                "rounds": len(ps),
                "gbps_median": round(statistics.median(p["gbps"] for p in ps), 3),
                "sender_cpu_s_per_gb_median": round(
                    statistics.median(p["sender_cpu_s_per_gb"] for p in ps), 3),
                "receiver_cpu_s_per_gb_median": round(
                    statistics.median(p["receiver_cpu_s_per_gb"] for p in ps), 3),
            }
    base = summary.get("off", {}).get("sender_cpu_s_per_gb_median")
    for s in summary.values():
        if base:
            ratio = s["sender_cpu_s_per_gb_median"] / base
            s["sender_cpu_vs_off_pct"] = round(100 * (ratio - 1), 1)
    report = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "host": platform.node(), "cpus": os.cpu_count(), "msg_size": args.msg,
              "seconds": args.seconds, "mode": MODE, "row": row.key,
              "summary": summary, "points": points}
    out = ROOT / "bench" / "results"
    (out / "zerocopy.json").write_text(json.dumps(report, indent=1) + "\n")
    md = ["# MSG_ZEROCOPY, TCP_STREAM LKL->host over a TAP (64 KiB sends, large segments)", "",
          f"Run {report['when']}, {args.rounds} rounds x {args.seconds} s, variants interleaved; "
          f"`{MODE}`; medians. Sender CPU = the lkl process (user+system) per GB received.",
          "", "| sender | Gbit/s | sender CPU s/GB | vs off | receiver CPU s/GB | rounds |",
          "|---|---|---|---|---|---|"]
    for name, s in summary.items():
        md.append(f"| {name} | {s['gbps_median']} | {s['sender_cpu_s_per_gb_median']} | "
                  f"{s.get('sender_cpu_vs_off_pct', 0):+.1f} % | "
                  f"{s['receiver_cpu_s_per_gb_median']} | {s['rounds']} |")
    md += ["", "Copies of each payload byte on the sender's side: `off` 2 (lkl's "
           "`tcp_sendmsg` into skb pages, then the host kernel's `tun_get_user` in the "
           "TAP `writev`, charged to the sender process too); `kernel` 1 (only "
           "`tun_get_user`: the skb frags are the buffer's own pages); `heap` 2 (arch/lkl "
           "copies into kernel pages, completions COPIED). The host kernel's copy stays "
           "in every variant, which bounds what removing lkl's copy can save; the "
           "machine is shared, so single rounds vary by tens of percent."]
    (out / "zerocopy.md").write_text("\n".join(md) + "\n")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

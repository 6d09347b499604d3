#!/usr/bin/env python3
"""What HZ=1000 costs against the paper's HZ=100, measured in one run.

Both kernel builds' benchmark programs side by side (the HZ=100 ones
built from the commit before the change into build/hz100/bench, see
--hz100), each in both tick modes (dyntick-idle, the default, and the
periodic tick with nohz=off), in interleaved rounds:

* getpid in direct syscall mode, pinned to one core (the paper's
  direct-syscall latency figure; bench/native/getpid_latency.c);
* TCP_RR 1 byte, lkl <-> host over a TAP in a namespace, direct
  syscalls, pinned (bench/tcp_rr.py's "lkl direct syscall" variant);
* TCP_STREAM 64 KiB messages between two kernels over the pipe backend,
  shadow syscalls (bench/native/tcp_stream.c lkl-pair).

Medians over the rounds go to bench/results/tick.json and tick.md.

    python bench/tick.py [--rounds 3] [--hz100 build/hz100/bench]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tcp_rr

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def getpid_ns(bench: Path, nohz_off: bool) -> float:
    """Median direct-mode getpid in ns, pinned to CPU 0."""
    cmdline = "lkl.syscall_mode=direct" + (" nohz=off" if nohz_off else "")
    out = subprocess.run([str(bench / "getpid_latency"), "--pin", "0", "--cmdline", cmdline,
                          "--iters", "1000000"], capture_output=True, text=True, timeout=120,
                         check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["lkl_median_ns"])


def rr(bench: Path, nohz_off: bool) -> dict:
    """TCP_RR p50 µs and transactions/s, direct syscalls, pinned."""
    tcp_rr.TCP_RR = bench / "tcp_rr"
    args = ["--mode", "direct", "--pin", "0"] + (["--nohz-off"] if nohz_off else [])
    r = tcp_rr.lkl_tap(0, args, ["--count", "20000", "--seconds", "3"], 60)
    return {"p50_us": r["rtt_p50_us"], "tps": r["tps"]}


def stream_gbps(bench: Path, nohz_off: bool) -> float:
    """Two kernels over the pipe backend, 64 KiB sends for 3 s."""
    argv = [str(bench / "tcp_stream"), "lkl-pair", "10.203.0.2", "5301", "--ip",
            "10.203.0.2/24", "--peer-ip", "10.203.0.1/24", "--mode", "shadow",
            "--msg", "65536", "--seconds", "3"] + (["--nohz-off"] if nohz_off else [])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    rates = [json.loads(ln)["gbps"] for ln in out.stdout.splitlines()
             if ln.startswith("{") and "gbps" in ln]
    return float(min(rates))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hz100", type=Path, default=ROOT / "build" / "hz100" / "bench")
    parser.add_argument("--hz1000", type=Path, default=ROOT / "build" / "bench")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("tick.py needs root (TCP_RR builds a namespace)", file=sys.stderr)
        return 1
    configs = [(hz, nohz_off) for hz in (100, 1000) for nohz_off in (False, True)]
    samples: dict[tuple[int, bool], dict[str, list[float]]] = {
        c: {"getpid_ns": [], "rr_p50_us": [], "rr_tps": [], "stream_gbps": []} for c in configs}
    for rnd in range(args.rounds):
        for hz, nohz_off in configs:
            bench = args.hz100 if hz == 100 else args.hz1000
            s = samples[(hz, nohz_off)]
            s["getpid_ns"].append(getpid_ns(bench, nohz_off))
            r = rr(bench, nohz_off)
            s["rr_p50_us"].append(r["p50_us"])
            s["rr_tps"].append(r["tps"])
            s["stream_gbps"].append(stream_gbps(bench, nohz_off))
            print(f"round {rnd} HZ={hz} {'periodic' if nohz_off else 'dyntick'}: "
                  f"{ {k: v[-1] for k, v in s.items()} }", flush=True)
    rows = []
    for (hz, nohz_off), s in samples.items():
        rows.append({"hz": hz, "tick": "periodic (nohz=off)" if nohz_off else "dyntick-idle",
                     **{k: round(statistics.median(v), 2) for k, v in s.items()},
                     "samples": s})
    report = {"benchmark": "tick cost: HZ=100 vs HZ=1000, dyntick-idle vs periodic",
              "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "rounds": args.rounds,
              "note": "medians over interleaved rounds; 2-core machine shared with other work",
              "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tick.json").write_text(json.dumps(report, indent=2) + "\n")
    md = ["# Tick cost: HZ=100 (the paper's) vs HZ=1000 (the TCP selftests')", "",
          f"{report['when']}, {args.rounds} interleaved rounds, medians. getpid: direct "
          "syscalls pinned to one core; TCP_RR: 1 byte, lkl <-> host over a TAP, direct, "
          "pinned; TCP_STREAM: two kernels over the pipe backend, 64 KiB sends, shadow.", "",
          "| HZ | tick | getpid ns | TCP_RR p50 µs | TCP_RR tps | TCP_STREAM Gbit/s |",
          "|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['hz']} | {r['tick']} | {r['getpid_ns']:.0f} | {r['rr_p50_us']:.1f} "
                  f"| {r['rr_tps']:.0f} | {r['stream_gbps']:.2f} |")
    (RESULTS / "tick.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())

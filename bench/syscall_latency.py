#!/usr/bin/env python3
"""getpid latency through lkl, the paper's syscall figures, from C.

Variants, side by side with the host's own getpid syscall in the same
run: shadow threads unpinned; shadow threads with every thread on one
core (the paper's "taskset"); kernel threads pinned but the application
free (the paper's "pin LKL"); direct syscalls, with the periodic tick
(nohz=off, the paper's choice) and with dyntick-idle.  Median and p99 over
100,000 calls each.  Writes bench/results/syscall_latency.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import syscall_table

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "build" / "bench" / "getpid_latency"
RESULTS = ROOT / "bench" / "results"

VARIANTS: list[tuple[str, list[str], int | None]] = [
    # (name, program arguments, CPU the whole process is confined to)
    ("shadow, unpinned", ["--cmdline", "mem=64M"], None),
    ("shadow, all on one core", ["--cmdline", "mem=64M", "--pin", "0"], 0),
    ("shadow, kernel threads pinned", ["--cmdline", "mem=64M", "--pin", "1"], None),
    ("direct, nohz=off", ["--cmdline", "mem=64M lkl.syscall_mode=direct nohz=off"], None),
    ("direct, dyntick-idle", ["--cmdline", "mem=64M lkl.syscall_mode=direct"], None),
]


def main() -> int:
    rows = []
    for name, args, cpu in VARIANTS:
        argv = [str(PROGRAM), "--iters", "100000", *args]
        if cpu is not None:
            argv = ["taskset", "-c", str(cpu), *argv]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row["name"] = name
        rows.append(row)
        print(f"  {name}: {row['lkl_median_ns']:.0f} ns median", flush=True)

    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"benchmark": "getpid from C", "unit": "ns per call",
              "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpus": os.cpu_count(), "rows": rows}
    (RESULTS / "syscall_latency.json").write_text(json.dumps(report, indent=2) + "\n")
    print("\n(ns)", *syscall_table(rows), sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

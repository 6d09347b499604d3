"""Syscall round trip from Python: Kernel.getpid() against os.getpid().

Each call is timed on its own (time.perf_counter_ns around it) and the
clock's own cost, measured the same way around nothing, is subtracted.
Reported per syscall mode (a kernel boots once per process, so each mode
runs in its own child process): median and p99 latency in ns of
Kernel.getpid() and of os.getpid() (the baseline, same process, same run),
and their ratio.  A table goes to stdout, JSON to
bench/results/getpid_python.json.

    python bench/getpid.py [--calls 100000] [--modes shadow,direct] [--pin-cpu N]
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
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sample(call: Callable[[], object], n: int) -> list[int]:
    clock = time.perf_counter_ns
    out = [0] * n
    for i in range(n):
        t0 = clock()
        call()
        out[i] = clock() - t0
    return out


def summary(ns: list[int], overhead: float) -> dict[str, float]:
    ordered = sorted(ns)

    def pick(q: float) -> float:
        return max(ordered[min(len(ordered) - 1, int(q * len(ordered)))] - overhead, 0.0)

    return {"median_ns": pick(0.5), "p99_ns": pick(0.99), "min_ns": pick(0.0),
            "mean_ns": max(statistics.fmean(ordered) - overhead, 0.0)}


def child(mode: str, calls: int, pin_cpu: int | None) -> dict[str, object]:
    sys.path.insert(0, str(ROOT))
    import lkl

    with lkl.boot(syscall_mode=mode, pin_cpu=pin_cpu) as k:
        for _ in range(2000):                     # warm up: shadow thread, caches
            k.getpid()
            os.getpid()
        overhead = float(statistics.median(sample(lambda: None, calls)))
        host = summary(sample(os.getpid, calls), overhead)
        kernel = summary(sample(k.getpid, calls), overhead)
        return {"syscall_mode": k.syscall_mode, "kernel_version": k.version,
                "clock_overhead_ns": overhead, "lkl_getpid": kernel, "os_getpid": host,
                "ratio_median": kernel["median_ns"] / max(host["median_ns"], 1.0),
                "ratio_p99": kernel["p99_ns"] / max(host["p99_ns"], 1.0)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--modes", default="shadow,direct")
    parser.add_argument("--pin-cpu", type=int, default=None)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "getpid_python.json"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.calls, args.pin_cpu)))
        return 0
    if args.calls < 100_000:
        print("note: fewer than 100k calls; p99 is less stable", file=sys.stderr)

    runs = []
    for mode in args.modes.split(","):
        cmd = [sys.executable, __file__, "--child", mode, "--calls", str(args.calls)]
        if args.pin_cpu is not None:
            cmd += ["--pin-cpu", str(args.pin_cpu)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            print(f"{mode}: not measured ({proc.stderr.strip().splitlines()[-1:]})",
                  file=sys.stderr)
            continue
        runs.append(json.loads(proc.stdout))

    result = {
        "benchmark": "getpid round trip from Python",
        "semantics": "latency of one call: median and p99 over all calls, clock cost "
                     "subtracted; baseline os.getpid() (a host syscall) in the same process",
        "calls": args.calls,
        "pin_cpu": args.pin_cpu,
        "runs": runs,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "host_cpus": os.cpu_count(),
        "unix_time": int(time.time()),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"getpid from Python: {args.calls} calls each; latency in ns (clock cost subtracted)")
    print(f"{'mode':8} {'call':16} {'median':>10} {'p99':>10} {'mean':>10}")
    for r in runs:
        for name, key in (("Kernel.getpid()", "lkl_getpid"), ("os.getpid()", "os_getpid")):
            s = r[key]
            print(f"{r['syscall_mode']:8} {name:16} {s['median_ns']:10.0f} {s['p99_ns']:10.0f} "
                  f"{s['mean_ns']:10.0f}")
        print(f"{r['syscall_mode']:8} {'ratio lkl/host':16} {r['ratio_median']:9.1f}x "
              f"{r['ratio_p99']:9.1f}x")
    print(f"written to {out}")
    return 0 if runs else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Blocking connect() on the main thread against another thread, from Python.

On the main thread a blocking connect runs on the package's helper thread
while the main thread waits in slices (signal handlers run, the socket's
file flags stay untouched); on any other thread it blocks in the kernel
directly.  Each round connects, accepts and closes over the kernel's
loopback; the other thread's figure is the baseline from the same run.
Median over rounds of 300 connections, per syscall mode.  Writes
bench/results/connect.json and connect.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
ROUNDS, PER_ROUND = 9, 300

CHILD = """
import json, statistics, sys, threading, time, lkl
k = lkl.boot(syscall_mode=sys.argv[1])
srv = k.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(4096)
addr = srv.getsockname()
def one_round(n, out):
    t0 = time.perf_counter()
    for _ in range(n):
        s = k.socket(); s.connect(addr); srv.accept()[0].close(); s.close()
    out.append((time.perf_counter() - t0) / n * 1e6)
main, other = [], []
one_round(50, [])
for _ in range(int(sys.argv[2])):
    one_round(int(sys.argv[3]), main)
    t = threading.Thread(target=one_round, args=(int(sys.argv[3]), other)); t.start(); t.join()
print(json.dumps({"main_thread_us": statistics.median(main),
                  "other_thread_us": statistics.median(other)}))
k.halt()
"""


def main() -> int:
    rows = []
    for mode in ("shadow", "direct"):
        out = subprocess.run([sys.executable, "-c", CHILD, mode, str(ROUNDS), str(PER_ROUND)],
                             capture_output=True, text=True, timeout=300, check=True)
        row = {"mode": mode, **json.loads(out.stdout)}
        rows.append(row)
        print(f"{mode}: main thread {row['main_thread_us']:.1f} us, "
              f"other thread {row['other_thread_us']:.1f} us per connect+accept+close")
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"what": "connect+accept+close on the kernel's loopback, median us per round "
                      f"of {PER_ROUND}, {ROUNDS} rounds",
              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": rows}
    (RESULTS / "connect.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["## Blocking connect, main thread (helper thread) vs another thread (µs)", "",
             "| syscall mode | main thread | other thread (baseline) |", "|---|---|---|"]
    lines += [f"| {r['mode']} | {r['main_thread_us']:.1f} | {r['other_thread_us']:.1f} |"
              for r in rows]
    (RESULTS / "connect.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

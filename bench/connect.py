#!/usr/bin/env python3
"""Blocking connect() on the main thread against another thread, from Python.

On the main thread a blocking connect runs on the package's helper thread
while the main thread waits in slices (signal handlers run, the socket's
file flags stay untouched); on any other thread it blocks in the kernel
directly.  Each round connects, accepts and closes over the kernel's
loopback; the other thread's figures are the baseline from the same run.
Medians per connect and per connect+accept+close, per syscall mode.  Writes
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
def one_round(n, loop_us, connect_us):
    t0 = time.perf_counter()
    for _ in range(n):
        s = k.socket()
        t = time.perf_counter(); s.connect(addr); connect_us.append(time.perf_counter() - t)
        srv.accept()[0].close(); s.close()
    loop_us.append((time.perf_counter() - t0) / n)
main, other, main_c, other_c = [], [], [], []
one_round(50, [], [])
for _ in range(int(sys.argv[2])):
    one_round(int(sys.argv[3]), main, main_c)
    t = threading.Thread(target=one_round, args=(int(sys.argv[3]), other, other_c))
    t.start(); t.join()
us = lambda v: round(statistics.median(v) * 1e6, 1)
print(json.dumps({"main_thread_connect_us": us(main_c), "other_thread_connect_us": us(other_c),
                  "main_thread_loop_us": us(main), "other_thread_loop_us": us(other)}))
k.halt()
"""


def main() -> int:
    rows = []
    for mode in ("shadow", "direct"):
        out = subprocess.run([sys.executable, "-c", CHILD, mode, str(ROUNDS), str(PER_ROUND)],
                             capture_output=True, text=True, timeout=300, check=True)
        row = {"mode": mode, **json.loads(out.stdout)}
        rows.append(row)
        print(f"{mode}: connect {row['main_thread_connect_us']} us on the main thread, "
              f"{row['other_thread_connect_us']} us on another; connect+accept+close "
              f"{row['main_thread_loop_us']} / {row['other_thread_loop_us']} us")
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"what": "blocking connect on the kernel's loopback: median us per connect, and "
                      f"per connect+accept+close (median of {ROUNDS} rounds of {PER_ROUND})",
              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": rows}
    (RESULTS / "connect.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["## Blocking connect, main thread (helper thread) vs another thread (µs, median)",
             "", "| syscall mode | connect, main | connect, other (baseline) "
             "| connect+accept+close, main | the same, other |", "|---|---|---|---|---|"]
    lines += [f"| {r['mode']} | {r['main_thread_connect_us']} | {r['other_thread_connect_us']} "
              f"| {r['main_thread_loop_us']} | {r['other_thread_loop_us']} |" for r in rows]
    (RESULTS / "connect.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

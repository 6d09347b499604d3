"""Per-call cost of the stdlib's socket API under lkl.patch().

For each syscall mode (a kernel boots once per process: one child process
per mode), on one thread, with a connected TCP pair (TCP_NODELAY):

- ``send``: ``a.send(b"x")``, timed alone;
- ``recv``: ``b.recv(1)`` right after it (the byte is there: no wait);
- ``pingpong``: a 1-byte round trip to an echo thread (send, then recv
  blocks until the echo is back).

Stacks, same process, same run: ``host`` is the standard library's
``socket.socket`` on the host loopback (the baseline); ``patched`` is
``socket.socket`` under ``lkl.patch()`` (``lkl.socket.socket``, whose
readiness endpoint is refreshed after every call); ``lkl`` is a plain
``lkl.Socket`` that never asked for ``fileno()`` (no endpoint to refresh),
to show what the readiness refresh itself costs.  Each call is timed with
perf_counter_ns, the clock's own cost subtracted; medians and p99 in ns.

    python bench/patched_socket.py [--calls 20000] [--modes shadow,direct] [--repeat 3]

With --repeat N each mode runs in N child processes; the table shows the
median of their medians (the JSON keeps every run): the machine may be
shared, and one run can land on a busy moment.

Writes bench/results/patched_socket.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from harness.sockets import tcp_pair  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def _stats(ns: list[int], overhead: float) -> dict[str, float]:
    ordered = sorted(ns)
    pick = lambda q: max(ordered[min(len(ordered) - 1, int(q * len(ordered)))] - overhead, 0.0)  # noqa: E731
    return {"median_ns": pick(0.5), "p99_ns": pick(0.99), "min_ns": pick(0.0)}


def _measure(make: Any, calls: int, overhead: float) -> dict[str, dict[str, float]]:
    clock = time.perf_counter_ns
    a, b, srv = tcp_pair(make, nodelay=True)
    send_ns, recv_ns = [0] * calls, [0] * calls
    for _ in range(1000):                      # warm up
        a.send(b"x")
        b.recv(1)
    for i in range(calls):
        t0 = clock()
        a.send(b"x")
        t1 = clock()
        b.recv(1)
        t2 = clock()
        send_ns[i], recv_ns[i] = t1 - t0, t2 - t1

    def echo() -> None:
        while data := b.recv(1):
            b.send(data)

    t = threading.Thread(target=echo)
    t.start()
    rtt = [0] * calls
    for _ in range(500):
        a.send(b"p")
        a.recv(1)
    for i in range(calls):
        t0 = clock()
        a.send(b"p")
        a.recv(1)
        rtt[i] = clock() - t0
    a.shutdown(socket.SHUT_WR)
    t.join(30)
    for s in (a, b, srv):
        s.close()
    return {"send": _stats(send_ns, overhead), "recv": _stats(recv_ns, overhead),
            "pingpong": _stats(rtt, overhead)}


def child(mode: str, calls: int) -> dict[str, Any]:
    import lkl

    clock = time.perf_counter_ns
    empty = [0] * calls
    for i in range(calls):
        t0 = clock()
        empty[i] = clock() - t0
    overhead = float(statistics.median(empty))
    out: dict[str, Any] = {"mode": mode, "clock_overhead_ns": overhead}
    out["host"] = _measure(socket.socket, calls, overhead)
    with lkl.boot(syscall_mode=mode) as k:
        out["lkl"] = _measure(k.socket, calls, overhead)
        with lkl.patched(k):
            assert socket.socket.__module__ == "lkl.socket"
            out["patched"] = _measure(socket.socket, calls, overhead)
        out["kernel"] = k.version
    return out


def _median_run(reps: list[dict[str, Any]]) -> dict[str, Any]:
    """One run per figure: the median over the repeated runs."""
    out: dict[str, Any] = {"mode": reps[0]["mode"], "kernel": reps[0].get("kernel")}
    for stack in ("host", "patched", "lkl"):
        out[stack] = {call: {key: statistics.median(r[stack][call][key] for r in reps)
                             for key in reps[0][stack][call]}
                      for call in reps[0][stack]}
    return out


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        "# Patched socket.socket: per-call cost",
        "",
        f"`python bench/patched_socket.py --calls {doc['calls']} --repeat {doc['repeat']}` "
        f"on {doc['machine']}, medians over the repeats "
        f"(1-minute load average {doc['loadavg_1min']:.1f} at the end: a shared machine). "
        "Medians (p99) in µs, one thread, connected TCP pair with TCP_NODELAY; "
        "`host` = stdlib socket on the host loopback (baseline, same run); "
        "`patched` = socket.socket under lkl.patch() on the kernel's loopback; "
        "`lkl` = lkl.Socket without a readiness endpoint.",
        "",
        "| mode | call | host | patched | lkl (no endpoint) | patched / host |",
        "|---|---|---|---|---|---|",
    ]
    for run in doc["runs"]:
        for call in ("send", "recv", "pingpong"):
            h, p, raw = (run[s][call] for s in ("host", "patched", "lkl"))
            lines.append(
                f"| {run['mode']} | {call} | {h['median_ns'] / 1e3:.2f} ({h['p99_ns'] / 1e3:.1f}) "
                f"| {p['median_ns'] / 1e3:.2f} ({p['p99_ns'] / 1e3:.1f}) "
                f"| {raw['median_ns'] / 1e3:.2f} ({raw['p99_ns'] / 1e3:.1f}) "
                f"| {p['median_ns'] / max(h['median_ns'], 1):.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--modes", default="shadow,direct")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.calls)))
        return
    runs, every = [], []
    for mode in args.modes.split(","):
        reps = []
        for _ in range(args.repeat):
            proc = subprocess.run([sys.executable, __file__, "--child", mode, "--calls",
                                   str(args.calls)], capture_output=True, text=True,
                                  timeout=600, check=True)
            reps.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        every += reps
        runs.append(_median_run(reps))
    doc = {"benchmark": "patched_socket", "calls": args.calls, "repeat": args.repeat,
           "every_run": every,
           "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
           "python": platform.python_version(), "loadavg_1min": os.getloadavg()[0],
           "runs": runs}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "patched_socket.json").write_text(json.dumps(doc, indent=2) + "\n")
    md = markdown(doc)
    (RESULTS / "patched_socket.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()

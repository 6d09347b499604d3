#!/usr/bin/env python3
"""The proxy's throughput (the paper's Figure 7 is measured through it).

guest ``iperf3 -c`` (a namespace's kernel) -> TAP -> ``python -m lkl
proxy`` (the lkl kernel's TCP, the C relay, the host's TCP) -> ``iperf3
-s`` on the namespace's loopback, both directions (``-R``: the backend
sends), for the paper's offload rows (NONE, CHECKSUM, LARGE_SEGMENTS,
BIG_PACKETS), one connection and four (``-P 4``), and with ``--workers
2`` (two kernels on the multi-queue TAP) against one.  Beside it in the
same run: the same relay done on host sockets by ``socat`` (guest ->
loopback -> socat -> loopback -> iperf3) and iperf3 straight over the loopback (no relay).

Each point is the median of ``--repeat`` runs of ``--seconds`` each:
Gbit/s received (iperf3's sum_received) and the relay process's CPU
seconds per GB moved (psutil; socat's forked children included).  The
proxy runs with its sandbox on, as deployed.

Everything runs in a namespace created here and deleted afterwards
(10.200.18.0/24), whose TCP uses cubic as the kernel in lkl does, whatever
the machine's default.  Needs root, iperf3 and socat.  Writes
bench/results/proxy.json and proxy.md.
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
import time
from pathlib import Path
from typing import Any

import psutil
from pyroute2 import netns

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))
from harness.netns import BENCH_CONGESTION_CONTROL  # noqa: E402
from harness.netns import Netns as Namespace  # noqa: E402
from lkl.proxy.workers import read_ready  # noqa: E402

GUEST, PROXY = "10.200.18.1", "10.200.18.2"
IPERF_PORT, PROXY_PORT, SOCAT_PORT = 5201, 5301, 5302
OFFLOADS = ["NONE", "CHECKSUM", "LARGE_SEGMENTS", "BIG_PACKETS"]
COPIES = ("per byte the proxy process itself copies once (the lkl kernel's socket buffer -> "
          "the relay's 64 KiB buffer, recv); the host kernel copies it into the process (TAP "
          "readv into the virtio ring buffers) and out of it (send into a host socket); the "
          "reverse direction the same way round (TAP writev goes straight from the lkl skb)")
CC = BENCH_CONGESTION_CONTROL


def wait_listening(ns: Namespace, host: str, port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        netns.pushns(ns.name)
        try:
            s = socket.socket()
        finally:
            netns.popns()
        with s:
            s.settimeout(1)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port}")


def start_proxy(ns: Namespace, offload: str, extra: list[str], py_relay: bool = False
                ) -> tuple[subprocess.Popen, int, list[int]]:
    """The proxy, its pid and the pids whose CPU it uses (its workers')."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if py_relay:
        env["LKL_PROXY_PY_RELAY"] = "1"
    argv = ns.exec_argv(["timeout", "-s", "KILL", "900", sys.executable, "-m", "lkl", "proxy",
                    "--nic", "tap:pxb0", "--address", f"{PROXY}/24", "--offload", offload,
                    "--memory", "256M", "--listen", f"{PROXY}:{PROXY_PORT}",
                    "--backend", f"127.0.0.1:{IPERF_PORT}", *extra])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env, cwd=ROOT)
    msg = read_ready(proc, 60)
    if msg is None:
        proc.kill()
        raise RuntimeError("the proxy did not come up")
    return proc, int(msg["pid"]), msg.get("workers") or [int(msg["pid"])]


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        t = psutil.Process(pid).cpu_times()
        total += t.user + t.system + t.children_user + t.children_system
    return total


def iperf(ns: Namespace, host: str, port: int, seconds: float, reverse: bool,
          parallel: int = 1) -> dict[str, Any]:
    argv = ["iperf3", "-c", host, "-p", str(port), "-t", str(seconds), "-J",
            "-P", str(parallel)] + (["-R"] if reverse else [])
    out = subprocess.run(ns.exec_argv(argv), capture_output=True, text=True,
                         timeout=seconds + 60)
    data = json.loads(out.stdout)
    if "error" in data:
        raise RuntimeError(f"iperf3: {data['error']}")
    end = data["end"]["sum_received"]
    return {"gbps": end["bits_per_second"] / 1e9, "bytes": end["bytes"]}


def measure(ns: Namespace, host: str, port: int, pid: list[int] | None, seconds: float,
            reverse: bool, repeat: int, parallel: int = 1) -> dict[str, Any]:
    gbps, cpu = [], []
    for _ in range(repeat):
        before = cpu_seconds(pid) if pid else 0.0
        r = iperf(ns, host, port, seconds, reverse, parallel)
        if pid:
            cpu.append((cpu_seconds(pid) - before) / (r["bytes"] / 1e9))
        gbps.append(r["gbps"])
    return {"gbps": statistics.median(gbps), "gbps_runs": gbps,
            "cpu_s_per_gb": statistics.median(cpu) if cpu else None, "cpu_runs": cpu}


def write_markdown(result: dict[str, Any]) -> None:
    """bench/results/proxy.md from the JSON result."""
    lines = ["# The proxy: guest iperf3 -> TAP -> lkl proxy -> iperf3 on the host loopback",
             "", f"Medians of {result['repeat']} runs of {result['seconds']:g} s on "
             f"{result['cpus']} CPUs (bench/proxy.py), min-max of the runs beside.  up: the "
             "guest sends; down: -R, the backend sends.  CPU: the relay process's seconds "
             "per GB moved (its workers' for --workers 2).  iperf3 client and server run on "
             "the same CPUs.", "",
             "| relay | offload | direction | Gbit/s | runs | CPU s/GB |",
             "|---|---|---|---:|---:|---:|"]
    for r in result["rows"]:
        cpu = f"{r['cpu_s_per_gb']:.2f}" if r["cpu_s_per_gb"] is not None else "-"
        runs = f"{min(r['gbps_runs']):.2f}-{max(r['gbps_runs']):.2f}"
        lines.append(f"| {r['relay']} | {r['offload']} | {r['direction']} | "
                     f"{r['gbps']:.2f} | {runs} | {cpu} |")
    lines += ["", "Copies: " + result["copies_per_byte"] + ".", "",
              "Workers: " + result["workers"] + "."]
    (RESULTS / "proxy.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--offload", action="append", choices=OFFLOADS)
    ap.add_argument("--markdown-only", action="store_true",
                    help="rewrite proxy.md from proxy.json, measure nothing")
    args = ap.parse_args()
    if args.markdown_only:
        write_markdown(json.loads((RESULTS / "proxy.json").read_text()))
        return 0
    if os.geteuid() != 0:
        sys.exit("bench/proxy.py needs root (namespaces, TAP)")
    offloads = args.offload or OFFLOADS
    rows: list[dict[str, Any]] = []
    with Namespace("lklbench", "proxy", congestion_control=CC) as ns:
        subprocess.run(ns.exec_argv(["ip", "tuntap", "add", "dev", "pxb0", "mode", "tap",
                                "multi_queue"]), check=True)
        ns.address("pxb0", f"{GUEST}/24")
        server = subprocess.Popen(ns.exec_argv(["iperf3", "-s", "-B", "127.0.0.1", "-p",
                                           str(IPERF_PORT)]), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            wait_listening(ns, "127.0.0.1", IPERF_PORT)
            for reverse in (False, True):
                rows.append({"relay": "none (loopback)", "offload": "-",
                             "direction": "down" if reverse else "up",
                             **measure(ns, "127.0.0.1", IPERF_PORT, None, args.seconds,
                                       reverse, args.repeat)})
            socat = subprocess.Popen(ns.exec_argv(
                ["socat", "-b65536", f"TCP-LISTEN:{SOCAT_PORT},bind={GUEST},fork,reuseaddr",
                 f"TCP:127.0.0.1:{IPERF_PORT}"]), stderr=subprocess.DEVNULL)
            try:
                wait_listening(ns, GUEST, SOCAT_PORT)
                for reverse in (False, True):
                    rows.append({"relay": "socat (host stack)", "offload": "-",
                                 "direction": "down" if reverse else "up",
                                 **measure(ns, GUEST, SOCAT_PORT, [socat.pid], args.seconds,
                                           reverse, args.repeat)})
            finally:
                socat.terminate()
                socat.wait(10)
            for offload in offloads:
                proc, pid, cpu_pids = start_proxy(ns, offload, [])
                try:
                    for reverse in (False, True):
                        rows.append({"relay": "lkl proxy", "offload": offload,
                                     "direction": "down" if reverse else "up",
                                     **measure(ns, PROXY, PROXY_PORT, cpu_pids, args.seconds,
                                               reverse, args.repeat)})
                    for reverse in (False, True):
                        rows.append({"relay": "lkl proxy -P 4", "offload": offload,
                                     "direction": "down" if reverse else "up",
                                     **measure(ns, PROXY, PROXY_PORT, cpu_pids, args.seconds,
                                               reverse, args.repeat, parallel=4)})
                finally:
                    os.kill(pid, 15)
                    proc.wait(30)
                print(json.dumps(rows[-4:]), flush=True)
            # The same relay loop in Python threads instead of C.
            proc, pid, cpu_pids = start_proxy(ns, "LARGE_SEGMENTS", [], py_relay=True)
            try:
                for reverse in (False, True):
                    rows.append({"relay": "lkl proxy, Python relay", "offload": "LARGE_SEGMENTS",
                                 "direction": "down" if reverse else "up",
                                 **measure(ns, PROXY, PROXY_PORT, cpu_pids, args.seconds,
                                           reverse, args.repeat)})
            finally:
                os.kill(pid, 15)
                proc.wait(30)
            # Beyond one core: two workers (kernels) on the multi-queue TAP.
            proc, pid, cpu_pids = start_proxy(ns, "LARGE_SEGMENTS", ["--workers", "2"])
            try:
                for reverse in (False, True):
                    rows.append({"relay": "lkl proxy --workers 2 -P 4",
                                 "offload": "LARGE_SEGMENTS",
                                 "direction": "down" if reverse else "up",
                                 **measure(ns, PROXY, PROXY_PORT, cpu_pids, args.seconds,
                                           reverse, args.repeat, parallel=4)})
            finally:
                os.kill(pid, 15)
                proc.wait(30)
        finally:
            server.terminate()
            server.wait(10)
    result = {"bench": "proxy", "host": platform.node(), "cpus": os.cpu_count(),
              "seconds": args.seconds, "repeat": args.repeat, "congestion_control": CC,
              "copies_per_byte": COPIES,
              "workers": "--workers 2: two processes, each its own kernel, on one "
              "multi-queue TAP (the host spreads flows over the queues); the TAP is "
              "multi-queue in every row",
              "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "proxy.json").write_text(json.dumps(result, indent=1) + "\n")
    write_markdown(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

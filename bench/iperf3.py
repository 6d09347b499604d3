#!/usr/bin/env python3
"""iperf3, unmodified, on the lkl stack through the preload library.

Debian's iperf3 runs with ``LD_PRELOAD=build/lib/liblkl-preload.so``
(its sockets are a kernel inside it, on a TAP into a namespace) against
the namespace's own iperf3 on the host stack: LKL→host and host→LKL
(``-R``) for each offload preset, beside host↔host iperf3 over a veth
pair between two namespaces, in one run.  Namespaces are created here
and deleted afterwards; addresses are 10.203.0.0/24 and 10.204.0.0/24
inside them only.  The host stack in those namespaces uses cubic, as the
kernel in lkl does, whatever the machine's default.

CPU per GB: the user+system CPU time of each side's process (psutil, read
when the process has ended and before it is reaped) over the bytes moved.

Writes bench/results/iperf3.json (each run's full iperf3 JSON kept as the
record) and bench/results/iperf3.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from pyroute2 import NetNS

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from harness.netns import BENCH_CONGESTION_CONTROL, Netns  # noqa: E402

PRELOAD = ROOT / "build" / "lib" / "liblkl-preload.so"
RESULTS = ROOT / "bench" / "results"
PRESETS = ["NONE", "CHECKSUM", "LARGE_SEGMENTS", "BIG_PACKETS"]
PORT = 5201
CC = BENCH_CONGESTION_CONTROL


def cpu_seconds_at_exit(proc: subprocess.Popen, timeout: float) -> float:
    """User+system CPU of proc's process (every thread), once it has
    exited; then reap it."""
    ps = psutil.Process(proc.pid)
    deadline = time.monotonic() + timeout
    while ps.status() != psutil.STATUS_ZOMBIE:
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"pid {proc.pid} still running after {timeout} s")
        time.sleep(0.02)  # polling the process state, with a deadline
    times = ps.cpu_times()
    proc.wait()
    return times.user + times.system


def listening(ns: Netns) -> bool:
    out = subprocess.run(["ip", "netns", "exec", ns.name, "ss", "-Hltn", f"sport = :{PORT}"],
                         capture_output=True, text=True, timeout=10).stdout
    return bool(out.strip())


def run_pair(server_ns: Netns, client_ns: Netns, client_argv: list[str],
             server_addr: str, seconds: int, reverse: bool) -> dict:
    """A host-stack iperf3 server, one client (maybe preloaded): both
    JSONs and both processes' CPU seconds."""
    iperf3 = shutil.which("iperf3") or "iperf3"
    with tempfile.TemporaryFile("w+") as server_out, \
            tempfile.TemporaryFile("w+") as client_out:
        outs = {"server": server_out, "client": client_out}
        server = subprocess.Popen(server_ns.exec_argv([iperf3, "-s", "-1", "-J", "-p", str(PORT)]),
                                  stdout=outs["server"], stderr=subprocess.STDOUT)
        client = None
        try:
            deadline = time.monotonic() + 15
            while not listening(server_ns):
                if time.monotonic() > deadline:
                    raise RuntimeError("the iperf3 server did not listen")
                time.sleep(0.05)  # polling the listening state, with a deadline
            argv = [*client_argv, iperf3, "-c", server_addr, "-p", str(PORT), "-t",
                    str(seconds), "-J", *(["-R"] if reverse else [])]
            client = subprocess.Popen(client_ns.exec_argv(argv), stdout=outs["client"],
                                      stderr=subprocess.STDOUT)
            client_cpu = cpu_seconds_at_exit(client, seconds + 60)
            server_cpu = cpu_seconds_at_exit(server, 30)
            texts = {}
            for side, f in outs.items():
                f.seek(0)
                texts[side] = f.read()
            if client.returncode:
                raise RuntimeError(f"client: {texts['client'][-2000:]}")
        finally:
            for proc in (server, client):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait()
    return {"client": json.loads(texts["client"]), "server": json.loads(texts["server"]),
            "client_cpu_s": client_cpu, "server_cpu_s": server_cpu}


def summarise(name: str, stack: str, preset: str | None, direction: str,
              pair: dict, lkl_side: str | None) -> dict:
    client = pair["client"]
    end = client["end"]
    moved = end["sum_received"]["bytes"]
    seconds = end["sum_received"]["seconds"]
    client_cpu = pair["client_cpu_s"]
    gb = moved / 1e9
    return {
        "name": name, "stack": stack, "preset": preset, "direction": direction,
        "gbit_s": end["sum_received"]["bits_per_second"] / 1e9,
        "bytes": moved, "seconds": seconds,
        "retransmits": end.get("sum_sent", {}).get("retransmits"),
        "client_cpu_s": client_cpu, "server_cpu_s": pair["server_cpu_s"],
        "client_cpu_s_per_gb": client_cpu / gb, "server_cpu_s_per_gb": pair["server_cpu_s"] / gb,
        "lkl_side": lkl_side, "iperf3": pair,
    }


def host_veth(seconds: int, reverse: bool) -> dict:
    with Netns("lklperf", "a", CC) as a, Netns("lklperf", "b", CC) as b:
        a.add_veth_to(b, "ip0", "ip1", "10.204.0.1/24", "10.204.0.2/24")
        return run_pair(b, a, [], "10.204.0.2", seconds, reverse)


def lkl_tap(preset: str, mode: str, seconds: int, reverse: bool) -> dict:
    with Netns("lklperf", "tap", CC) as ns:
        with NetNS(ns.name) as ipr:
            ipr.link("add", ifname="perftap", kind="tuntap", mode="tap")
        ns.address("perftap", "10.203.0.1/24")
        env = ["env", f"LD_PRELOAD={PRELOAD}", "LKL_NIC=tap:perftap",
               "LKL_ADDRESS=10.203.0.2/24", f"LKL_OFFLOAD={preset}",
               f"LKL_SYSCALL_MODE={mode}"]
        return run_pair(ns, ns, env, "10.203.0.1", seconds, reverse)


def markdown(data: dict) -> str:
    lines = ["# iperf3 on the lkl stack (preload library) beside host↔host", "",
             f"{data['meta']['seconds']} s per run, {data['meta']['repeat']} run(s) each, "
             f"median shown; syscall mode {data['meta']['mode']}; "
             f"{data['meta']['cpus']} CPUs shared with whatever else ran (1-minute load "
             f"{data['meta']['loadavg_before_after'][0]:.1f} before, "
             f"{data['meta']['loadavg_before_after'][1]:.1f} after).", "",
             "| stack | offload | direction | Gbit/s | lkl side CPU s/GB | host side CPU s/GB "
             "| retransmits |", "|---|---|---|---|---|---|---|"]
    for r in data["rows"]:
        lkl_cpu = host_cpu = "-"
        if r["stack"] == "lkl":
            lkl_cpu = f"{r['client_cpu_s_per_gb']:.2f}"
            host_cpu = f"{r['server_cpu_s_per_gb']:.2f}"
        else:
            host_cpu = f"{r['client_cpu_s_per_gb']:.2f} + {r['server_cpu_s_per_gb']:.2f}"
        lines.append(f"| {r['stack']} | {r['preset'] or '-'} | {r['direction']} "
                     f"| {r['gbit_s']:.2f} | {lkl_cpu} | {host_cpu} | {r['retransmits']} |")
    lines += ["", "lkl side: the preloaded iperf3 (its kernel's threads included); host side: "
              "the namespace's iperf3 (for host↔host: client + server).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--mode", choices=("shadow", "direct"), default="direct")
    parser.add_argument("--presets", nargs="*", default=PRESETS)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/iperf3.py needs root (network namespaces, TAP)")
    if not shutil.which("iperf3") or not PRELOAD.exists():
        sys.exit("needs iperf3 and build/lib/liblkl-preload.so (make setup lib)")

    load_before = os.getloadavg()
    runs: list[dict] = []
    plans: list[tuple[str, str, str | None, str, bool]] = []
    for reverse in (False, True):
        plans.append(("host↔host veth", "host", None,
                      "b→a" if reverse else "a→b", reverse))
    for preset in args.presets:
        for reverse in (False, True):
            plans.append((f"lkl {preset}", "lkl", preset,
                          "host→lkl" if reverse else "lkl→host", reverse))
    rows = []
    for name, stack, preset, direction, reverse in plans:
        tries = []
        for _ in range(args.repeat):
            pair = (host_veth(args.seconds, reverse) if stack == "host" else
                    lkl_tap(preset or "NONE", args.mode, args.seconds, reverse))
            row = summarise(name, stack, preset, direction, pair,
                            "client" if stack == "lkl" else None)
            tries.append(row)
            runs.append(row)
            print(f"{name:24} {direction:9} {row['gbit_s']:6.2f} Gbit/s  "
                  f"client {row['client_cpu_s_per_gb']:.2f} s/GB  "
                  f"server {row['server_cpu_s_per_gb']:.2f} s/GB", flush=True)
        median = sorted(tries, key=lambda r: r["gbit_s"])[len(tries) // 2]
        rows.append({k: v for k, v in median.items() if k != "iperf3"} |
                    {"gbit_s_all": [t["gbit_s"] for t in tries],
                     "gbit_s_median": statistics.median(t["gbit_s"] for t in tries)})
    data = {"meta": {"seconds": args.seconds, "repeat": args.repeat, "mode": args.mode,
                     "cpus": os.cpu_count(), "congestion_control": CC,
                     "loadavg_before_after": [load_before[0], os.getloadavg()[0]],
                     "when": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                   time.gmtime())},
            "rows": rows, "runs": runs}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "iperf3.json").write_text(json.dumps(data, indent=1))
    (RESULTS / "iperf3.md").write_text(markdown(data))
    print(markdown(data))


if __name__ == "__main__":
    main()

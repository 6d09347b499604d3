"""Diagnosis-tool costs: the control proxy's round trip, and capture's toll on throughput.

1. Proxy round trip.  A child process boots a kernel serving a control
   socket.  ``build/bench/proxy_loop`` (plain libc) times ``lseek`` and
   ``read`` of ``/proc/sys/net/ipv4/tcp_syn_retries`` call by call: under
   liblkl-attach.so each call crosses the Unix socket and runs in the
   other process's kernel; without it, the same program reads the host's
   file (baseline, same run).  The Python client (lkl.control.Client)
   is timed too.
2. Capture overhead.  Two kernels in two processes joined by an
   lkl.Pipe; the client sends ``--mbytes`` over TCP.  Throughput with no
   capture, with a full-frame capture to a file, and with a 128-byte
   snaplen capture (same run, each ``--repeat`` times; medians).

    python bench/attach.py [--calls 10000] [--mbytes 256] [--repeat 3]

JSON to bench/results/attach.json, a table to bench/results/attach.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lkl import control  # noqa: E402

RESULTS = ROOT / "bench" / "results"
LOOP = ROOT / "build" / "bench" / "proxy_loop"
PROC_FILE = "/proc/sys/net/ipv4/tcp_syn_retries"

SERVER = """
import sys, lkl
k = lkl.boot(memory="64M", control=sys.argv[1])
print("READY", flush=True)
sys.stdin.readline()
k.halt()
"""

# argv: pipe fd, own address, role, bytes, capture mode ("off", "full", "snap128"), pcap path.
PEER = """
import sys, time, lkl
fd, me, role, nbytes, mode, path = (int(sys.argv[1]), sys.argv[2], sys.argv[3],
                                    int(sys.argv[4]), sys.argv[5], sys.argv[6])
nic = lkl.Nic(lkl.Pipe(fd), offload=lkl.Offload.LARGE_SEGMENTS)
k = lkl.boot(memory="128M", nics=[nic])
nic.up(); nic.add_address(me + "/24")
cap = None
if mode != "off" and role == "client":
    cap = nic.capture(path, snaplen=128 if mode == "snap128" else 65535)
if role == "server":
    srv = k.socket(); srv.settimeout(60); srv.bind((me, 5001)); srv.listen()
    a, _ = srv.accept(); a.settimeout(60)
    buf = bytearray(1 << 18); n = 0; t0 = time.perf_counter()
    while (r := a.recv_into(buf)):
        n += r
    print(n, time.perf_counter() - t0, flush=True)
else:
    deadline = time.monotonic() + 30
    while True:
        s = k.socket(); s.settimeout(5)
        try:
            s.connect(("10.210.0.1", 5001)); break
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    block = bytes(1 << 18)
    for _ in range(nbytes // len(block)):
        s.sendall(block)
    s.close()
    st = cap.stop() if cap else {"frames": 0, "dropped": 0}
    print(st["frames"], st["dropped"], flush=True)
k.halt()
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def _loop(calls: int, env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run([str(LOOP), PROC_FILE, str(calls)], capture_output=True, text=True,
                         timeout=300, env=env, check=True).stdout.split()
    s50, s99, r50, r99 = (int(x) / 1000 for x in out)
    return {"lseek_median_us": s50, "lseek_p99_us": s99, "read_median_us": r50,
            "read_p99_us": r99}


def proxy(calls: int) -> dict[str, object]:
    name = f"bench-attach-{os.getpid()}"
    srv = subprocess.Popen([sys.executable, "-c", SERVER, name], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
    try:
        assert srv.stdout is not None and srv.stdout.readline().strip() == "READY"
        host = _loop(calls, dict(os.environ))
        attached = _loop(calls, control.attach_env(name))
        with control.Client(name) as c:
            fd = c.open(PROC_FILE)
            times = []
            for _ in range(calls):
                t0 = time.perf_counter_ns()
                c.call(control.LSEEK, fd, 0, 0)
                times.append(time.perf_counter_ns() - t0)
            c.close_fd(fd)
        py = statistics.median(times) / 1000
    finally:
        if srv.poll() is None and srv.stdin is not None:
            srv.stdin.write("\n")
            srv.stdin.flush()
        srv.wait(timeout=30)
    return {"calls": calls, "host_file": host, "attached": attached,
            "python_client_lseek_median_us": py}


def transfer(mode: str, nbytes: int, pcap: str) -> dict[str, float]:
    import lkl

    a, b = lkl.Pipe.pair()
    procs = []
    try:
        for end, ip, role in ((a, "10.210.0.1", "server"), (b, "10.210.0.2", "client")):
            procs.append(subprocess.Popen(
                [sys.executable, "-c", PEER, str(end.fileno()), ip, role, str(nbytes), mode,
                 pcap], pass_fds=(end.fileno(),), stdout=subprocess.PIPE, text=True,
                env=_env(), cwd=ROOT))
        a.close()
        b.close()
        outs = [p.communicate(timeout=180)[0].split() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    if len(outs[0]) < 2 or len(outs[1]) < 2:
        return {"failed": 1.0}  # a run that did not finish (reported, not averaged)
    n, secs = int(outs[0][0]), float(outs[0][1])
    frames, dropped = int(outs[1][0]), int(outs[1][1])
    size = os.path.getsize(pcap) if mode != "off" and os.path.exists(pcap) else 0
    return {"gbit_s": 8 * n / secs / 1e9, "bytes": n, "frames": frames, "dropped": dropped,
            "pcap_bytes": size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=10000)
    ap.add_argument("--mbytes", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not LOOP.exists():
        sys.exit(f"{LOOP} is missing: make -C bench/native BUILD=$PWD/build")

    result: dict[str, object] = {"host": platform.node(), "cpus": os.cpu_count(),
                                 "loadavg_start": os.getloadavg()[0],
                                 "proxy": proxy(args.calls)}
    runs: dict[str, list[dict[str, float]]] = {"off": [], "full": [], "snap128": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for mode in runs:  # interleaved, so drift hits every mode alike
                pcap = os.path.join(tmp, f"{mode}.pcap")
                runs[mode].append(transfer(mode, args.mbytes << 20, pcap))
                if os.path.exists(pcap):
                    os.unlink(pcap)
    capture: dict[str, dict[str, Any]] = {}
    for mode, rs in runs.items():
        done = [r["gbit_s"] for r in rs if "gbit_s" in r]
        capture[mode] = {"median_gbit_s": statistics.median(done or [0.0]),
                         "failed_runs": len(rs) - len(done), "runs": rs}
    result["capture"] = capture
    result["loadavg_end"] = os.getloadavg()[0]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "attach.json").write_text(json.dumps(result, indent=2) + "\n")

    p = result["proxy"]
    assert isinstance(p, dict)
    lines = [
        "# Diagnosis tools: proxy round trip and capture overhead", "",
        f"Proxy: {args.calls} calls of `proxy_loop` on `{PROC_FILE}` (median / p99, us).", "",
        "| call | host's own file | through liblkl-attach.so |", "|---|---|---|",
    ]
    for call in ("lseek", "read"):
        h, a = p["host_file"], p["attached"]
        lines.append(f"| {call} | {h[call + '_median_us']:.2f} / {h[call + '_p99_us']:.2f} | "
                     f"{a[call + '_median_us']:.2f} / {a[call + '_p99_us']:.2f} |")
    lines += ["", f"Python client (lkl.control.Client) lseek: "
              f"{p['python_client_lseek_median_us']:.2f} us median.", "",
              f"Capture: TCP over an lkl.Pipe between two kernels, {args.mbytes} MiB, "
              f"LARGE_SEGMENTS, {args.repeat} runs each (median Gbit/s).", "",
              "| capture | Gbit/s | frames | dropped |", "|---|---|---|---|"]
    for mode, c in capture.items():
        finished = [r for r in c["runs"] if "gbit_s" in r] or [{"frames": 0, "dropped": 0}]
        lines.append(f"| {mode} | {c['median_gbit_s']:.2f} | {finished[-1]['frames']} | "
                     f"{finished[-1]['dropped']} |")
    lines += ["", f"Host load average (1 min) {result['loadavg_start']:.1f} at the start, "
              f"{result['loadavg_end']:.1f} at the end, on {os.cpu_count()} CPUs."]
    (RESULTS / "attach.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

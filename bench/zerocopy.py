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

Receive rows (--part recv): a 64 KiB TCP stream received with recv()
(a new bytes object per call), recv_into() (one reused buffer) and
recv_zerocopy() (views of the kernel's skbs, released after each call;
the views are made and their lengths read, the bytes not touched;
zerocopy_no_views: the same without making the views, what the Python
objects cost) over two paths, direct syscall mode, variants interleaved
in each round:

  loopback  one kernel, 127.0.0.1: the sender is a thread of the same
            process; CPU = the receiving thread's own (thread_time: in
            direct mode its syscalls run on it), so it is the receive
            call's cost: the copy to the application (or not), Python,
            the ACKs it triggers
  pipe      LKL->LKL, two processes joined by an lkl.Pipe (virtio-net,
            large segments); CPU = the receiving process (user+system,
            all its threads: device poller, softirq, TCP, the call)

Writes bench/results/zerocopy.json and zerocopy.md (a part that is not
run keeps its previous figures).  The send part needs root.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import tcp_stream as ts  # noqa: E402

from harness.tcp_stream import BIN, ROWS  # noqa: E402

VARIANTS = {"off": "", "kernel": " --zerocopy kernel", "heap": " --zerocopy heap"}
MODE = "--mode direct --nohz-off"


# One receiver (and, for "pipe", the sender in a second process).  argv:
# path variant nbytes role [pipe fd].  Prints one JSON line.
RECV_CHILD = r"""
import json, os, resource, sys, threading, time
import lkl
path, variant, nbytes, role = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
CHUNK = 64 << 10
nics = []
if path == "pipe":
    nic = lkl.Nic(lkl.Pipe(int(sys.argv[5])), offload=lkl.Offload.LARGE_SEGMENTS)
    nics = [nic]
k = lkl.boot(syscall_mode="direct", nics=nics)
if path == "pipe":
    nic.up(); nic.add_address(("10.204.1.1" if role == "recv" else "10.204.1.2") + "/24")
addr = ("127.0.0.1" if path == "loopback" else "10.204.1.1", 5201)

def send(host, wait=True):
    s = k.socket(); s.settimeout(60)
    for _ in range(100):
        try:
            s.connect(host); break
        except OSError:
            time.sleep(0.05)
    buf = os.urandom(CHUNK); left = nbytes
    while left > 0:
        n = min(left, CHUNK); s.sendall(buf[:n]); left -= n
    s.shutdown(1)
    if wait:                # the receiver closes once it has it all: then halt
        s.settimeout(120)
        s.recv(1)
    s.close()

if role == "send":
    send(addr); k.halt(); sys.exit(0)

srv = k.socket(); srv.bind(addr); srv.listen()
if path == "loopback":
    threading.Thread(target=send, args=(addr, False), daemon=True).start()
print("listening", flush=True)
conn, _ = srv.accept()
conn.settimeout(60)         # a stall fails the run instead of hanging it
out = {}

def receive():
    buf = bytearray(CHUNK); got = 0; calls = 0; segs = 0
    t0, c0, r0 = time.monotonic(), time.thread_time(), resource.getrusage(resource.RUSAGE_SELF)
    while True:
        if variant == "recv":
            n = len(conn.recv(CHUNK))
        elif variant == "recv_into":
            n = conn.recv_into(buf)
        elif variant == "recv_zerocopy":
            z = conn.recv_zerocopy(CHUNK)
            views = z.views
            n = sum(len(v) for v in views)
            segs += len(views)
            del views
            z.release()
        else:               # recv_zerocopy, its views never made
            z = conn.recv_zerocopy(CHUNK)
            n = len(z)
            z.release()
        if not n:
            break
        got += n; calls += 1
    t1, c1, r1 = time.monotonic(), time.thread_time(), resource.getrusage(resource.RUSAGE_SELF)
    out.update(bytes=got, seconds=t1 - t0, thread_cpu=c1 - c0, calls=calls, segments=segs,
               process_cpu=(r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))

def out_segs():
    rows = [r.split() for r in k.read_text("/proc/net/snmp").splitlines() if r.startswith("Tcp:")]
    return int(rows[1][rows[0].index("OutSegs")])

segs0 = out_segs()
t = threading.Thread(target=receive); t.start(); t.join()
out["out_segs"] = out_segs() - segs0
conn.close()
if not out:
    print(k.read_text("/proc/net/tcp"), file=sys.stderr)
    k.halt(); sys.exit(1)
print(json.dumps(out), flush=True)
k.halt()
"""
RECV_VARIANTS = ("recv", "recv_into", "recv_zerocopy", "zerocopy_no_views")
RECV_PATHS = ("loopback", "pipe")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def recv_one(path: str, variant: str, nbytes: int) -> dict:
    """One receive run: bytes, seconds and CPU of the receiving side."""
    import lkl

    cmd = [sys.executable, "-c", RECV_CHILD, path, variant, str(nbytes)]
    if path == "loopback":
        proc = subprocess.run([*cmd, "recv"], capture_output=True, text=True, timeout=300,
                              env=_env(), cwd=ROOT)
        if proc.returncode:
            raise RuntimeError(proc.stderr[-2000:])
        r = json.loads(proc.stdout.splitlines()[-1])
        cpu = r["thread_cpu"]
    else:
        a, b = lkl.Pipe.pair()
        rx = subprocess.Popen([*cmd, "recv", str(a.fileno())], pass_fds=(a.fileno(),),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env(), cwd=ROOT)
        a.close()
        try:
            assert rx.stdout is not None
            line = rx.stdout.readline()        # "listening"
            if line.strip() != "listening":
                raise RuntimeError(rx.communicate(timeout=30)[1][-2000:])
            tx = subprocess.run([*cmd, "send", str(b.fileno())], pass_fds=(b.fileno(),),
                                capture_output=True, text=True, timeout=300, env=_env(),
                                cwd=ROOT)
            b.close()
            out, err = rx.communicate(timeout=300)
        finally:
            if rx.poll() is None:
                rx.kill()
                rx.wait()
        if rx.returncode or tx.returncode:
            raise RuntimeError(err[-2000:] + tx.stderr[-2000:])
        r = json.loads(out.splitlines()[-1])
        cpu = r["process_cpu"]
    gb = r["bytes"] / 1e9
    return {"gbps": round(r["bytes"] * 8 / r["seconds"] / 1e9, 3),
            "cpu_s_per_gb": round(cpu / gb, 4), "bytes": r["bytes"],
            "bytes_per_call": round(r["bytes"] / max(r["calls"], 1)),
            "segments_per_call": round(r["segments"] / max(r["calls"], 1), 2),
            "acks_per_call": round(r["out_segs"] / max(r["calls"], 1), 2)}


def recv_part(args: argparse.Namespace) -> dict:
    """The receive rows: every path and variant, interleaved, medians."""
    points: dict[str, dict[str, list[dict]]] = {p: {v: [] for v in RECV_VARIANTS}
                                                for p in RECV_PATHS}
    for rnd in range(args.recv_rounds):
        for path in RECV_PATHS:
            for variant in RECV_VARIANTS:
                ts.wait_quiet()
                try:
                    p = recv_one(path, variant, args.recv_bytes)
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    print(f"round {rnd} {path} {variant}: failed {e}", flush=True)
                    continue
                points[path][variant].append(p)
                print(f"round {rnd} {path:8} {variant:13} {p['gbps']:.2f} Gbit/s "
                      f"{p['cpu_s_per_gb']:.4f} CPU s/GB", flush=True)
    summary: dict[str, dict[str, dict]] = {}
    for path, by_variant in points.items():
        summary[path] = {}
        for variant, ps in by_variant.items():
            if ps:
                summary[path][variant] = {
                    "rounds": len(ps),
                    "gbps_median": round(statistics.median(p["gbps"] for p in ps), 3),
                    "cpu_s_per_gb_median": round(
                        statistics.median(p["cpu_s_per_gb"] for p in ps), 4),
                    "cpu_s_per_gb_range": [min(p["cpu_s_per_gb"] for p in ps),
                                           max(p["cpu_s_per_gb"] for p in ps)],
                    "segments_per_call": ps[0]["segments_per_call"],
                    "bytes_per_call": ps[0]["bytes_per_call"],
                    "acks_per_call": statistics.median(p["acks_per_call"] for p in ps)}
        base = summary[path].get("recv", {}).get("cpu_s_per_gb_median")
        for v in summary[path].values():
            if base:
                v["cpu_vs_recv_pct"] = round(100 * (v["cpu_s_per_gb_median"] / base - 1), 1)
    return {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "rounds": args.recv_rounds, "bytes": args.recv_bytes, "mode": "direct",
            "summary": summary, "points": points}


def recv_markdown(r: dict) -> list[str]:
    md = ["", "# Zero-copy receive: a 64 KiB TCP stream, recv vs recv_zerocopy", "",
          f"Run {r['when']}, {r['rounds']} rounds x {r['bytes'] / 2**30:.1f} GiB per "
          "variant, variants interleaved, direct syscall mode; medians. CPU: loopback = "
          "the receiving thread (its syscalls run on it); pipe = the receiving process "
          "(every thread: device, softirq, TCP, the call).", "",
          "| path | receive | Gbit/s | receiver CPU s/GB | (range) | vs recv | bytes/call "
          "| views/call | segments sent/call |", "|---|---|---|---|---|---|---|---|---|"]
    for path, by_variant in r["summary"].items():
        for variant, s in by_variant.items():
            lo, hi = s["cpu_s_per_gb_range"]
            md.append(f"| {path} | {variant} | {s['gbps_median']} | "
                      f"{s['cpu_s_per_gb_median']} | {lo}-{hi} | "
                      f"{s.get('cpu_vs_recv_pct', 0):+.1f} % | "
                      f"{s['bytes_per_call']} | {s['segments_per_call'] or '-'} | "
                      f"{s['acks_per_call']} |")
    md += ["", "Copies of each payload byte on the receiving side: `recv` and `recv_into` "
           "copy it from the skb into the application's buffer (`skb_copy_datagram_msg`, "
           "copy 4 of the table in native/host/virtio_net.c; `recv` also allocates a "
           "bytes object per call); `recv_zerocopy` does not: the views are the skb's "
           "data, held until release (`zerocopy_no_views`: the same call without "
           "making the views). Over the pipe the device's copies (the host "
           "socket read into the receive buffers) stay. The views are not read here; an "
           "application that reads them pays for reading, as it would for its copy. "
           "The machine (2 cores) is shared: where the ranges overlap, the variants are "
           "not told apart by this run."]
    return md


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--msg", type=int, default=64 * 1024)
    parser.add_argument("--binary", type=Path, default=BIN)
    parser.add_argument("--part", choices=("all", "send", "recv"), default="all")
    parser.add_argument("--recv-rounds", type=int, default=3)
    parser.add_argument("--recv-bytes", type=int, default=1 << 30)
    args = parser.parse_args()
    args.threads = False
    out = ROOT / "bench" / "results"
    old: dict = {}
    if (out / "zerocopy.json").exists():
        old = json.loads((out / "zerocopy.json").read_text())
    receive = recv_part(args) if args.part in ("all", "recv") else old.get("receive")
    if args.part == "recv":
        if not old:
            print("no send figures yet: run --part send first", file=sys.stderr)
            return 1
        old["receive"] = receive
        (out / "zerocopy.json").write_text(json.dumps(old, indent=1) + "\n")
        md = (out / "zerocopy.md").read_text().split("\n# Zero-copy receive")[0].rstrip("\n")
        (out / "zerocopy.md").write_text(md + "\n" + "\n".join(recv_markdown(receive)) + "\n")
        print(json.dumps(receive["summary"]))
        return 0
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
    if receive:
        report["receive"] = receive
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
    if receive:
        md += recv_markdown(receive)
    (out / "zerocopy.md").write_text("\n".join(md) + "\n")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Python network workloads: host stack vs lkl, stock asyncio vs lkl.asyncio.EventLoop.

Everything runs over 127.0.0.1 (the host's loopback, or the kernel's own
inside the process).  Each configuration runs in its own child process
(one kernel per process), all in one run, so ratios compare like with like:

- ``host-stdlib``: the host stack, stock asyncio;  ``host-uvloop``: uvloop;
  both with the machine's own congestion control;  ``host-stdlib-cubic``:
  the host stack in a namespace made for it whose TCP uses cubic, as the
  kernel in lkl does (a machine that defaults to bbr without an fq qdisc
  paces loopback bulk transfers with hrtimers: 12 against 67 Gbit/s here);
- ``lkl-<mode>-stock``: lkl sockets on the stock selector loop (host
  eventfds set by the package's poller thread);
- ``lkl-<mode>-ours``: lkl sockets on ``lkl.asyncio.EventLoop`` (waits in
  the kernel's epoll);  ``<mode>``: shadow (the paper's baseline), direct
  (what ``lkl.boot()`` gives: direct syscalls, periodic tick ``nohz=off``),
  direct-dyntick (direct with ``nohz=on``);
- ``-1core``: the whole process (and so every kernel thread) on CPU 0.

The configurations run in --repeat interleaved rounds (one child per
configuration and round), so load from other processes spreads over all
of them; each figure is the median over the rounds.  Workloads:

- echo: asyncio streams, client and echo server in one loop, 100 B, µs per
  round trip;
- conns: asyncio, 100 connections at a time, each connects, makes 5 round
  trips of 100 B and closes: connections per second;
- pingpong: two threads with blocking sockets, 1 byte, µs per round trip
  (no event loop: once per stack and mode);
- stream: one thread sendall()s 64 KiB buffers, another recv_into()s:
  Gbit/s (once per stack and mode);
- c10k (--c10k): 10 000 concurrent asyncio connections (20 000 sockets)
  held open on a default ``lkl.boot()`` beside the host stack: process RSS
  and kernel slab per connection, host fds per connection.

Writes bench/results/python_net.json and .md (and .png with matplotlib).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))
from harness.netns import BENCH_CONGESTION_CONTROL, Netns, machine_congestion_control  # noqa: E402
from harness.sockets import tcp_pair  # noqa: E402

CONFIGS = ("host-stdlib", "host-stdlib-cubic", "host-uvloop", "lkl-shadow-stock",
           "lkl-shadow-ours",
           "lkl-direct-stock", "lkl-direct-ours", "lkl-direct-dyntick-ours",
           "host-stdlib-1core", "lkl-direct-stock-1core", "lkl-direct-ours-1core")
WORKLOADS = ("echo_us", "conns_per_s", "pingpong_us", "stream_gbps")
MSG = b"x" * 100


# ---- the workloads (in the child) ------------------------------------------

class Stack:
    """Where sockets come from: the host, or the booted kernel."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel

    def socket(self) -> Any:
        if self.kernel is None:
            return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        return self.kernel.socket()

    async def start_server(self, cb: Any) -> Any:
        if self.kernel is None:
            return await asyncio.start_server(cb, "127.0.0.1", 0, backlog=1024)
        import lkl.asyncio as la
        return await la.start_server(self.kernel, cb, "127.0.0.1", 0, backlog=1024)

    async def open_connection(self, port: int) -> Any:
        if self.kernel is None:
            return await asyncio.open_connection("127.0.0.1", port)
        import lkl.asyncio as la
        return await la.open_connection(self.kernel, "127.0.0.1", port)


async def _echo_handler(reader: Any, writer: Any) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
    except ConnectionError:
        pass
    finally:
        writer.close()


async def echo_us(stack: Stack, n: int) -> float:
    server = await stack.start_server(_echo_handler)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await stack.open_connection(port)
    for _ in range(200):
        writer.write(MSG)
        await reader.readexactly(len(MSG))
    start = time.perf_counter()
    for _ in range(n):
        writer.write(MSG)
        await reader.readexactly(len(MSG))
    elapsed = time.perf_counter() - start
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    return elapsed / n * 1e6


async def conns_per_s(stack: Stack, total: int, concurrency: int = 100) -> float:
    server = await stack.start_server(_echo_handler)
    port = server.sockets[0].getsockname()[1]
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with sem:
            reader, writer = await stack.open_connection(port)
            for _ in range(5):
                writer.write(MSG)
                await reader.readexactly(len(MSG))
            writer.close()
            await writer.wait_closed()

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(total)))
    elapsed = time.perf_counter() - start
    server.close()
    await server.wait_closed()
    return total / elapsed


def _pair(stack: Stack) -> tuple[Any, Any]:
    client, conn, listener = tcp_pair(stack.socket, nodelay=True)
    listener.close()
    return client, conn


def _both(a: Any, b: Any, *sides: Any) -> None:
    """Each of ``sides`` in a thread of its own (joined, 120 s each), then
    the pair a, b closed."""
    threads = [threading.Thread(target=side) for side in sides]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    a.close()
    b.close()


def pingpong_us(stack: Stack, n: int) -> float:
    # Both ends on threads other than the main one (whose blocking lkl calls
    # wait in slices for signal handlers): two plain blocking peers.
    a, b = _pair(stack)
    result: list[float] = []

    def responder() -> None:
        for _ in range(n + 100):
            b.sendall(b.recv(1))

    def requester() -> None:
        for _ in range(100):
            a.sendall(b"x")
            a.recv(1)
        start = time.perf_counter()
        for _ in range(n):
            a.sendall(b"x")
            a.recv(1)
        result.append((time.perf_counter() - start) / n * 1e6)

    _both(a, b, responder, requester)
    return result[0]


def stream_gbps(stack: Stack, nbytes: int) -> float:
    a, b = _pair(stack)
    chunk = b"\0" * 65536
    got = [0.0]

    def sender() -> None:
        for _ in range(nbytes // len(chunk)):
            a.sendall(chunk)
        a.shutdown(socket.SHUT_WR)

    def receiver() -> None:
        buf = bytearray(1 << 18)
        total = 0
        start = time.perf_counter()
        while n := b.recv_into(buf):
            total += n
        got[0] = total * 8 / (time.perf_counter() - start) / 1e9

    _both(a, b, receiver, sender)
    return got[0]


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _slab(kernel: Any) -> int:
    text = kernel.read_text("/proc/meminfo") if kernel is not None else Path(
        "/proc/meminfo").read_text()
    for line in text.splitlines():
        if line.startswith("Slab:"):
            return int(line.split()[1]) * 1024
    return 0


async def c10k(stack: Stack, n: int) -> dict[str, Any]:
    held: list[Any] = []

    finished: list[None] = []

    async def hold(reader: Any, writer: Any) -> None:
        held.append(writer)
        try:
            while await reader.read(4096):  # until the client closes
                pass
        except ConnectionError:
            pass
        finally:
            writer.close()
            finished.append(None)

    server = await stack.start_server(hold)
    port = server.sockets[0].getsockname()[1]
    fds0, rss0, slab0 = len(os.listdir("/proc/self/fd")), _rss(), _slab(stack.kernel)
    sem = asyncio.Semaphore(500)
    clients: list[Any] = []

    async def one() -> None:
        async with sem:
            clients.append(await stack.open_connection(port))

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    deadline = time.monotonic() + 30
    while len(held) < n and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - start
    fds1, rss1, slab1 = len(os.listdir("/proc/self/fd")), _rss(), _slab(stack.kernel)
    # One round trip on every connection: they all work.
    for _, w in clients:
        w.write(b"!")
    ok = len(held)
    for _, w in clients:
        w.close()
    await asyncio.gather(*(w.wait_closed() for _, w in clients), return_exceptions=True)
    deadline = time.monotonic() + 30
    while len(finished) < ok and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    server.close()
    return {"connections": ok, "seconds": round(elapsed, 3),
            "rss_per_conn_kib": round((rss1 - rss0) / n / 1024, 2),
            "slab_per_conn_kib": round((slab1 - slab0) / n / 1024, 2),
            "host_fds_per_conn": round((fds1 - fds0) / n, 2)}


def child(config: str, repeat: int, quick: bool, c10k_n: int) -> dict[str, Any]:
    label = config
    if config.endswith("-1core"):
        os.sched_setaffinity(0, {0})  # before boot: kernel threads inherit it
        config = config.removesuffix("-1core")
    kernel = None
    ours = config.endswith("-ours")
    if config.startswith("lkl-"):
        import lkl
        mode = config.split("-")[1]
        if mode == "default":
            kernel = lkl.boot()
        else:
            kernel = lkl.boot(syscall_mode=mode,
                              cmdline="nohz=on" if "dyntick" in config else "")
    stack = Stack(kernel)

    def run(coro: Any) -> Any:
        if ours:
            import lkl.asyncio as la
            return la.run(coro)
        if config == "host-uvloop":
            import uvloop
            return uvloop.run(coro)
        return asyncio.run(coro)

    n_echo, n_conns, n_pp = (500, 300, 500) if quick else (5000, 2000, 5000)
    out: dict[str, Any] = {"config": label}
    if c10k_n:
        out["c10k"] = run(c10k(stack, c10k_n))
    else:
        out["echo_us"] = statistics.median(run(echo_us(stack, n_echo)) for _ in range(repeat))
        out["conns_per_s"] = statistics.median(
            run(conns_per_s(stack, n_conns)) for _ in range(repeat))
        if not ours and config != "host-uvloop":
            out["pingpong_us"] = statistics.median(pingpong_us(stack, n_pp) for _ in range(repeat))
            out["stream_gbps"] = statistics.median(
                stream_gbps(stack, (64 if quick else 512) << 20) for _ in range(repeat))
    if kernel is not None:
        out["syscall_mode"] = kernel.syscall_mode
        kernel.halt()
    return out


# ---- the parent --------------------------------------------------------------

def run_child(config: str, args: argparse.Namespace, c10k_n: int = 0) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--child", config, "--repeat", str(args.repeat)]
    if args.quick:
        argv.append("--quick")
    if c10k_n:
        argv += ["--c10k-n", str(c10k_n)]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cc = config.removesuffix("-1core").removeprefix("host-stdlib-")
    with contextlib.ExitStack() as stack:
        if cc == BENCH_CONGESTION_CONTROL:
            # Its own namespace (root only), loopback up, that congestion control.
            ns = stack.enter_context(Netns("lklpynet", congestion_control=cc))
            argv = ns.exec_argv(argv)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=1200, env=env)
    if proc.returncode:
        return {"config": config, "error": (proc.stderr or proc.stdout).strip()[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _fmt(v: Any, digits: int = 1, best: Any = None) -> str:
    if v is None:
        return "—"
    return f"{v:.{digits}f}" + ("" if best is None else f" ({best:.{digits}f})")


def markdown(data: dict[str, Any]) -> str:
    rows = {r["config"]: r for r in data["rows"]}
    host = rows.get("host-stdlib", {})
    lines = ["# Python network workloads over 127.0.0.1", "",
             f"{data['when']}, Python {data['python']}, medians of {data['repeat']} "
             "interleaved rounds; ratio = against host stdlib in the same run; "
             f"load average {data.get('load_average', 0):.1f} before, "
             f"{data.get('load_average_after', 0):.1f} after (a shared 2-core machine).", "",
             "Each cell: median (best round); ratios of medians.", "",
             "| config | echo 100 B µs/rt | ratio | conns/s | ratio | thread ping-pong µs | ratio "
             "| 64 KiB stream Gbit/s | ratio |",
             "|---|---|---|---|---|---|---|---|---|"]
    for config in CONFIGS:
        r = rows.get(config)
        if r is None:
            continue
        if "error" in r:
            lines.append(f"| {config} | failed: {r['error'].splitlines()[-1][:80]} |||||||| ")
            continue

        base = rows.get("host-stdlib-1core", {}) if config.endswith("-1core") else host

        def ratio(key: str, r: dict[str, Any] = r, base: dict[str, Any] = base) -> str:
            if r.get(key) is None or not base.get(key):
                return "—"
            return f"{r[key] / base[key]:.2f}x"

        def cell(key: str, digits: int = 1, r: dict[str, Any] = r) -> str:
            return _fmt(r.get(key), digits, r.get(key + "_best"))

        lines.append(
            f"| {config} | {cell('echo_us')} | {ratio('echo_us')} "
            f"| {cell('conns_per_s', 0)} | {ratio('conns_per_s')} "
            f"| {cell('pingpong_us')} | {ratio('pingpong_us')} "
            f"| {cell('stream_gbps')} | {ratio('stream_gbps')} |")
    lines.append("")
    lines.append("`-stock`: lkl sockets on the stock selector loop; `-ours`: on "
                 "lkl.asyncio.EventLoop; ping-pong and stream use no event loop (one row "
                 "per stack and mode). `-1core`: the process on CPU 0, ratios against "
                 "host-stdlib-1core.")
    lines.append("")
    lines.append(f"The host's congestion control: `{data.get('host_congestion_control', '?')}` "
                 f"(host-stdlib, host-uvloop); host-stdlib-cubic: `cubic`, as lkl's kernel. "
                 "Only the stream column depends on it; there lkl (one kernel CPU for both "
                 "ends of the connection) is compared against the host with both of its CPUs.")
    c10k_rows = data.get("c10k") or []
    if c10k_rows:
        lines += ["", "## 10 000 concurrent asyncio connections (20 000 sockets)", "",
                  "| stack | connections | seconds to open | RSS KiB/conn | kernel slab KiB/conn "
                  "| host fds/conn |", "|---|---|---|---|---|---|"]
        for r in c10k_rows:
            if "error" in r:
                lines.append(f"| {r['config']} | failed: {r['error'].splitlines()[-1][:80]} "
                             "||||| ")
                continue
            c = r["c10k"]
            lines.append(f"| {r['config']} | {c['connections']} | {c['seconds']} "
                         f"| {c['rss_per_conn_kib']} | {c['slab_per_conn_kib']} "
                         f"| {c['host_fds_per_conn']} |")
        lines.append("")
        lines.append("Host slab is the whole host's /proc/meminfo (other processes add "
                     "noise); lkl slab is the kernel's own /proc/meminfo, and lkl's RSS "
                     "includes it.")
    return "\n".join(lines) + "\n"


def chart(data: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [r for r in data["rows"] if "error" not in r]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, title in ((axes[0], "echo_us", "asyncio echo, 100 B (µs per round trip)"),
                           (axes[1], "conns_per_s", "asyncio connections per second")):
        names = [r["config"] for r in rows if r.get(key)]
        values = [r[key] for r in rows if r.get(key)]
        ax.barh(names, values, color=["#888" if n.startswith("host") else "#36c" for n in names])
        ax.set_title(title)
        ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS))
    parser.add_argument("--c10k", action="store_true", help="also the 10 000-connection row")
    parser.add_argument("--c10k-n", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS / "python_net"))
    args = parser.parse_args()
    if args.child:
        n = args.c10k_n
        if n:
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            if args.child.startswith("host"):
                # Two host fds per connection: this machine's hard limit may
                # not allow 10 000 (the row says how many it held).
                n = min(n, (hard - 256) // 2)
        print(json.dumps(child(args.child, args.repeat, args.quick, n)))
        return 0

    data: dict[str, Any] = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                            "python": sys.version.split()[0], "repeat": args.repeat,
                            "load_average": os.getloadavg()[0], "rows": [], "c10k": [],
                            "host_congestion_control": machine_congestion_control()}
    rounds = args.repeat
    args.repeat = 1
    samples: dict[str, list[dict[str, Any]]] = {c: [] for c in args.configs}
    for i in range(rounds):
        for config in args.configs:
            r = run_child(config, args)
            print(f"round {i + 1}: {json.dumps(r)}", flush=True)
            samples[config].append(r)
    for config, runs in samples.items():
        good = [r for r in runs if "error" not in r]
        if not good:
            data["rows"].append(runs[-1])
            continue
        row: dict[str, Any] = {"config": config, "samples": good}
        for key in WORKLOADS:
            values = [r[key] for r in good if key in r]
            if values:
                row[key] = statistics.median(values)
                # On a shared machine the best round is the least disturbed one.
                row[key + "_best"] = min(values) if key.endswith("_us") else max(values)
        data["rows"].append(row)
    data["load_average_after"] = os.getloadavg()[0]
    if args.c10k:
        for config in ("host-stdlib", "lkl-default-ours"):
            r = run_child(config, args, c10k_n=10_000)
            print(json.dumps(r), flush=True)
            data["c10k"].append(r)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
    text = markdown(data)
    out.with_suffix(".md").write_text(text)
    chart(data, out.with_suffix(".png"))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""TLS bulk transfer on lkl (lkl.ssl over the kernel's loopback) beside
the host's (the stdlib's ssl over the host's loopback), same run.

One client thread sends N MiB to a server thread that reads it all; TLS
1.3 with AES-256-GCM (OpenSSL's default), the handshake not timed.  Each
variant runs ``--repeat`` times; the medians go to
bench/results/tls_stream.json and .md, with plain TCP on each stack as
the baseline that shows what TLS costs there.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))

import lkl  # noqa: E402
import lkl.ssl  # noqa: E402
from harness.sockets import tcp_pair  # noqa: E402
from harness.tlscerts import make_pki  # noqa: E402

CHUNK = 256 << 10


def transfer(make_pair: Callable[[], tuple[Any, Any]], nbytes: int) -> float:
    """Seconds to move ``nbytes`` from the client to the server of a fresh pair."""
    client, server = make_pair()
    got = [0]

    def drain() -> None:
        buf = bytearray(CHUNK)
        while got[0] < nbytes and (n := server.recv_into(buf)):
            got[0] += n

    t = threading.Thread(target=drain)
    t.start()
    block = os.urandom(CHUNK)
    t0 = time.perf_counter()
    for _ in range(nbytes // CHUNK):
        client.sendall(block)
    t.join(120)
    elapsed = time.perf_counter() - t0
    client.close()
    server.close()
    assert got[0] == nbytes, (got[0], nbytes)
    return elapsed


def pair_factory(new_socket: Callable[[], Any], wrap: Callable[..., Any] | None,
                 pki: Any) -> Callable[[], tuple[Any, Any]]:
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(pki.server_cert, pki.server_key)
    cctx = ssl.create_default_context(cafile=str(pki.ca))

    def make() -> tuple[Any, Any]:
        client, conn, listener = tcp_pair(new_socket)
        listener.close()
        if wrap is None:
            return client, conn
        out: dict[str, Any] = {}
        t = threading.Thread(target=lambda: out.setdefault(
            "s", wrap(sctx, conn, server_side=True)))
        t.start()
        tls_client = wrap(cctx, client, server_hostname="server.test")
        t.join(30)
        return tls_client, out["s"]

    return make


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mib", type=int, default=64, help="MiB per transfer (default 64)")
    ap.add_argument("--repeat", type=int, default=5, help="transfers per variant (default 5)")
    ap.add_argument("--syscall-mode", default="shadow", choices=("shadow", "direct"))
    ap.add_argument("--output", type=Path, default=RESULTS / "tls_stream")
    args = ap.parse_args()
    nbytes = args.mib << 20
    pki = make_pki(Path(tempfile.mkdtemp(prefix="tls_stream.")))
    kernel = lkl.boot(memory="256M", syscall_mode=args.syscall_mode)

    def host_wrap(ctx: ssl.SSLContext, sock: socket.socket, **kw: Any) -> ssl.SSLSocket:
        return ctx.wrap_socket(sock, **kw)

    variants = {
        "host TCP": pair_factory(socket.socket, None, pki),
        "host TLS (stdlib ssl)": pair_factory(socket.socket, host_wrap, pki),
        "lkl TCP": pair_factory(kernel.socket, None, pki),
        "lkl TLS (lkl.ssl)": pair_factory(kernel.socket, lkl.ssl.wrap_socket, pki),
    }
    load_before = os.getloadavg()[0]
    rows = {}
    for name, make in variants.items():
        times = []
        for _ in range(args.repeat):
            times.append(transfer(make, nbytes))
        med = statistics.median(times)
        rows[name] = {"median_s": round(med, 4), "gbit_s": round(8 * nbytes / med / 1e9, 3),
                      "runs_s": [round(t, 4) for t in times]}
        print(f"{name:24} {rows[name]['gbit_s']:7.3f} Gbit/s (median of {args.repeat})",
              flush=True)
    kernel.halt()
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(), "openssl": ssl.OPENSSL_VERSION,
            "mib": args.mib, "repeat": args.repeat, "syscall_mode": args.syscall_mode,
            "cpus": os.cpu_count(), "loadavg_1min": [round(load_before, 2),
                                                    round(os.getloadavg()[0], 2)]}
    out: Path = args.output
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "variants": rows},
                                                   indent=2) + "\n")
    host_tls = rows["host TLS (stdlib ssl)"]["gbit_s"]
    lines = [f"# TLS bulk transfer, {args.mib} MiB one way ({meta['date']})", "",
             f"{meta['openssl']}, TLS 1.3, Python {meta['python']}, {meta['cpus']} CPUs, "
             f"lkl syscall mode {args.syscall_mode}; median of {args.repeat} transfers, "
             f"handshake not timed; 1-minute load average {meta['loadavg_1min'][0]} before, "
             f"{meta['loadavg_1min'][1]} after (a shared machine: compare rows, not runs).",
             "",
             "| variant | Gbit/s | vs host TLS |", "|---|---|---|"]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['gbit_s']:.3f} | {row['gbit_s'] / host_tls:.2f}x |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

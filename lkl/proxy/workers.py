"""``--workers N``: N proxy processes, each its own kernel, behind one address.

The paper's TODO ("shard the application port number space thus allowing
multiple LKL instances"), done by the host's TAP driver: the guest-facing
device is multi-queue (``ip tuntap add NAME mode tap multi_queue``), each
worker's ``lkl.Tap(NAME)`` attaches a queue of its own, and the host
spreads the guest's flows over the queues by their hash, so each kernel
sees whole connections.  Every worker has the same MAC and addresses;
whichever receives an ARP request answers it.  Flows the kernels start
themselves (outbound connections) are not steered back to their own
queue, so they are unsupported.

This process only supervises: it starts the workers (``python -m lkl
proxy`` again, with ``LKL_PROXY_WORKER=i``), waits until each is ready,
passes SIGTERM/SIGINT/SIGHUP on, and exits when they all have.  It boots
no kernel and parses no guest input.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from lkl.proxy.config import ProxyConfig

__all__ = ["WORKER_ENV", "supervise", "worker_index", "worker_stats", "read_ready"]

WORKER_ENV = "LKL_PROXY_WORKER"


def worker_index() -> int | None:
    """The worker number of this process, or None if it is no worker."""
    value = os.environ.get(WORKER_ENV)
    return int(value) if value is not None and value.isdigit() else None


def worker_stats(addr: str, index: int) -> str:
    """Worker ``index``'s stats endpoint: ``PATH.i`` or port + i."""
    if addr.startswith("unix:"):
        return f"{addr}.{index}"
    host, _, port = addr.rpartition(":")
    return f"{host}:{int(port) + index}"


def _mac() -> str:
    """One locally administered MAC for every worker."""
    return "02:" + ":".join(f"{random.randrange(256):02x}" for _ in range(5))


def supervise(cfg: ProxyConfig, argv: list[str]) -> int:
    """Run ``cfg.workers`` workers until a signal and their drain; the exit code."""
    env = dict(os.environ, LKL_PROXY_MAC=_mac())
    procs: list[subprocess.Popen[str]] = []
    pids: list[int] = []
    try:
        for i in range(cfg.workers):
            env[WORKER_ENV] = str(i)
            proc = subprocess.Popen([sys.executable, "-m", "lkl", "proxy", *argv],
                                    stdout=subprocess.PIPE, text=True, env=env)
            procs.append(proc)
            pids.append(_wait_ready(proc, 60))
    except BaseException:
        for proc in procs:
            proc.kill()
        raise
    stop = threading.Event()

    def forward(sig: int, _frame: object) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if sig != signal.SIGHUP:
            stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    print(json.dumps({"event": "ready", "pid": os.getpid(), "workers": pids}), flush=True)
    while not stop.wait(0.5):
        if any(p.poll() is not None for p in procs):
            forward(signal.SIGTERM, None)   # one died: take the rest down too
    deadline = time.monotonic() + cfg.drain_timeout + 10
    codes = []
    for proc in procs:
        try:
            codes.append(proc.wait(max(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes.append(proc.wait())
    return 0 if all(c == 0 for c in codes) else 1


def read_ready(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any] | None:
    """The ``ready`` event a proxy process prints on its stdout.

    Its stdout is JSON lines; None if it exits, ends its stdout or prints
    no ``ready`` event within ``timeout`` seconds.
    """
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if select.select([proc.stdout], [], [], min(left, 0.2))[0]:
            line = proc.stdout.readline()
            if not line:
                return None
            msg = json.loads(line)
            if msg.get("event") == "ready":
                return msg
        elif proc.poll() is not None:
            return None
    return None


def _wait_ready(proc: subprocess.Popen[str], timeout: float) -> int:
    msg = read_ready(proc, timeout)
    if msg is None:
        proc.kill()
        raise RuntimeError("a proxy worker did not come up")
    return int(msg["pid"])

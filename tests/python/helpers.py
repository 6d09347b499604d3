"""Helpers for tests that need a fresh interpreter (one kernel per process)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def run_python(code: str, *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (its own kernel); return the
    finished process (stdout, stderr, returncode)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=_env())


def run_ok(code: str, *, timeout: float = 60) -> str:
    """run_python that must exit 0; returns its stdout."""
    proc = run_python(code, timeout=timeout)
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    return proc.stdout


def run_pytest(*args: str | Path, timeout: float = 150,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run pytest with ``args`` (paths, options) in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=_env(**(env or {})))


# Child code for tests with a kernel and a host peer in one namespace: TCP
# both ways between a kernel socket and a host socket, checked with
# SHA-256 on the receiving end.  ``timeout`` bounds every socket call.
TCP_BOTH_WAYS = """
import hashlib, socket, threading

def drain(sock):
    h, n = hashlib.sha256(), 0
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            return h.hexdigest(), n
        h.update(chunk)
        n += len(chunk)

def tcp_both_ways(k, host_ip, kernel_ip, data, timeout=20):
    want = hashlib.sha256(data).hexdigest()
    # kernel -> host
    srv = socket.socket()
    srv.bind((host_ip, 0)); srv.listen(); srv.settimeout(timeout)
    got = {}
    def host_recv():
        c, _ = srv.accept()
        c.settimeout(timeout)
        got["h"] = drain(c)
        c.close()
    t = threading.Thread(target=host_recv, daemon=True); t.start()
    s = k.socket(); s.settimeout(timeout)
    s.connect((host_ip, srv.getsockname()[1])); s.sendall(data); s.close()
    t.join(timeout + 10)
    assert got.get("h") == (want, len(data)), ("kernel->host", got)
    srv.close()
    # host -> kernel
    ks = k.socket(); ks.settimeout(timeout)
    ks.bind((kernel_ip, 0)); ks.listen()
    def host_send():
        c = socket.create_connection((kernel_ip, ks.getsockname()[1]), timeout=timeout)
        c.sendall(data); c.close()
    t = threading.Thread(target=host_send, daemon=True); t.start()
    a, _ = ks.accept(); a.settimeout(timeout)
    h = drain(a)
    t.join(timeout + 10)
    assert h == (want, len(data)), ("host->kernel", h)
    a.close(); ks.close()
"""


def in_netns(ns_name: str, body: str, timeout: float = 90) -> str:
    """run_ok ``body`` in a fresh interpreter inside network namespace
    ``ns_name`` (entered before the kernel boots), with TCP_BOTH_WAYS
    defined; returns its stdout."""
    code = (f"from pyroute2 import netns\nnetns.setns({ns_name!r})\n"
            + textwrap.dedent(TCP_BOTH_WAYS) + textwrap.dedent(body))
    return run_ok(code, timeout=timeout)

"""A host TCP sink in a network namespace, for a kernel's client to send to.

The sink (child code, the host's own TCP) takes one connection, reads it
to EOF and answers ``"<bytes> <sha256 hex>"``; ``with_sink`` starts it,
runs the client and returns the client's stdout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harness.netns import Netns

ROOT = Path(__file__).resolve().parents[1]

# argv: address, port.
SINK = """
import hashlib, socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2]))); srv.listen(1); srv.settimeout(30)
print("listening", flush=True)
conn, _ = srv.accept(); conn.settimeout(30)
h, n = hashlib.sha256(), 0
while data := conn.recv(1 << 16):
    h.update(data); n += len(data)
conn.sendall(f"{n} {h.hexdigest()}".encode()); conn.close()
"""


def with_sink(sink_ns: Netns, addr: str, port: int, client_ns: Netns, client: str,
              *args: str, timeout: float = 90) -> str:
    """The sink on ``addr``:``port`` in ``sink_ns``, then ``client`` (Python
    code, with ``args``, the repository importable) in ``client_ns``;
    the client's stdout (AssertionError if it fails)."""
    server = subprocess.Popen(sink_ns.exec_argv([sys.executable, "-c", SINK, addr, str(port)]),
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout and server.stdout.readline().strip() == "listening"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.run(client_ns.exec_argv([sys.executable, "-c", client, *args]),
                              capture_output=True, text=True, timeout=timeout, env=env)
        assert proc.returncode == 0, proc.stderr
    finally:
        try:
            server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            raise
    return proc.stdout

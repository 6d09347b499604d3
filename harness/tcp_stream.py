"""The tcp_stream program's offload matrix: its rows and its driver.

bench/tcp_stream.py measures each row; tests/test_stream_matrix.py checks
that each row negotiates and behaves as it says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from harness.lines import LineProcess

ROOT = Path(__file__).resolve().parent.parent
#: The program (bench/native/tcp_stream.c), built by bench/native's Makefile.
BIN = ROOT / "build" / "bench" / "tcp_stream"


@dataclass
class Row:
    key: str
    label: str
    offload: str
    kernel: dict[str, str]          # the kernel's ethtool switches
    host: dict[str, str] = field(default_factory=lambda: {"gso": "on", "gro": "on"})


ON = {"gso": "on", "gro": "on"}
ROWS = [
    Row("baseline", "baseline: all offloads off", "NONE",
        {"gso": "off", "gro": "off", "tso": "off", "tx-csum": "off"},
        {"gso": "off", "gro": "off"}),
    Row("gso_gro", "GSO/GRO in LKL", "NONE", dict(ON)),
    Row("csum", "+ csum offload", "CHECKSUM", {**ON, "tx-csum": "on"}),
    Row("large_mrg", "large segments, mergeable_rx_bufs", "LARGE_SEGMENTS",
        {**ON, "tx-csum": "on", "tso": "on"}),
    Row("large_big", "large segments, big_packets", "BIG_PACKETS",
        {**ON, "tx-csum": "on", "tso": "on"}),
]

class Proc(LineProcess):
    """A tcp_stream process."""

    def ready_pid(self, timeout: float = 30) -> int:
        return int(self.expect("ready pid=", timeout).split("=")[1])

    def result(self, timeout: float) -> dict:
        return json.loads(self.expect("{", timeout))

    def go(self) -> None:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 30) -> None:
        self.proc.stdin.close()
        if self.proc.wait(timeout=timeout):
            raise RuntimeError(f"{' '.join(self.argv)} failed:\n"
                               + self.proc.stderr.read()[-2000:])

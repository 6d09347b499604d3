"""A child process whose stdout is read line by line, with timeouts.

The benchmarks and the native network tests drive C programs that print
one line per step; ``expect`` waits for a line with a given prefix and
never longer than its timeout.
"""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from typing import NoReturn


class LineProcess:
    """``argv`` started with pipes; every stdout line is kept in ``seen``."""

    def __init__(self, argv: list[str], pass_fds: tuple[int, ...] = ()) -> None:
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, pass_fds=pass_fds)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, prefix: str, timeout: float = 30) -> str:
        """The next line starting with ``prefix``; the process is killed
        and ``fail`` called if none comes within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if line.startswith(prefix):
                return line
        self.kill()
        assert self.proc.stderr is not None
        self.fail(f"no {prefix!r} from {' '.join(self.argv)}; output:\n"
                  + "\n".join(self.seen) + "\nstderr:\n" + self.proc.stderr.read()[-3000:])

    def fail(self, message: str) -> NoReturn:
        raise RuntimeError(message)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

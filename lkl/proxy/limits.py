"""Connection limits: how many are open, in all and per guest address."""

from __future__ import annotations

import threading

__all__ = ["Limits"]


class Limits:
    """Admission of new connections.

    At most ``total`` open, ``per_source`` from one guest address.  Thread-safe.
    """

    def __init__(self, total: int, per_source: int) -> None:
        if total < 1 or per_source < 1:
            raise ValueError("limits must be positive")
        self.total = total
        self.per_source = per_source
        self._lock = threading.Lock()
        self._open = 0
        self._by_source: dict[str, int] = {}

    def acquire(self, source: str) -> str | None:
        """Admit a connection from ``source``: None, or why it is refused."""
        with self._lock:
            if self._open >= self.total:
                return "max_connections"
            count = self._by_source.get(source, 0)
            if count >= self.per_source:
                return "max_per_source"
            self._open += 1
            self._by_source[source] = count + 1
            return None

    def release(self, source: str) -> None:
        """A connection admitted by :meth:`acquire` has ended."""
        with self._lock:
            self._open -= 1
            count = self._by_source.pop(source, 0) - 1
            if count > 0:
                self._by_source[source] = count

    @property
    def open(self) -> int:
        """Connections open now."""
        with self._lock:
            return self._open

    def sources(self) -> int:
        """Guest addresses with open connections."""
        with self._lock:
            return len(self._by_source)

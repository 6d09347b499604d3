"""Packet capture on a virtio-net device (``Nic.capture``), to a pcap file.

Every frame the device moves, both directions, goes to the file with its
time (pcap, link type Ethernet, microsecond timestamps), as the device
sees it: the virtio-net header stripped, super-frames (TSO/GRO) whole, cut
to ``snaplen``.  The device copies frames into a bounded ring; a writer
thread of the C library (``native/host/capture.c``) drains it, so a full
ring drops frames from the capture (counted in ``dropped``), never from
the traffic.  With no capture running the device pays one branch a frame.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, BinaryIO

from lkl import _lkl

if TYPE_CHECKING:
    from lkl.net import Nic

__all__ = ["Capture", "capture"]


class Capture:
    """A running capture; a context manager that stops it on exit.

    ``stats`` (frames, bytes, dropped, done), ``wait(timeout)`` for the
    ``count`` frames, ``stop()`` (idempotent; returns the final stats).
    """

    def __init__(self, nic: Nic, handle: Any, timer: threading.Thread | None = None) -> None:
        self._nic = nic
        self._handle = handle
        self._lock = threading.Lock()
        self._final: dict[str, Any] | None = None
        self._timer = timer

    @property
    def stats(self) -> dict[str, Any]:
        """{"frames", "bytes", "dropped", "done"} so far."""
        with self._lock:
            if self._final is not None:
                return dict(self._final)
            return dict(self._handle.stats())

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for ``count`` frames: True once done."""
        if timeout < 0:
            raise ValueError("timeout must be >= 0")
        if self._final is not None:
            return bool(self._final["done"])
        return bool(self._handle.wait(int(timeout * 1000)))

    def stop(self) -> dict[str, Any]:
        """Stop, write out what is queued and close the file; the final stats."""
        with self._lock:
            if self._final is None:
                self._final = dict(self._handle.stop() or {})
                caps = getattr(self._nic, "_captures", None)
                if caps is not None and self in caps:
                    caps.remove(self)
            return dict(self._final)

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _open_target(target: str | os.PathLike[str] | BinaryIO | int) -> int:
    if isinstance(target, bool):
        raise TypeError("capture target must be a path, a binary file or an fd")
    if isinstance(target, int):
        return os.dup(target)
    if isinstance(target, (str, os.PathLike)):
        return os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    fileno = getattr(target, "fileno", None)
    if fileno is None:
        raise TypeError("capture target must be a path, or a file with a fileno()")
    flush = getattr(target, "flush", None)
    if flush is not None:
        flush()
    return os.dup(fileno())


def capture(nic: Nic, target: str | os.PathLike[str] | BinaryIO | int, snaplen: int = 65535,
            count: int | None = None, stop: float | threading.Event | None = None,
            ring_bytes: int = 4 << 20) -> Capture:
    """Start capturing ``nic``'s frames into ``target`` (see Nic.capture)."""
    if isinstance(snaplen, bool) or not isinstance(snaplen, int) or not 1 <= snaplen <= 262144:
        raise ValueError("snaplen must be an int in 1..262144")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError("count must be None or a positive int")
    if isinstance(ring_bytes, bool) or not isinstance(ring_bytes, int) or ring_bytes < 65536:
        raise ValueError("ring_bytes must be an int >= 65536")
    if stop is not None and not isinstance(stop, (int, float, threading.Event)):
        raise TypeError("stop must be None, a duration in seconds or a threading.Event")
    if isinstance(stop, (int, float)) and not isinstance(stop, bool) and stop <= 0:
        raise ValueError("a stop duration must be > 0")
    fd = _open_target(target)
    handle = _lkl._Capture()
    try:
        handle.start(nic._dev, fd, snaplen, count or 0, ring_bytes)
    except BaseException:
        os.close(fd)
        raise
    cap = Capture(nic, handle)
    if not hasattr(nic, "_captures"):
        nic._captures = []  # type: ignore[attr-defined]
    nic._captures.append(cap)  # type: ignore[attr-defined]
    if stop is not None:
        event = stop if isinstance(stop, threading.Event) else None
        delay = None if event is not None else float(stop)  # type: ignore[arg-type]

        def stopper() -> None:
            if event is not None:
                while not event.wait(0.25):
                    if cap._final is not None:
                        return
            elif delay is not None:
                threading.Event().wait(delay)
            cap.stop()

        t = threading.Thread(target=stopper, name="lkl-capture-stop", daemon=True)
        cap._timer = t
        t.start()
    return cap


def stop_all(nic: Nic) -> None:
    """Stop every capture of ``nic`` (before its device is freed)."""
    for cap in list(getattr(nic, "_captures", ())):
        cap.stop()

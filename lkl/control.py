"""The control endpoint: other processes of this user reach a running kernel.

A kernel serves its syscalls over a Unix socket once ``lkl.boot(...,
control="NAME")`` or ``Kernel.serve_control("NAME")`` ran.  The server is
C (``native/control/server.c``): a host thread of the serving process, one
more per client, each client with its own table of kernel fds.  Sockets
live in :func:`control_dir`; ``python -m lkl ls`` lists them
(:func:`instances`), ``python -m lkl attach NAME -- ss -tni`` runs a tool
against one (:func:`attach_env`), and :class:`Client` speaks the protocol
(``native/control/protocol.h``) from Python: the console and the capture
subcommand use it.

The signal-triggered console: ``lkl.boot(console_signal=signal.SIGUSR2)``
installs a handler for that signal (none by default, so programs that use
it are not disturbed) that starts serving a control socket named after the
process id, e.g. ``python -m lkl attach 12345``.
"""

from __future__ import annotations

import array
import contextlib
import errno
import os
import re
import signal
import socket
import stat as statmod
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from lkl import _lkl

if TYPE_CHECKING:
    from lkl._kernel import Kernel

__all__ = [
    "Client",
    "ControlError",
    "Instance",
    "attach_env",
    "attach_library",
    "control_dir",
    "instances",
    "socket_path",
]

MAGIC = 0x434C4B4C
VERSION = 1
REPLY = 0x8000
MAX_DATA = 1 << 20
REQUEST = struct.Struct("<IHHII4q")
RESPONSE = struct.Struct("<IHHIIq3q")

# Ops of native/control/protocol.h, in its order.
(HELLO, SOCKET, OPEN, CLOSE, READ, WRITE, LSEEK, SENDTO, RECVFROM, BIND, CONNECT,
 GETSOCKNAME, SETSOCKOPT, GETSOCKOPT, IOCTL, STAT, GETDENTS, POLL, CAPTURE_START,
 CAPTURE_STATUS, CAPTURE_STOP, STATS) = range(1, 23)


def _error(err: int, filename: str | None = None) -> OSError:
    """The standard OSError subclass for a kernel errno that came over the socket.

    (Not lkl.errno_error: no kernel runs in a client, and ENODEV is "no such
    device" here.)
    """
    if filename is None:
        return OSError(err, os.strerror(err))
    return OSError(err, os.strerror(err), filename)


_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")


class ControlError(ConnectionError):
    """The control socket cannot be reached or refused us (errno set)."""


def control_dir() -> str:
    """The control-socket directory of this user.

    ``$XDG_RUNTIME_DIR/lkl``, ``/run/lkl`` for root, else ``/tmp/lkl-<uid>``
    (the C server computes the same).
    """
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg.startswith("/"):
        return os.path.join(xdg, "lkl")
    if os.geteuid() == 0:
        return "/run/lkl"
    return f"/tmp/lkl-{os.geteuid()}"


def socket_path(name: str) -> str:
    """The socket path of instance ``name`` (a path is returned as it is)."""
    if not isinstance(name, str) or not name:
        raise TypeError("an instance name must be a non-empty str")
    if "/" in name:
        return name
    return os.path.join(control_dir(), f"{name}.sock")


def attach_library() -> str:
    """The path of ``liblkl-attach.so`` (``$LKL_ATTACH_LIB`` overrides)."""
    env = os.environ.get("LKL_ATTACH_LIB")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(os.path.dirname(here), "build", "lib", "liblkl-attach.so")


def attach_env(name: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment that makes an unmodified tool talk to instance ``name``."""
    env = dict(os.environ if base is None else base)
    lib = attach_library()
    if not os.path.exists(lib):
        raise FileNotFoundError(errno.ENOENT, "the attach library is not built (make lib)", lib)
    preload = env.get("LD_PRELOAD", "")
    env["LD_PRELOAD"] = f"{lib} {preload}".strip()
    env["LKL_ATTACH"] = socket_path(name)
    return env


# ---- serving (the Kernel methods delegate here) ------------------------------


def check_name(name: str) -> None:
    """Check a control name before serving it (boot does, before booting).

    TypeError or ValueError for a malformed name, FileExistsError if a live
    process serves it.
    """
    if not isinstance(name, str):
        raise TypeError(f"the control name must be a str, not {type(name).__name__}")
    if not _NAME.fullmatch(name):
        raise ValueError(f"a control name is 1 to 64 letters, digits, '.', '_' or '-' "
                         f"(not starting with '.'), not {name!r}")
    path = socket_path(name)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2.0)
    try:
        s.connect(path)
    except OSError:
        return  # nobody serves it (a stale socket is replaced)
    finally:
        s.close()
    raise FileExistsError(errno.EEXIST, f"a live process serves the control name {name!r}", path)


def serve(kernel: Kernel, name: str) -> str:
    """Start serving ``kernel`` as ``name``; returns the socket path."""
    check_name(name)
    path = _lkl._control_start(name)
    for nic in kernel.nics:
        _lkl._control_add_netdev(nic._dev)
    return str(path)


def stop() -> None:
    """Stop serving (idempotent)."""
    _lkl._control_stop()


def served_path() -> str:
    """The socket this process serves, or ""."""
    return str(_lkl._control_path())


def server_stats() -> dict[str, int]:
    """The server's counters.

    clients, accepted, refused, requests, malformed, errors, open_fds
    (kernel fds held for clients).
    """
    return dict(_lkl._control_stats())


def register_nic(nic: Any) -> None:
    """Let clients capture on ``nic`` (called for NICs added while serving)."""
    _lkl._control_add_netdev(nic._dev)


def install_console_signal(kernel: Kernel, signum: int) -> None:
    """On ``signum``, serve ``kernel`` as str(os.getpid()) (see module doc)."""
    sig = signal.Signals(signum)

    def handler(_signo: int, _frame: object) -> None:
        if not served_path() and not kernel.halted:
            with contextlib.suppress(OSError):
                serve(kernel, str(os.getpid()))

    signal.signal(sig, handler)


# ---- the client -------------------------------------------------------------------


@dataclass
class Reply:
    """One reply: result (>= 0) and the op's extra integers and data."""

    result: int
    ret: tuple[int, int, int]
    data: bytes


class Client:
    """A connection to a control socket, speaking its protocol.

    ``Client("NAME")`` or ``Client("/run/lkl/NAME.sock")``.  Calls raise the
    standard OSError subclasses for the kernel's errors; ControlError when
    the socket cannot be reached, refuses us or breaks.
    """

    def __init__(self, name: str, timeout: float = 10.0) -> None:
        self.path = socket_path(name)
        self._seq = 0
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(self.path)
        except OSError as e:
            self._sock.close()
            raise ControlError(e.errno, f"cannot attach to {self.path}: {e.strerror}") from None
        try:
            r = self.call(HELLO)
        except OSError as e:
            self._sock.close()
            if isinstance(e, ControlError):
                raise
            raise ControlError(e.errno, f"refused by {self.path}: {e.strerror}") from None
        self.pid, self.started, self.version = r.ret
        self.name = r.data.rstrip(b"\0").decode()

    def close(self) -> None:
        """Disconnect (the server closes the kernel fds we opened)."""
        self._sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fileno(self) -> int:
        """The Unix socket's fd."""
        return self._sock.fileno()

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self._sock.recv(n - len(buf))
            if not chunk:
                raise ControlError(errno.EPIPE, f"{self.path}: the server closed the connection")
            buf += chunk
        return bytes(buf)

    def call(self, op: int, a0: int = 0, a1: int = 0, a2: int = 0, a3: int = 0,
             data: bytes = b"", fds: list[int] | None = None, check: bool = True) -> Reply:
        """One request; raises OSError for a negative result (unless not ``check``)."""
        if len(data) > MAX_DATA:
            raise ValueError(f"request data over {MAX_DATA} bytes")
        with self._lock:
            self._seq = (self._seq + 1) & 0xFFFFFFFF
            msg = REQUEST.pack(MAGIC, VERSION, op, len(data), self._seq, a0, a1, a2, a3) + data
            try:
                try:
                    if fds:
                        self._sock.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                                    array.array("i", fds))])
                    else:
                        self._sock.sendall(msg)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # a server that refused us hung up: its reply says why
                head = self._recv_exact(RESPONSE.size)
                magic, _ver, _rop, length, rseq, result, r0, r1, r2 = RESPONSE.unpack(head)
                if magic != MAGIC or length > MAX_DATA:
                    raise ControlError(errno.EPROTO, f"{self.path}: bad reply")
                body = self._recv_exact(length) if length else b""
            except TimeoutError:
                raise ControlError(errno.ETIMEDOUT, f"{self.path}: no reply") from None
            except ControlError:
                raise
            except OSError as e:
                raise ControlError(e.errno, f"{self.path}: {e.strerror}") from None
        if check and result < 0:
            raise _error(-result)
        if rseq != self._seq and result >= 0:
            raise ControlError(errno.EPROTO, f"{self.path}: reply out of order")
        return Reply(result, (r0, r1, r2), body)

    # ---- files ----

    def open(self, path: str, flags: int = os.O_RDONLY, mode: int = 0o644) -> int:
        """Open a kernel file; returns the kernel fd (ours until close or disconnect)."""
        try:
            return self.call(OPEN, flags, mode, data=os.fsencode(path) + b"\0").result
        except OSError as e:
            raise _error(e.errno or errno.EIO, path) from None

    def close_fd(self, fd: int) -> None:
        """Close a kernel fd we opened."""
        self.call(CLOSE, fd)

    def read(self, fd: int, count: int = 65536) -> bytes:
        """Read up to ``count`` bytes."""
        return self.call(READ, fd, count).data

    def write(self, fd: int, data: bytes) -> int:
        """Write ``data``; returns the bytes written."""
        return self.call(WRITE, fd, data=bytes(data)).result

    def read_bytes(self, path: str) -> bytes:
        """The whole contents of a kernel file."""
        fd = self.open(path)
        try:
            chunks = []
            while chunk := self.read(fd, 65536):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            self.close_fd(fd)

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write ``data`` to a kernel file (procfs and sysfs files: not truncated)."""
        fd = self.open(path, os.O_WRONLY)
        try:
            done = 0
            while done < len(data):
                done += self.write(fd, data[done:])
        finally:
            self.close_fd(fd)

    def stat(self, path: str) -> tuple[int, int]:
        """(st_mode, st_size) of a kernel path."""
        try:
            raw = self.call(STAT, data=os.fsencode(path) + b"\0").data
        except OSError as e:
            raise _error(e.errno or errno.EIO, path) from None
        # struct statx: mask, blksize, attributes (u64), nlink, uid, gid, mode (u16).
        mode = struct.unpack_from("<H", raw, 28)[0]
        size = struct.unpack_from("<Q", raw, 40)[0]
        return mode, size

    def is_dir(self, path: str) -> bool:
        """True if ``path`` is a kernel directory."""
        return statmod.S_ISDIR(self.stat(path)[0])

    def listdir(self, path: str) -> list[tuple[str, int]]:
        """(name, d_type) of the entries of a kernel directory, without . and .."""
        fd = self.open(path, os.O_RDONLY | os.O_DIRECTORY)
        out = []
        try:
            while True:
                buf = self.call(GETDENTS, fd, 32768).data
                if not buf:
                    break
                off = 0
                while off + 19 <= len(buf):
                    reclen = struct.unpack_from("<H", buf, off + 16)[0]
                    if reclen < 19:
                        break
                    dtype = buf[off + 18]
                    name = buf[off + 19:off + reclen].split(b"\0", 1)[0]
                    if name not in (b".", b".."):
                        out.append((os.fsdecode(name), dtype))
                    off += reclen
        finally:
            self.close_fd(fd)
        return out

    # ---- the server ----

    def stats(self) -> dict[str, int]:
        """The server's counters as the protocol reports them."""
        r = self.call(STATS)
        return {"open_fds": r.result, "requests": r.ret[0], "malformed": r.ret[1],
                "clients": r.ret[2]}

    def interfaces(self) -> list[str]:
        """The kernel's interface names (/sys/class/net)."""
        return sorted(name for name, _ in self.listdir("/sys/class/net"))

    # ---- capture ----

    def capture_start(self, ifname: str, out: BinaryIO | int, snaplen: int = 65535,
                      count: int = 0) -> int:
        """Capture the frames of ``ifname`` into ``out``; returns the capture id.

        ``out`` is a file or an fd: it is passed to the server (SCM_RIGHTS).
        """
        fd = out if isinstance(out, int) else out.fileno()
        return self.call(CAPTURE_START, snaplen, count, data=ifname.encode() + b"\0",
                         fds=[fd]).result

    def capture_status(self, cid: int) -> tuple[int, int, bool]:
        """(frames, dropped, done) of a capture."""
        r = self.call(CAPTURE_STATUS, cid)
        return r.ret[0], r.ret[1], bool(r.ret[2])

    def capture_stop(self, cid: int) -> tuple[int, int]:
        """Stop a capture: (frames, dropped)."""
        r = self.call(CAPTURE_STOP, cid)
        return r.ret[0], r.ret[1]


# ---- instances ------------------------------------------------------------------------


@dataclass
class Instance:
    """A live kernel serving a control socket."""

    name: str
    path: str
    pid: int
    started: float
    interfaces: list[str] = field(default_factory=list)

    @property
    def uptime(self) -> float:
        """Seconds since it started serving."""
        return max(0.0, time.time() - self.started)


def _probe(path: str) -> Instance | None:
    with Client(path, timeout=2.0) as c:
        try:
            names = c.interfaces()
        except OSError:
            names = []
        return Instance(c.name, path, c.pid, float(c.started), names)


def instances(clean: bool = True) -> list[Instance]:
    """The live instances of this user, sorted by name.

    A socket nobody answers on (its process died) is removed when ``clean``.
    """
    d = control_dir()
    try:
        entries = sorted(os.listdir(d))
    except FileNotFoundError:
        return []
    out = []
    for entry in entries:
        if not entry.endswith(".sock"):
            continue
        path = os.path.join(d, entry)
        try:
            inst = _probe(path)
        except ControlError as e:
            if clean and e.errno in (errno.ECONNREFUSED, errno.ENOENT):
                with contextlib.suppress(OSError):
                    os.unlink(path)
            continue
        if inst is not None:
            out.append(inst)
    return out


def iter_instances() -> Iterator[Instance]:
    """Like :func:`instances`, lazily (no cleaning)."""
    yield from instances(clean=False)

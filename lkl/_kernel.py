"""The kernel's lifecycle (boot, halt) and its files and counters."""

from __future__ import annotations

import atexit
import codecs
import errno
import ipaddress
import os
import re
import struct
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from lkl import _lkl
from lkl._lkl import KernelError
from lkl._socket import Socket
from lkl.net import rtnl, tc
from lkl.net.nic import Backend, Nic, Offload
from lkl.net.rtnl import Device

__all__ = ["Kernel", "KernelError", "boot", "kernel"]

_K = _lkl.internal_constants
_C = _lkl.constants

SYSCALL_MODES = ("shadow", "direct")
# boot()'s defaults: the fast configuration (see boot's docstring and
# bench/results/python_net.md); the paper's baseline is syscall_mode="shadow".
DEFAULT_MAX_FDS = 1 << 20
_RLIMIT_NOFILE = 7

_lock = threading.RLock()
_current: Kernel | None = None
# A kernel booted in this process (Linux cannot boot twice in one).
_spent = False

_SPENT = ("a kernel already ran and halted in this process, and Linux cannot boot "
          "twice in one process; run each kernel in a fresh process (subprocess, or "
          "multiprocessing with the 'spawn' start method)")


def kernel() -> Kernel | None:
    """The running kernel of this process, or None."""
    k = _current
    if k is None or k._halted or not _lkl.is_running():
        return None
    return k


def _with_path(e: OSError, path: str) -> BaseException:
    """The same error, naming the file (as the standard library's open() does)."""
    return _lkl.errno_error(e.errno, path) if e.errno is not None else e


def _memory_bytes(memory: int | str) -> int:
    if isinstance(memory, bool) or not isinstance(memory, (int, str)):
        raise TypeError(f"memory must be an int (bytes) or a str like '64M', not "
                        f"{type(memory).__name__}")
    if isinstance(memory, str):
        m = re.fullmatch(r"\s*(\d+)\s*([kKmMgG]?)[bB]?\s*", memory)
        if not m:
            raise ValueError(f"memory must look like '64M', '1G' or a byte count, not {memory!r}")
        memory = int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2).lower()]
    if memory < 16 << 20:
        raise ValueError("the kernel needs at least 16M of memory")
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        physical = 0
    if physical and memory > physical:
        raise ValueError(f"memory ({memory} bytes) exceeds the host's RAM ({physical} bytes)")
    return memory


def _nameserver_list(nameservers: Iterable[str] | None) -> tuple[str, ...] | None:
    """boot()'s nameservers, checked: IP addresses (IPv6 with %scope allowed)."""
    if nameservers is None:
        return None
    if isinstance(nameservers, (str, bytes)):
        raise TypeError("nameservers must be a list of IP address strings, not one string")
    out = []
    for ns in nameservers:
        if not isinstance(ns, str):
            raise TypeError(f"a nameserver must be an IP address str, not {type(ns).__name__}")
        try:
            ipaddress.ip_address(ns.split("%", 1)[0])
        except ValueError:
            raise ValueError(f"nameserver {ns!r} is not an IP address") from None
        out.append(ns)
    return tuple(out)


def boot(
    memory: int | str = "256M",
    cmdline: str = "",
    syscall_mode: str = "direct",
    pin_cpu: int | None = None,
    console: Callable[[str], Any] | None = None,
    nics: Iterable[Any] = (),
    max_fds: int = DEFAULT_MAX_FDS,
    nameservers: Iterable[str] | None = None,
    control: str | None = None,
    console_signal: int | None = None,
) -> Kernel:
    """Boot the Linux kernel in this process and return it.

    ``memory``: its RAM, as ``"64M"``, ``"1G"`` or bytes (default 256M,
    enough for 10 000 TCP connections; the host backs only the pages the
    kernel touches: about 3 MB more resident than 64M after boot).  ``cmdline``:
    extra kernel command line.  ``syscall_mode``: ``"direct"`` (the default:
    the calling thread runs its syscalls itself under the CPU lock, with a
    periodic tick, ``nohz=off``, unless ``cmdline`` names ``nohz=``) or
    ``"shadow"`` (the paper's baseline: each host thread's syscalls run on
    its own shadow kernel thread).  ``max_fds``: the kernel's RLIMIT_NOFILE
    for its init process, whose fd table every host thread shares (default
    2**20, so tens of thousands of sockets work; above 2**20 fs.nr_open is
    raised to match), and as many epoll watches.
    ``pin_cpu``: None, or the host CPU every kernel thread is pinned to.
    ``console``: None (the text stays in ``Kernel.log``) or a callable that
    receives each chunk of console text, from a Python thread of the
    package.  ``nics``: :class:`lkl.Nic` devices attached at boot (their
    command-line fragments are appended; see ``Kernel.nics``).  The
    kernel's host name starts as the host's (``sethostname`` on the
    kernel changes only its own).
    ``nameservers``: the DNS servers (IP addresses) that lkl.resolver asks
    through this kernel; None: those of the host's /etc/resolv.conf.
    ``control``: serve the kernel to this user's other processes as that
    name (``Kernel.serve_control``; ``python -m lkl attach NAME``).
    ``console_signal``: a signal number whose arrival starts serving a
    control socket named after the pid (none unless asked; see lkl.control).

    One kernel per process: booting while one runs raises KernelError, and
    so does booting after a halt, because the kernel's static state cannot
    be reset -- run each kernel in its own process (subprocess, or
    multiprocessing with the "spawn" start method).
    """
    global _current, _spent
    mem = _memory_bytes(memory)
    if not isinstance(cmdline, str):
        raise TypeError(f"cmdline must be a str, not {type(cmdline).__name__}")
    if "\0" in cmdline:
        raise ValueError("embedded null character in cmdline")
    if syscall_mode not in SYSCALL_MODES:
        raise ValueError(f"syscall_mode must be one of {SYSCALL_MODES}, not {syscall_mode!r}")
    pin = -2
    if pin_cpu is not None:
        if isinstance(pin_cpu, bool) or not isinstance(pin_cpu, int):
            raise TypeError("pin_cpu must be None or an int")
        if pin_cpu not in os.sched_getaffinity(0):
            raise ValueError(f"pin_cpu {pin_cpu} is not a CPU this process may run on")
        pin = pin_cpu
    if isinstance(max_fds, bool) or not isinstance(max_fds, int):
        raise TypeError(f"max_fds must be an int, not {type(max_fds).__name__}")
    if not 64 <= max_fds <= 1 << 30:
        raise ValueError("max_fds must be between 64 and 2**30")
    if console is not None and not callable(console):
        raise TypeError("console must be None or a callable taking a str")
    nic_list = list(nics)
    for nic in nic_list:
        if not isinstance(nic, Nic):
            raise TypeError(f"nics must hold lkl.Nic objects, not {type(nic).__name__}")
        nic._check_detached()
    if len({id(n) for n in nic_list}) != len(nic_list):
        raise ValueError("the same Nic is listed twice")
    servers = _nameserver_list(nameservers)
    if control is not None:
        from lkl import control as _control
        _control.check_name(control)  # before booting: a refusal costs no kernel

    with _lock:
        if kernel() is not None:
            raise KernelError(errno.EBUSY,
                              "a kernel is already running in this process (lkl.kernel())")
        if _lkl.in_forked_child():
            raise KernelError("cannot boot in a process forked from one that ran a kernel")
        if _spent:
            raise KernelError(errno.EALREADY, _SPENT)
        line = f"mem={mem}"
        line += f" lkl.syscall_mode={syscall_mode}"
        # Every refusal Python can tell is above: a fragment made marks its
        # device attached on the C side.
        for nic in nic_list:
            line += " " + nic._boot_fragment()
        if syscall_mode == "direct" and not re.search(r"(^|\s)nohz=", cmdline):
            # The paper's choice with direct syscalls: no idle-loop tick work
            # after each call (bench/results/python_net.md measures it).
            line += " nohz=off"
        if cmdline.strip():
            line += " " + cmdline.strip()
        err = _lkl._boot(line.encode(), pin)
        if err == -_K["EBUSY"]:
            raise KernelError(errno.EBUSY, "a kernel is already running in this process")
        if err == -_K["EALREADY"]:
            raise KernelError(errno.EALREADY, _SPENT)
        if err < 0:
            raise KernelError(-err, f"the kernel failed to boot: {os.strerror(-err)}")
        _spent = True
        k = Kernel._booted(syscall_mode, console)
        for nic in nic_list:
            nic._booted(k)
        k._nics.extend(nic_list)
        k._nameservers = servers
        _current = k
        try:
            k._setup()
            k._set_max_fds(max_fds)
            if control is not None:
                k.serve_control(control)
            if console_signal is not None:
                from lkl import control as _control
                _control.install_console_signal(k, console_signal)
        except BaseException:
            k.halt()
            raise
        return k


class Kernel:
    """A Linux kernel running in this process (made by lkl.boot()).

    A context manager: leaving the ``with`` block halts it.  After
    ``halt()`` (idempotent) every method raises KernelError; the
    attributes ``version``, ``syscall_mode`` and ``log`` stay readable.
    """

    _halted: bool
    _syscall_mode: str
    _console: Callable[[str], Any] | None
    _console_thread: threading.Thread | None
    _uname: os.uname_result | None
    _nics: list[Nic]
    _nameservers: tuple[str, ...] | None

    def __init__(self) -> None:
        raise TypeError("use lkl.boot() to start a kernel")

    @classmethod
    def _booted(cls, syscall_mode: str, console: Callable[[str], Any] | None) -> Kernel:
        self = cls.__new__(cls)
        self._halted = False
        self._syscall_mode = syscall_mode
        self._console = console
        self._console_thread = None
        self._uname = None
        self._nics = []
        self._nameservers = None
        return self

    def _setup(self) -> None:
        if self._console is not None:
            self._console_thread = threading.Thread(
                target=self._pump_console, name="lkl-console", daemon=True)
            self._console_thread.start()
        mode = _lkl.syscall_mode()
        if mode is not None and mode != self._syscall_mode:
            raise KernelError(
                errno.EOPNOTSUPP,
                f"the kernel runs syscall mode {mode!r}, not the {self._syscall_mode!r} "
                "asked for: that mode is not available in this build (this process "
                "cannot boot another kernel)")
        # The host's name, as a container starts with one: what
        # socket.gethostname() gives under lkl.patch, resolvable as on
        # the host (hosts file, else lkl.resolver's own-name answer).
        name = os.uname().nodename.encode()[:64]
        self.syscall("sethostname", name, len(name))
        self._uname = self.uname()
        # Bring up lo, as a Linux init does (127.0.0.1 and ::1 come with it).
        rtnl.set_up(self, "lo", True)

    def _set_max_fds(self, n: int) -> None:
        """Raise the kernel's fd limits to ``n``.

        RLIMIT_NOFILE of its init (whose fd table every host thread
        shares), and as many epoll watches.
        """
        if n > int(self.read_text("/proc/sys/fs/nr_open")):
            self.sysctl("fs.nr_open", n)
        limit = struct.pack("QQ", n, n)
        self.syscall("prlimit64", 0, _RLIMIT_NOFILE, limit, None)
        # Its default scales with RAM (about 16 000 for 64M): an epoll per
        # event loop should be able to watch every socket.
        if int(self.sysctl("fs.epoll.max_user_watches") or 0) < n:
            self.sysctl("fs.epoll.max_user_watches", n)

    def _pump_console(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        offset = 0
        while True:
            end = _lkl._console_wait(offset, 0.25)
            if end > offset:
                data, offset = _lkl._console_read(offset)
                text = decoder.decode(data)
                if text and self._console is not None:
                    try:
                        self._console(text)
                    except Exception:
                        sys.excepthook(*sys.exc_info())
            elif _lkl._console_closed():
                return

    # ---- lifecycle ---------------------------------------------------------

    def _check(self) -> None:
        if self._halted:
            raise KernelError("the kernel was halted")
        if _lkl.in_forked_child():
            raise KernelError("this process is a fork of the one that runs the kernel")

    def halt(self) -> None:
        """Power the kernel off and join its threads (idempotent).

        Threads blocked in kernel calls get KernelError (an OSError, errno
        ENODEV).  The process cannot boot another kernel afterwards.
        """
        global _current
        with _lock:
            if self._halted:
                return
            self._halted = True
            if not _lkl.in_forked_child():
                _lkl._control_stop()  # its clients run calls in this kernel
                _lkl._halt()
                # The devices are freed only now that no kernel runs.
                for nic in self._nics:
                    nic._free()
            if _current is self:
                _current = None
        t = self._console_thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=5)

    def __enter__(self) -> Kernel:
        self._check()
        return self

    def __exit__(self, *exc: object) -> None:
        self.halt()

    def __repr__(self) -> str:
        state = "halted" if self._halted else "running"
        return f"<lkl.Kernel {self.version} {state} syscall_mode={self._syscall_mode!r}>"

    @property
    def nameservers(self) -> tuple[str, ...] | None:
        """The DNS servers given at boot (None: the host's resolv.conf ones)."""
        return self._nameservers

    @property
    def halted(self) -> bool:
        """True once halt() ran."""
        return self._halted

    @property
    def version(self) -> str:
        """The kernel release, e.g. "6.12.117"."""
        return self._uname.release if self._uname is not None else ""

    @property
    def syscall_mode(self) -> str:
        """How host threads enter the kernel: "shadow" or "direct"."""
        return self._syscall_mode

    @property
    def log(self) -> str:
        """The kernel's console text so far (the newest 1 MiB)."""
        return _lkl._console_read(0)[0].decode("utf-8", "replace")

    def uname(self) -> os.uname_result:
        """The kernel's uname, with the fields of os.uname()."""
        self._check()
        size = _K["sizeof_new_utsname"]
        buf = bytearray(size)
        self.syscall("uname", buf)
        n = size // 6
        fields = [bytes(buf[i * n:(i + 1) * n]).split(b"\0", 1)[0].decode("utf-8", "replace")
                  for i in range(5)]
        return os.uname_result(fields)

    def getpid(self) -> int:
        """The kernel's pid for this process's threads: 1.

        They all run as threads of the kernel's init process.
        """
        if self._halted:
            raise KernelError("the kernel was halted")
        return _lkl.getpid()

    def syscall(self, nr: int | str, *args: Any) -> int:
        """Run a raw syscall: see lkl._lkl.syscall.

        ``nr`` is a number or a name ("getpid"); arguments are ints, None,
        str (C strings) or buffers: writable ones are passed in place (for
        output), read-only ones (bytes) as a copy the kernel may only read.
        A negative result raises the standard library's OSError subclass.
        """
        self._check()
        return _lkl.syscall(nr, *args)

    def alloc_buffer(self, size: int) -> _lkl.KernelBuffer:
        """A writable buffer of ``size`` bytes in the kernel's own memory.

        MSG_ZEROCOPY sends from it reference its pages instead of copying
        (see lkl.zerocopy).  Close it (or use ``with``) when done.
        """
        self._check()
        return _lkl.KernelBuffer._map(size)

    def socket(self, family: int = _C["AF_INET"], type: int = _C["SOCK_STREAM"],
               proto: int = 0) -> Socket:
        """A new socket of the kernel's network stack (see lkl.Socket)."""
        self._check()
        return Socket(family, type, proto)

    # ---- network devices ---------------------------------------------------

    @property
    def nics(self) -> list[Nic]:
        """The network devices, in the order they were attached."""
        return list(self._nics)

    def add_nic(self, backend: Backend, offload: Offload | int = Offload.NONE,
                mac: str | bytes | None = None, mtu: int | None = None,
                direct_rx: bool = False) -> Nic:
        """Hot-add a virtio-net device on ``backend`` (see lkl.Nic) and return it."""
        self._check()
        nic = Nic(backend, offload=offload, mac=mac, mtu=mtu, direct_rx=direct_rx)
        with _lock:
            self._check()
            nic._attach(self)
            self._nics.append(nic)
            if _lkl._control_path():
                _lkl._control_add_netdev(nic._dev)
        return nic

    def add_route(self, dst: str, via: str | None = None, dev: Device | None = None) -> None:
        """Add a route to the main table.

        ``dst`` is "10.0.1.0/24", an address, or "default"; ``via`` a
        gateway; ``dev`` a Nic, an interface name or an ifindex.
        """
        self._check()
        rtnl.add_route(self, dst, via=via, dev=dev)

    def add_neighbor(self, ip: str, mac: str | bytes, dev: Device) -> None:
        """Add a permanent neighbour (ARP / NDP) entry: ``ip`` is at ``mac`` on ``dev``."""
        self._check()
        rtnl.add_neighbor(self, ip, mac, dev)

    def set_qdisc(self, dev: Device, spec: str, ingress: bool = False) -> None:
        """Set the qdisc of ``dev`` from a tc-style ``spec``.

        ``spec`` is a kind with its defaults ("fq", "fq_codel", "pfifo_fast",
        "pfifo limit 100") or netem with tc-netem(8)'s options ("netem delay
        1ms 200us loss 5% duplicate 1% reorder 25% corrupt 1% limit 10000").
        Egress replaces the root qdisc; ``ingress=True`` queues what arrives
        on ``dev`` through an IFB device, ``ifb4<name>`` (see lkl.net.tc).
        ValueError for a malformed spec, OSError for one the kernel refuses.
        """
        self._check()
        tc.set_qdisc(self, dev, spec, ingress=ingress)

    def del_qdisc(self, dev: Device, ingress: bool = False) -> None:
        """Undo set_qdisc on ``dev``.

        The kernel's default root qdisc comes back, or (``ingress=True``)
        the ingress qdisc and its IFB device go.  Nothing to undo is no
        error.
        """
        self._check()
        tc.del_qdisc(self, dev, ingress=ingress)

    # ---- files -------------------------------------------------------------

    def _open(self, path: str, flags: int, mode: int = 0) -> int:
        if not isinstance(path, str):
            raise TypeError(f"path must be a str, not {type(path).__name__}")
        self._check()
        try:
            return _lkl.syscall("openat", _K["AT_FDCWD"], path, flags | _K["O_CLOEXEC"], mode)
        except OSError as e:
            raise _with_path(e, path) from None

    def read_bytes(self, path: str) -> bytes:
        """The contents of the kernel file ``path`` (procfs, sysfs, /tmp...)."""
        fd = self._open(path, _K["O_RDONLY"])
        try:
            chunks: list[bytes] = []
            buf = bytearray(65536)
            view = memoryview(buf)
            while True:
                n = _lkl.syscall("read", fd, buf, len(buf))
                if n == 0:
                    return b"".join(chunks)
                chunks.append(bytes(view[:n]))
        finally:
            _lkl.syscall("close", fd)

    def read_text(self, path: str, encoding: str = "utf-8") -> str:
        """The contents of the kernel file ``path``, decoded."""
        return self.read_bytes(path).decode(encoding)

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write ``data`` to the kernel file ``path``.

        The file is created if missing, and truncated unless it is a procfs
        or sysfs file.
        """
        view = memoryview(data).cast("B")
        special = path.startswith(("/proc/", "/sys/"))
        flags = _K["O_WRONLY"] | (0 if special else _K["O_CREAT"] | _K["O_TRUNC"])
        fd = self._open(path, flags, 0o644)
        try:
            done = 0
            while done < len(view):
                try:
                    done += _lkl.syscall("write", fd, view[done:], len(view) - done)
                except OSError as e:
                    raise _with_path(e, path) from None
        finally:
            _lkl.syscall("close", fd)

    def write_text(self, path: str, text: str, encoding: str = "utf-8") -> None:
        """Write ``text`` to the kernel file ``path`` (see write_bytes)."""
        self.write_bytes(path, text.encode(encoding))

    def listdir(self, path: str = "/") -> list[str]:
        """The names in the kernel directory ``path`` (without . and ..)."""
        fd = self._open(path, _K["O_RDONLY"] | _K["O_DIRECTORY"])
        names = []
        try:
            buf = bytearray(32768)
            while True:
                n = _lkl.syscall("getdents64", fd, buf, len(buf))
                if n == 0:
                    break
                off = 0
                while off < n:
                    # struct linux_dirent64: ino, off, reclen, type, name.
                    reclen = struct.unpack_from("H", buf, off + 16)[0]
                    name = bytes(buf[off + 19:off + reclen]).split(b"\0", 1)[0]
                    if name not in (b".", b".."):
                        names.append(os.fsdecode(name))
                    off += reclen
        finally:
            _lkl.syscall("close", fd)
        return names

    # ---- control endpoint and diagnosis (lkl.control, lkl.connections) -----

    def serve_control(self, name: str) -> str:
        """Serve this kernel to this user's other processes as ``name``.

        Returns the Unix socket's path (see lkl.control).  Tools attach with
        ``python -m lkl attach NAME -- ss -tni``.  OSError (EEXIST) if a live
        process serves that name, EBUSY if this one serves already.
        """
        self._check()
        from lkl import control
        return control.serve(self, name)

    def stop_control(self) -> None:
        """Stop serving the control socket (idempotent)."""
        from lkl import control
        control.stop()

    def connections(self, tcp: bool = True, udp: bool = True) -> list[Any]:
        """The kernel's TCP and UDP sockets, as ``ss`` lists them (lkl.connections)."""
        self._check()
        from lkl import connections
        return connections.connections(self, tcp=tcp, udp=udp)

    # ---- knobs and counters ------------------------------------------------

    def sysctl(self, name: str, value: Any = None) -> str | None:
        """Read (value None: returns str) or write a sysctl.

        ``name`` is dotted ("net.ipv4.tcp_congestion_control") or a path
        under /proc/sys ("net/ipv4/conf/eth0.100/rp_filter").  A list or
        tuple value is written tab-separated, as sysctl(8) does.
        """
        if not isinstance(name, str):
            raise TypeError(f"sysctl name must be a str, not {type(name).__name__}")
        parts = name.strip("/").split("/") if "/" in name else name.split(".")
        if not name or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"invalid sysctl name {name!r}")
        path = "/proc/sys/" + "/".join(parts)
        if value is None:
            return self.read_text(path).rstrip("\n")
        if isinstance(value, (list, tuple)):
            value = "\t".join(str(v) for v in value)
        self.write_text(path, f"{value}\n")
        return None

    def snmp(self) -> dict[str, dict[str, int]]:
        """Every counter of /proc/net/snmp, /proc/net/netstat and /proc/net/snmp6.

        Returns {group: {counter: value}}, with groups such as "Ip", "Tcp",
        "TcpExt", "Udp", "Ip6", "Udp6".
        """
        out: dict[str, dict[str, int]] = {}
        for path in ("/proc/net/snmp", "/proc/net/netstat"):
            try:
                lines = self.read_text(path).splitlines()
            except FileNotFoundError:
                continue
            for head, values in zip(lines[::2], lines[1::2], strict=False):
                group, _, names = head.partition(":")
                group2, _, numbers = values.partition(":")
                if group != group2:
                    continue
                counters = out.setdefault(group.strip(), {})
                for key, number in zip(names.split(), numbers.split(), strict=False):
                    counters[key] = int(number)
        try:
            text = self.read_text("/proc/net/snmp6")
        except FileNotFoundError:
            text = ""
        for line in text.splitlines():
            fields = line.split()
            if len(fields) != 2:
                continue
            m = re.match(r"([A-Za-z]+?6)(\w+)$", fields[0])
            if m:
                out.setdefault(m.group(1), {})[m.group(2)] = int(fields[1])
        return out


@atexit.register
def _halt_at_exit() -> None:
    k = _current
    if k is not None and not k._halted:
        k.halt()

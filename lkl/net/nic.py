"""Network devices: virtio-net NICs on TAP, raw-socket or pipe backends.

A :class:`Nic` is a virtio-net device served by this process and driven by
the kernel's own virtio_net driver; its frames go to a backend.  Its
configuration goes through :mod:`lkl.net.rtnl`.
"""

from __future__ import annotations

import enum
import errno
import os
from typing import TYPE_CHECKING, Any

from lkl import _lkl
from lkl.net import rtnl

if TYPE_CHECKING:
    from lkl._kernel import Kernel

__all__ = ["Offload", "Backend", "Tap", "RawSocket", "Pipe", "Nic"]


class Offload(enum.IntFlag):
    """Virtio-net offload feature bits (the spec's bit numbers) and presets."""

    NONE = 0
    #: The kernel may send frames with partial checksums.
    CSUM = 1 << 0
    #: The kernel takes frames with partial checksums.
    GUEST_CSUM = 1 << 1
    #: The kernel takes TCPv4 / TCPv6 super-frames.
    GUEST_TSO4 = 1 << 7
    GUEST_TSO6 = 1 << 8
    #: The kernel may send TCPv4 / TCPv6 super-frames.
    HOST_TSO4 = 1 << 11
    HOST_TSO6 = 1 << 12
    #: Mergeable receive buffers.
    MRG_RXBUF = 1 << 15
    #: Checksum offload both ways.
    CHECKSUM = CSUM | GUEST_CSUM
    #: Checksums, TSO both ways and mergeable receive buffers.
    LARGE_SEGMENTS = CHECKSUM | GUEST_TSO4 | GUEST_TSO6 | HOST_TSO4 | HOST_TSO6 | MRG_RXBUF
    #: LARGE_SEGMENTS without MRG_RXBUF (the driver's "big packets" mode).
    BIG_PACKETS = CHECKSUM | GUEST_TSO4 | GUEST_TSO6 | HOST_TSO4 | HOST_TSO6


_OFFLOAD_MASK = int(Offload.LARGE_SEGMENTS)


# ---- backends ---------------------------------------------------------------


class Backend:
    """Where a Nic's frames go (base class of Tap, RawSocket and Pipe)."""

    def _open(self) -> Any:
        raise NotImplementedError


class _HostInterface(Backend):
    """A backend on the host interface ``ifname``."""

    def __init__(self, ifname: str) -> None:
        if not isinstance(ifname, str) or not ifname or len(ifname) >= 16:
            raise ValueError(f"invalid interface name {ifname!r}")
        self.ifname = ifname

    def __repr__(self) -> str:
        return f"lkl.{type(self).__name__}({self.ifname!r})"


class Tap(_HostInterface):
    """The host TAP device ``ifname`` (created if missing: needs CAP_NET_ADMIN).

    The device is opened when a Nic is made on it.
    """

    def _open(self) -> Any:
        return _lkl._tap_backend(self.ifname)


class RawSocket(_HostInterface):
    """An AF_PACKET socket on the existing host interface ``ifname``.

    Promiscuous; needs CAP_NET_RAW.
    """

    def _open(self) -> Any:
        return _lkl._raw_backend(self.ifname)


class Pipe(Backend):
    """One end of a pipe between two kernels: a host socket fd carrying frames.

    Make both ends with :meth:`Pipe.pair`; pass one end's ``fd`` to another
    process (``subprocess.Popen(pass_fds=...)``) and wrap it there with
    ``lkl.Pipe(fd)``.  The Nic made on an end uses a duplicate of the fd;
    :meth:`close` closes this object's own fd.
    """

    def __init__(self, fd: int) -> None:
        if isinstance(fd, bool) or not isinstance(fd, int) or fd < 0:
            raise ValueError("fd must be a non-negative int")
        self.fd: int | None = fd

    @classmethod
    def pair(cls) -> tuple[Pipe, Pipe]:
        """Two connected ends (a SOCK_SEQPACKET pair; the fds are inheritable)."""
        a, b = _lkl._pipe_pair()
        return cls(a), cls(b)

    def fileno(self) -> int:
        """The host fd of this end."""
        if self.fd is None:
            raise ValueError("the pipe end is closed")
        return self.fd

    def close(self) -> None:
        """Close this object's fd (a Nic made on it keeps its own)."""
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)

    def _open(self) -> Any:
        fd = os.dup(self.fileno())
        try:
            return _lkl._pipe_backend(fd, fd)
        except BaseException:
            os.close(fd)
            raise

    def __repr__(self) -> str:
        return f"lkl.Pipe({self.fd})"


# ---- devices ----------------------------------------------------------------


class Nic:
    """A virtio-net network device of the kernel, on ``backend``.

    ``offload``: the :class:`Offload` bits to offer the driver (limited to
    what the backend carries); ``mac``: "02:00:00:00:00:01" or 6 bytes
    (None: random); ``mtu``: MTU advice to the driver (None: 1500);
    ``direct_rx``: with ``syscall_mode="direct"``, a thread whose syscall
    sleeps receives this device's frames itself, instead of the device's
    poller thread receiving them and then waking it (one host context
    switch less per wakeup: TCP_RR latency, see bench/tcp_rr.py).  One
    device per process can do this, the first created with it.
    ``busy_poll_us``: with ``direct_rx``, that thread busy polls the
    backend for up to this many µs before it sleeps, only while answers
    come within that time (adaptive; 0: never); without it, the device's
    poller spins this long.  Costs CPU for latency: see bench/tcp_rr.py.

    Pass it to ``lkl.boot(nics=[...])``, or use ``Kernel.add_nic``.  The
    device is freed after the kernel halts.
    """

    def __init__(self, backend: Backend, offload: Offload | int = Offload.NONE,
                 mac: str | bytes | None = None, mtu: int | None = None,
                 direct_rx: bool = False, busy_poll_us: int = 0) -> None:
        if not isinstance(backend, Backend):
            raise TypeError(f"backend must be an lkl.Tap, RawSocket or Pipe, not "
                            f"{type(backend).__name__}")
        if isinstance(offload, bool) or not isinstance(offload, int):
            raise TypeError("offload must be an lkl.Offload")
        if offload & ~_OFFLOAD_MASK:
            raise ValueError(f"unknown offload bits {offload & ~_OFFLOAD_MASK:#x}")
        if mtu is not None and (isinstance(mtu, bool) or not isinstance(mtu, int)
                                or not 68 <= mtu <= 65535):
            raise ValueError("mtu must be None or an int in 68..65535")
        raw_mac = rtnl.mac_bytes(mac) if mac is not None else None
        self.backend = backend
        self.offload = Offload(offload)
        self._kernel: Kernel | None = None
        self._name: str | None = None
        self._index: int | None = None
        if isinstance(busy_poll_us, bool) or not isinstance(busy_poll_us, int) or \
                not 0 <= busy_poll_us <= 1_000_000:
            raise ValueError("busy_poll_us must be an int in 0..1000000")
        self.direct_rx = bool(direct_rx)
        self._dev = _lkl._netdev_create(backend._open(), int(offload), raw_mac, mtu or 0,
                                        direct_rx=self.direct_rx,
                                        busy_poll_us=busy_poll_us)

    def __repr__(self) -> str:
        where = self._name or ("attached" if self._kernel is not None else "not attached")
        return f"<lkl.Nic {where} on {self.backend!r} offload={self.offload!r}>"

    # ---- attachment (used by lkl.boot and Kernel.add_nic) ------------------

    def _check_detached(self) -> None:
        if self._kernel is not None:
            raise ValueError("this Nic is already attached to a kernel")

    def _boot_fragment(self) -> str:
        """The kernel command-line fragment that attaches it at boot."""
        self._check_detached()
        return self._dev.cmdline()

    def _booted(self, k: Kernel) -> None:
        """The kernel booted with this Nic's fragment: it is attached to ``k``."""
        self._kernel = k

    def _attach(self, k: Kernel) -> None:
        """Hot-add it to the running kernel ``k``."""
        self._check_detached()
        self._dev.attach()
        self._kernel = k

    def _free(self) -> None:
        if getattr(self, "_captures", None):
            # Imported only when one runs: a sandboxed process (lkl.proxy)
            # can no longer open a module file at halt.
            from lkl import capture
            capture.stop_all(self)  # a capture holds the device
        self._dev.free()

    def _k(self) -> Kernel:
        k = self._kernel
        if k is None:
            raise ValueError("this Nic is not attached to a kernel")
        k._check()
        return k

    # ---- identity ----------------------------------------------------------

    @property
    def ifindex(self) -> int:
        """The kernel's interface index of the device."""
        if self._index is None:
            self._k()
            self._index = self._dev.ifindex()
        return self._index

    @property
    def name(self) -> str:
        """The kernel's interface name ("eth0"...)."""
        if self._name is None:
            self._name = rtnl.ifname(self._k(), self.ifindex)
        return self._name

    @property
    def mac(self) -> str:
        """The device's MAC address, "aa:bb:cc:dd:ee:ff"."""
        return rtnl.mac_str(rtnl.hwaddr(self._k(), self.name))

    @property
    def features_offered(self) -> Offload:
        """The offload bits offered to the driver."""
        return Offload(self._dev.offered & _OFFLOAD_MASK)

    @property
    def features_negotiated(self) -> Offload:
        """The offload bits the driver accepted."""
        return Offload(self._dev.negotiated & _OFFLOAD_MASK)

    # ---- configuration -----------------------------------------------------

    def up(self) -> None:
        """Bring the interface up."""
        rtnl.set_up(self._k(), self.name, True)

    def down(self) -> None:
        """Take the interface down."""
        rtnl.set_up(self._k(), self.name, False)

    def set_mtu(self, mtu: int) -> None:
        """Set the interface's MTU."""
        if isinstance(mtu, bool) or not isinstance(mtu, int):
            raise TypeError("mtu must be an int")
        rtnl.set_mtu(self._k(), self.name, mtu)

    def add_address(self, cidr: str) -> None:
        """Add an address, "10.0.0.2/24" or "fd00::2/64" (IPv6 without DAD)."""
        k = self._k()
        rtnl.add_address(k, self.ifindex, cidr)

    def set_kernel_offloads(self, gso: bool | None = None, gro: bool | None = None,
                            tso: bool | None = None, rx_csum: bool | None = None,
                            tx_csum: bool | None = None) -> None:
        """Switch the kernel's own offloads of this interface (ethtool features).

        None leaves one as it is; one already as asked is left alone.  One
        that must change but cannot raises OSError (EOPNOTSUPP) naming it:
        the driver fixes what the device did not negotiate (``tso=True``
        without HOST_TSO4, ``tx_csum=True`` without CSUM).  The kernel's
        virtio_net driver keeps rx_csum on, but it only means "trust the
        device's checksum-valid mark", which a device without GUEST_CSUM
        never sets: there the kernel checks every checksum itself, which is
        what ``rx_csum=False`` asks, so it is no error (the paper's
        baseline: ``Offload.NONE`` and every kernel offload off).
        """
        k = self._k()
        name = self.name
        wanted = {"gso": gso, "gro": gro, "tso": tso, "rx_csum": rx_csum, "tx_csum": tx_csum}
        for feature, value in wanted.items():
            if value is None:
                continue
            get, put = rtnl.ETHTOOL_FEATURES[feature]
            if bool(rtnl.ethtool_value(k, name, get)) == value:
                continue
            try:
                rtnl.ethtool_value(k, name, put, int(value))
            except _lkl.KernelError:
                raise
            except OSError as e:
                if e.errno != errno.EOPNOTSUPP:
                    raise
            if bool(rtnl.ethtool_value(k, name, get)) == value:
                continue
            if feature == "rx_csum" and not value and not (
                    self.features_negotiated & Offload.GUEST_CSUM):
                continue  # in effect off: nothing is ever marked valid
            raise OSError(errno.EOPNOTSUPP,
                          f"{name}: the kernel cannot switch {feature} "
                          f"{'on' if value else 'off'}: the driver fixes it for the "
                          f"negotiated offloads ({self.features_negotiated!r}), or it "
                          "needs a feature that is off")

    def set_busy_poll(self, us: int) -> None:
        """Change ``busy_poll_us`` (see the class), in µs (0: sleep at once)."""
        self._dev.set_busy_poll(int(us))

    # ---- packet capture (lkl.capture) ----------------------------------------

    def capture(self, path_or_file: Any, snaplen: int = 65535, count: int | None = None,
                stop: Any = None, ring_bytes: int = 4 << 20) -> Any:
        """Capture every frame this device moves, both ways, to a pcap file.

        ``path_or_file``: a path, a binary file or an fd.  ``snaplen``: bytes
        kept per frame; ``count``: stop recording after that many frames;
        ``stop``: None, a duration in seconds or a threading.Event that ends
        the capture.  Returns an lkl.capture.Capture (``stop()``, ``stats``,
        ``wait``; a context manager).  OSError (EBUSY) if one already runs.
        """
        from lkl import capture
        return capture.capture(self, path_or_file, snaplen=snaplen, count=count, stop=stop,
                               ring_bytes=ring_bytes)

    # ---- counters ----------------------------------------------------------

    def stats(self) -> dict[str, dict[str, int]]:
        """Counters: ``{"kernel": {...}, "device": {...}}``.

        "kernel": /sys/class/net/<name>/statistics (rx_packets, rx_bytes,
        rx_dropped, rx_errors, tx_*...).  "device": the device's own
        (rx_packets, tx_packets, rx_dropped, rx_malformed, rx_oversize,
        rx_errors, tx_dropped, tx_errors, rx_sw_csum, rx_sw_gso, irqs, kicks,
        rx_direct: receives done on a sleeping syscall's thread, see direct_rx;
        poller_rx_wakeups: the poller woke for frames; busy_polls,
        busy_poll_hits, busy_poll_ns: busy polls of a serving thread, those
        that found work, and their time).
        """
        k = self._k()
        base = f"/sys/class/net/{self.name}/statistics"
        kernel: dict[str, int] = {}
        for entry in sorted(k.listdir(base)):
            try:
                kernel[entry] = int(k.read_text(f"{base}/{entry}").strip())
            except (OSError, ValueError):
                continue
        return {"kernel": kernel, "device": self._dev.stats()}

# Virtio-net devices (native/include/lkl/netdev.h): backends and devices.
# The Python-level API (lkl.Nic, lkl.Tap, ...) is in lkl/net/nic.py.


cdef _net_check(int err, str what):
    if err < 0:
        raise OSError(-err, f"{what}: {_os.strerror(-err)}")
    return err


cdef class _Backend:
    """A backend no device owns yet (freed with it unless a device took it)."""
    cdef lkl_netdev_backend *be

    def __cinit__(self):
        self.be = NULL

    def __dealloc__(self):
        if self.be != NULL:
            lkl_netdev_backend_free(self.be)
            self.be = NULL

    @property
    def offloads(self):
        """The offload bits this backend can carry."""
        if self.be == NULL:
            raise ValueError("backend already used by a device")
        return lkl_netdev_backend_offloads(self.be)


def _tap_backend(str ifname):
    """A TAP backend on ``ifname`` (created if missing)."""
    cdef _Backend b = _Backend()
    cdef bytes name = _os.fsencode(ifname)
    cdef const char *c = name
    cdef int err
    with nogil:
        err = lkl_netdev_tap_create(c, &b.be)
    _net_check(err, f"cannot open TAP device {ifname!r}")
    return b


def _raw_backend(str ifname):
    """An AF_PACKET backend on the existing interface ``ifname``."""
    cdef _Backend b = _Backend()
    cdef bytes name = _os.fsencode(ifname)
    cdef const char *c = name
    cdef int err
    with nogil:
        err = lkl_netdev_raw_create(c, &b.be)
    _net_check(err, f"cannot open a raw socket on {ifname!r}")
    return b


def _pipe_backend(int rx_fd, int tx_fd):
    """A pipe backend on host fds ``rx_fd``/``tx_fd`` (it owns them from now on)."""
    cdef _Backend b = _Backend()
    _net_check(lkl_netdev_pipe_create(rx_fd, tx_fd, &b.be), "cannot make a pipe backend")
    return b


def _pipe_pair():
    """A connected SOCK_SEQPACKET pair of host fds (inheritable)."""
    cdef int fds[2]
    _net_check(lkl_netdev_pipe_pair(fds), "cannot make a pipe pair")
    return fds[0], fds[1]


_STAT_NAMES = ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "rx_dropped",
               "rx_malformed", "rx_oversize", "rx_errors", "tx_dropped", "tx_errors",
               "rx_sw_csum", "rx_sw_gso", "irqs", "kicks", "rx_direct", "poll_errors",
               "poller_rx_wakeups", "busy_polls", "busy_poll_hits", "busy_poll_ns")


cdef class _NetDev:
    """A virtio-net device (lkl_netdev); freed only while no kernel runs."""
    cdef lkl_netdev *dev

    def __cinit__(self):
        self.dev = NULL

    def __dealloc__(self):
        # Never free under a running kernel: leak instead (halt frees it).
        if self.dev != NULL and not lkl_is_running():
            lkl_netdev_free(self.dev)
            self.dev = NULL

    cdef lkl_netdev *_get(self) except NULL:
        if self.dev == NULL:
            raise ValueError("the network device was freed")
        return self.dev

    def cmdline(self):
        """The kernel command-line fragment that attaches it at boot."""
        cdef char buf[512]
        _net_check(lkl_netdev_cmdline(self._get(), buf, sizeof(buf)), "netdev cmdline")
        return buf.decode("ascii")

    def attach(self):
        """Hot-add it to the running kernel (the driver probes before return)."""
        cdef lkl_netdev *d = self._get()
        cdef int err
        with nogil:
            err = lkl_netdev_attach(d)
        _net_check(err, "cannot attach the network device")

    def ifindex(self):
        """The kernel's interface index of the device."""
        cdef lkl_netdev *d = self._get()
        cdef int ret
        with nogil:
            ret = lkl_netdev_ifindex(d)
        return _net_check(ret, "cannot find the device's interface")

    @property
    def offered(self):
        return lkl_netdev_offered(self._get())

    @property
    def negotiated(self):
        return lkl_netdev_negotiated(self._get())

    def stats(self):
        """The device's own counters, as a dict."""
        cdef lkl_netdev_stats st
        memset(&st, 0, sizeof(st))
        lkl_netdev_get_stats(self._get(), &st)
        values = (st.rx_packets, st.rx_bytes, st.tx_packets, st.tx_bytes, st.rx_dropped,
                  st.rx_malformed, st.rx_oversize, st.rx_errors, st.tx_dropped,
                  st.tx_errors, st.rx_sw_csum, st.rx_sw_gso, st.irqs, st.kicks,
                  st.rx_direct, st.poll_errors, st.poller_rx_wakeups, st.busy_polls,
                  st.busy_poll_hits, st.busy_poll_ns)
        return dict(zip(_STAT_NAMES, values))

    def set_busy_poll(self, int us):
        lkl_netdev_set_busy_poll(self._get(), us)

    def free(self):
        """Free it (only while no kernel runs).  Returns 0 or a negative errno."""
        cdef int err
        if self.dev == NULL:
            return 0
        with nogil:
            err = lkl_netdev_free(self.dev)
        if err == 0:
            self.dev = NULL
        return err


def _netdev_create(_Backend backend, uint64_t offload, mac, int mtu,
                   int queue_size=0, int busy_poll_us=0, bint direct_rx=False):
    """A device on ``backend`` (which it takes over, also on failure)."""
    cdef lkl_netdev_config cfg
    cdef _NetDev d = _NetDev()
    cdef lkl_netdev_backend *be = backend.be
    cdef int i, err
    if be == NULL:
        raise ValueError("backend already used by a device")
    memset(&cfg, 0, sizeof(cfg))
    cfg.offload = offload
    if mac is not None:
        if len(mac) != 6:
            raise ValueError("mac must be 6 bytes")
        cfg.has_mac = 1
        for i in range(6):
            cfg.mac[i] = mac[i]
    cfg.mtu = mtu
    cfg.queue_size = queue_size
    cfg.busy_poll_us = busy_poll_us
    cfg.direct_rx = direct_rx
    backend.be = NULL
    with nogil:
        err = lkl_netdev_create(be, &cfg, &d.dev)
    _net_check(err, "cannot create the network device")
    return d

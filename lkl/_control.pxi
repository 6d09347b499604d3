# The control endpoint (native/include/lkl/control.h) and packet capture
# (native/include/lkl/capture.h).  The Python-level API is lkl/control.py
# and lkl/capture.py.


def _control_dir():
    """The directory of this user's control sockets."""
    cdef char buf[256]
    _net_check(lkl_control_dir(buf, sizeof(buf)), "control directory")
    return _os.fsdecode(buf)


def _control_start(str name):
    """Serve the kernel as ``name``; returns the socket path."""
    cdef bytes b = name.encode()
    cdef const char *c = b
    cdef int err
    with nogil:
        err = lkl_control_start(c)
    if err < 0:
        raise OSError(-err, f"cannot serve control socket {name!r}: {_os.strerror(-err)}")
    return _os.fsdecode(lkl_control_path())


def _control_stop():
    """Stop serving (joins the server's threads; idempotent)."""
    with nogil:
        lkl_control_stop()


def _control_path():
    """The control socket path served, or ""."""
    return _os.fsdecode(lkl_control_path())


def _control_add_netdev(_NetDev nd):
    _net_check(lkl_control_add_netdev(nd._get()), "control: register device")


def _control_del_netdev(_NetDev nd):
    if nd.dev != NULL:
        lkl_control_del_netdev(nd.dev)


def _control_stats():
    """The server's counters, as a dict."""
    cdef lkl_control_stats st
    lkl_control_get_stats(&st)
    return {"clients": st.clients, "accepted": st.accepted, "refused": st.refused,
            "requests": st.requests, "malformed": st.malformed, "errors": st.errors,
            "open_fds": st.open_fds}


cdef class _Capture:
    """A running capture (lkl_capture) on one device, writing to an fd it owns."""
    cdef lkl_capture *cap
    cdef object netdev      # keeps the device referenced while capturing

    def __cinit__(self):
        self.cap = NULL

    def __dealloc__(self):
        if self.cap != NULL:
            with nogil:
                lkl_capture_stop(self.cap, NULL)
            self.cap = NULL

    def start(self, _NetDev nd, int fd, unsigned int snaplen, uint64_t count, size_t ring):
        cdef lkl_netdev *d = nd._get()
        cdef int err
        with nogil:
            err = lkl_capture_start(d, fd, snaplen, count, ring, &self.cap)
        if err < 0:
            self.cap = NULL
            raise OSError(-err, f"cannot start the capture: {_os.strerror(-err)}")
        self.netdev = nd

    def stats(self):
        cdef lkl_capture_stats st
        if self.cap == NULL:
            raise ValueError("the capture was stopped")
        lkl_capture_get_stats(self.cap, &st)
        return {"frames": st.frames, "bytes": st.bytes, "dropped": st.dropped,
                "done": bool(st.done)}

    def wait(self, int timeout_ms):
        cdef int done
        if self.cap == NULL:
            return True
        with nogil:
            done = lkl_capture_wait(self.cap, timeout_ms)
        return bool(done)

    def stop(self):
        """Stop; returns the final counters (None if already stopped)."""
        cdef int err
        cdef lkl_capture *cap = self.cap
        if cap == NULL:
            return None
        cdef lkl_capture_stats st
        self.cap = NULL
        with nogil:
            err = lkl_capture_stop(cap, &st)
        self.netdev = None
        if err < 0:
            raise OSError(-err, f"capture: writing the file failed: {_os.strerror(-err)}")
        # Counted once detached: exactly the frames the file holds.
        return {"frames": st.frames, "bytes": st.bytes, "dropped": st.dropped,
                "done": bool(st.done)}

# The proxy's byte mover (lkl/_relay.c): each direction of a relayed
# connection is a C loop run without the GIL; lkl/proxy/relay.py drives it.

cdef extern from "_relay.h" nogil:
    enum:
        RELAY_UP
        RELAY_DOWN
        RELAY_EOF
        RELAY_SRC_RESET
        RELAY_DST_RESET
        RELAY_IDLE
        RELAY_STOPPED
        RELAY_ERROR

    struct relay:
        int kfd
        int hfd
        int idle_ms
        size_t bufsize

    int relay_setup(relay *r)
    int relay_run(relay *r, int dir, int *err)
    uint64_t relay_bytes(relay *r, int dir)
    void relay_stop(relay *r)


_RELAY_ENDS = ("eof", "source-reset", "destination-reset", "idle", "stopped", "error")


cdef class _Relay:
    """The two directions between kernel fd ``kfd`` and host fd ``hfd``.

    The caller keeps both sockets open until both ``run`` calls returned.
    ``run(0)`` moves kernel -> host, ``run(1)`` host -> kernel; each
    returns ``(end, errno)`` with ``end`` one of ``_RELAY_ENDS``.
    """
    cdef relay r

    def __cinit__(self, int kfd, int hfd, double idle_timeout=0.0, int bufsize=65536):
        cdef int err
        if bufsize < 1:
            raise ValueError("bufsize must be positive")
        memset(&self.r, 0, sizeof(self.r))
        self.r.kfd = kfd
        self.r.hfd = hfd
        self.r.idle_ms = <int>(idle_timeout * 1000) if idle_timeout > 0 else 0
        self.r.bufsize = bufsize
        with nogil:
            err = relay_setup(&self.r)
        if err < 0:
            raise OSError(-err, _os.strerror(-err))

    def run(self, int direction):
        cdef int end, err = 0
        if direction not in (RELAY_UP, RELAY_DOWN):
            raise ValueError("direction must be 0 (up) or 1 (down)")
        with nogil:
            end = relay_run(&self.r, direction, &err)
        return _RELAY_ENDS[end], err

    def stop(self):
        relay_stop(&self.r)

    @property
    def bytes_up(self):
        return relay_bytes(&self.r, RELAY_UP)

    @property
    def bytes_down(self):
        return relay_bytes(&self.r, RELAY_DOWN)

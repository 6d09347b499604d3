# select() and poll() over kernel sockets, through the kernel's ppoll.
#
# They take lkl.Socket objects (anything with a ``kfd`` attribute) or kernel
# fd numbers, never host fds.  Long waits return to Python every _SLICE
# seconds so that signal handlers (KeyboardInterrupt) run.

# What select() calls readable, writable and exceptional (as Linux does).
cdef short _SEL_IN = LKL_POLLIN | LKL_POLLHUP | LKL_POLLERR
cdef short _SEL_OUT = LKL_POLLOUT | LKL_POLLERR
cdef short _SEL_EX = LKL_POLLPRI


cdef int _kfd_of(object obj) except -1:
    cdef object kfd
    if isinstance(obj, int) and not isinstance(obj, bool):
        kfd = obj
    else:
        kfd = getattr(obj, "kfd", None)
        if kfd is None:
            raise TypeError("argument must be a kernel fd (int) or have a 'kfd' attribute")
    if not 0 <= kfd < 2**31:
        raise ValueError(f"kernel file descriptor cannot be a negative integer ({kfd})"
                         if kfd < 0 else "kernel file descriptor out of range")
    return kfd


cdef int _ppoll(lkl_pollfd *fds, Py_ssize_t n, double deadline) except -1:
    """ppoll ``fds`` until ``deadline`` (monotonic seconds; < 0: for ever)
    in slices that run signal handlers; return how many have events (0 at
    the deadline, after one last look).  Every wait of the package on
    kernel fds is this one (select, poll, the socket calls' waits)."""
    cdef lkl__kernel_timespec ts
    cdef long params[6]
    cdef double wait
    cdef long ret
    while True:
        wait = _SLICE
        if deadline >= 0:
            wait = deadline - _now()
            if wait < 0:
                wait = 0
            if wait > _SLICE:
                wait = _SLICE
        ts.tv_sec = <long long>wait
        ts.tv_nsec = <long long>((wait - ts.tv_sec) * 1e9)
        params[0] = <long>fds
        params[1] = n
        params[2] = <long>&ts
        params[3] = 0
        params[4] = 8
        params[5] = 0
        with nogil:
            ret = glue_syscall(LKL__NR_ppoll, params)
        if ret > 0:
            return <int>ret
        if ret < 0 and ret != -LKL_EINTR:
            _raise_errno(ret)
        PyErr_CheckSignals()
        if deadline >= 0 and _now() >= deadline:
            return 0


def select(rlist, wlist, xlist, timeout=None):
    """select(rlist, wlist, xlist, timeout=None) -> (r, w, x)

    Like select.select() over lkl sockets (or kernel fd numbers): wait until
    some are readable, writable or have an exceptional condition (urgent
    data), or ``timeout`` seconds pass.  Returns the ready subsets of the
    three lists.  The GIL is released while waiting.
    """
    cdef list r = list(rlist), w = list(wlist), x = list(xlist)
    cdef dict index = {}
    cdef Py_ssize_t n, i
    cdef lkl_pollfd *fds = NULL
    cdef double t = -1.0
    cdef short ev
    if timeout is not None:
        t = _seconds(timeout)
    for objs, ev in ((r, _SEL_IN), (w, _SEL_OUT), (x, _SEL_EX)):
        for obj in objs:
            kfd = _kfd_of(obj)
            index[kfd] = index.get(kfd, 0) | ev
    n = len(index)
    fds = <lkl_pollfd *>malloc(max(n, 1) * sizeof(lkl_pollfd))
    if fds == NULL:
        raise MemoryError()
    try:
        i = 0
        for kfd, ev in index.items():
            fds[i].fd = kfd
            fds[i].events = ev
            fds[i].revents = 0
            i += 1
        _ppoll(fds, n, _now() + t if t >= 0 else -1.0)
        for i in range(n):
            if fds[i].revents & LKL_POLLNVAL:
                raise OSError(_errno.EBADF, _os.strerror(_errno.EBADF))
            index[fds[i].fd] = fds[i].revents
    finally:
        free(fds)
    return ([o for o in r if index[_kfd_of(o)] & _SEL_IN],
            [o for o in w if index[_kfd_of(o)] & _SEL_OUT],
            [o for o in x if index[_kfd_of(o)] & _SEL_EX])


cdef class Poll:
    """A poll object over kernel sockets, like select.poll(): register
    sockets (or kernel fd numbers) with POLL* masks, then poll(timeout_ms)
    returns [(kfd, revents)]."""

    cdef dict _fds

    def __cinit__(self):
        self._fds = {}

    def register(self, fd, eventmask=LKL_POLLIN | LKL_POLLPRI | LKL_POLLOUT):
        """Watch ``fd`` (a socket or kernel fd) for the events in ``eventmask``."""
        self._fds[_kfd_of(fd)] = <unsigned short>eventmask

    def modify(self, fd, eventmask):
        """Change the events watched for a registered ``fd``."""
        cdef int kfd = _kfd_of(fd)
        if kfd not in self._fds:
            raise FileNotFoundError(_errno.ENOENT, _os.strerror(_errno.ENOENT))
        self._fds[kfd] = <unsigned short>eventmask

    def unregister(self, fd):
        """Stop watching ``fd``; KeyError if it was not registered."""
        del self._fds[_kfd_of(fd)]

    def poll(self, timeout=None):
        """Wait up to ``timeout`` milliseconds (None or negative: for ever);
        return [(kfd, revents)] for the fds with events."""
        cdef Py_ssize_t n = len(self._fds), i
        cdef lkl_pollfd *fds
        cdef double t = -1.0
        cdef list out = []
        if timeout is not None:
            if isinstance(timeout, float) and timeout != timeout:
                raise ValueError("Invalid value NaN (not a number)")
            t = float(timeout)
            t = -1.0 if t < 0 else t / 1000.0
        fds = <lkl_pollfd *>malloc(max(n, 1) * sizeof(lkl_pollfd))
        if fds == NULL:
            raise MemoryError()
        try:
            i = 0
            for kfd, ev in self._fds.items():
                fds[i].fd = kfd
                fds[i].events = <short>ev
                fds[i].revents = 0
                i += 1
            _ppoll(fds, n, _now() + t if t >= 0 else -1.0)
            for i in range(n):
                if fds[i].revents:
                    out.append((fds[i].fd, <unsigned short>fds[i].revents))
        finally:
            free(fds)
        return out


def poll():
    """A new poll object over kernel sockets (see Poll)."""
    return Poll()

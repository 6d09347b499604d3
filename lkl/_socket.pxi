# The socket type's kernel calls.  lkl.Socket (lkl/_socket.py) adds the
# pure-Python parts: close with makefile references, makefile, accept's
# wrapping, repr and the context manager.
#
# Timeouts work as in the standard library: with a timeout of None the
# kernel socket blocks and each call blocks in the kernel (but on the
# main thread accept, recv*, sendall and connect wait in slices, so that
# Ctrl-C and other signal handlers run: see _main_blocking); with 0 the
# kernel socket is non-blocking and a call that would block raises
# BlockingIOError; with a positive timeout the kernel socket is
# non-blocking and a call that would block waits in the kernel's ppoll,
# raising TimeoutError("timed out") at the deadline.  The GIL is released
# around every kernel call.

cdef enum:
    _OP_OTHER = 0
    _OP_READ = 1
    _OP_WRITE = 2

# Waits with a deadline return to Python this often to run signal handlers.
cdef double _SLICE = 0.25
# The deadline of a wait that only signals end.
cdef double _FOREVER = 1e300
# Python runs signal handlers on this thread only.
cdef unsigned long _main_ident = _threading.main_thread().ident

cdef short _READ_EVENTS = LKL_POLLIN | LKL_POLLERR | LKL_POLLHUP | LKL_POLLRDHUP
cdef short _WRITE_EVENTS = LKL_POLLOUT | LKL_POLLERR | LKL_POLLHUP


cdef int _wait_ready(int kfd, short events, double deadline) except -1:
    """Wait until kernel fd ``kfd`` has one of ``events``; raise
    TimeoutError at ``deadline`` (monotonic seconds; < 0: never)."""
    cdef lkl_pollfd pfd
    pfd.fd = kfd
    pfd.events = events
    pfd.revents = 0
    if _ppoll(&pfd, 1, deadline) == 0:
        raise TimeoutError("timed out")
    return 0


cdef long _connect_on_helper(int kfd, const char *sa, int salen) except? -1:
    """A blocking connect run on a helper thread while this thread waits
    for it in slices, running signal handlers; returns its result.  If a
    handler raises, the connection goes on in the kernel (as after an
    interrupted connect(2)) and the exception propagates."""
    cdef glue_connect *c = NULL
    cdef long ret = 0
    cdef int done = 0
    cdef int err = glue_connect_start(kfd, sa, salen, &c)
    if err < 0:
        _raise_errno(err)
    try:
        while not done:
            with nogil:
                done = glue_connect_wait(c, _SLICE, &ret)
            if not done:
                PyErr_CheckSignals()
    finally:
        glue_connect_put(c)
    return ret


cdef double _seconds(object value) except? -2.0:
    """A timeout in seconds; -1.0 for None."""
    cdef double t
    if value is None:
        return -1.0
    if isinstance(value, (str, bytes, bytearray)):
        raise TypeError(f"'{type(value).__name__}' object cannot be interpreted as an integer or float")
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"'{type(value).__name__}' object cannot be interpreted as an integer or float") from None
    if t != t:
        raise ValueError("Invalid value NaN (not a number)")
    if t < 0:
        raise ValueError("Timeout value out of range")
    if t == _math.inf:
        raise OverflowError("timeout doesn't fit into C timeval")
    return t


cdef object _MISSING = object()


cdef int _writable_buffer(object obj, Py_buffer *view, str what) except -1:
    """Get a writable buffer, raising TypeError like the stdlib for others."""
    try:
        PyObject_GetBuffer(obj, view, PyBUF_WRITABLE)
    except (BufferError, TypeError):
        raise TypeError(f"{what}() argument 'buffer' must be read-write bytes-like "
                        f"object, not {type(obj).__name__}") from None
    return 0


cdef Py_ssize_t _cmsg_align(Py_ssize_t n) noexcept:
    return (n + sizeof(size_t) - 1) & ~(<Py_ssize_t>sizeof(size_t) - 1)


cdef class _SocketBase:
    """A kernel socket: the calls that reach the kernel (see lkl.Socket)."""

    cdef int _kfd
    cdef int _family
    cdef int _type
    cdef int _proto
    cdef double _timeout            # seconds; < 0 for None
    cdef bint _knonblock            # O_NONBLOCK set on the kernel socket
    cdef int _wslot                 # readiness watch, -1: none yet
    cdef unsigned _wgen
    cdef int _hostfd                # the watch's host endpoint (fileno())
    cdef object __weakref__

    def __cinit__(self, *args, **kwargs):
        self._kfd = -1
        self._timeout = -1.0
        self._wslot = -1
        self._hostfd = -1

    def __init__(self, int family=-1, int type=-1, int proto=-1, kfd=None):
        cdef long params[6]
        cdef long ret
        cdef int fd, flags
        if self._kfd >= 0:
            raise RuntimeError("socket already initialised")
        if kfd is None:
            family = LKL_AF_INET if family == -1 else family
            type = LKL_SOCK_STREAM if type == -1 else type
            proto = 0 if proto == -1 else proto
            params[0] = family
            params[1] = type | LKL_SOCK_CLOEXEC
            params[2] = proto
            with nogil:
                ret = glue_syscall(LKL__NR_socket, params)
            if ret < 0:
                _raise_errno(ret)
            self._kfd = <int>ret
            self._knonblock = (type & LKL_SOCK_NONBLOCK) != 0
        else:
            if isinstance(kfd, bool) or not isinstance(kfd, int):
                raise TypeError("kfd must be an int")
            if not 0 <= kfd < 2**31:
                raise ValueError("negative file descriptor" if kfd < 0 else "kfd out of range")
            fd = kfd
            if family == -1:
                family = _getsockopt_int(fd, LKL_SOL_SOCKET, constants["SO_DOMAIN"])
            if type == -1:
                type = _getsockopt_int(fd, LKL_SOL_SOCKET, LKL_SO_TYPE)
            if proto == -1:
                proto = _getsockopt_int(fd, LKL_SOL_SOCKET, constants["SO_PROTOCOL"])
            flags = _fcntl(fd, LKL_F_GETFL, 0)
            self._kfd = fd
            self._knonblock = (flags & LKL_O_NONBLOCK) != 0
        self._family = family
        self._type = type & ~(LKL_SOCK_NONBLOCK | LKL_SOCK_CLOEXEC)
        self._proto = proto
        if type & LKL_SOCK_NONBLOCK:
            self._set_timeout(0.0)
        elif kfd is None or _hostsocket.getdefaulttimeout() is not None:
            self._set_timeout(_seconds(_hostsocket.getdefaulttimeout()))
        else:
            # As the standard library: a wrapped fd keeps its O_NONBLOCK
            # (it is shared with every dup of it).
            self._timeout = -1.0

    def __dealloc__(self):
        cdef long params[6]
        if self._wslot >= 0:
            glue_watch_del(self._wslot, self._wgen)
        if self._kfd >= 0 and lkl_is_running() and not glue_forked():
            params[0] = self._kfd
            glue_syscall(LKL__NR_close, params)

    def __reduce_ex__(self, protocol):
        raise TypeError(f"cannot pickle {type(self).__name__!r} object")

    # ---- state -------------------------------------------------------------

    @property
    def family(self):
        """The address family (the kernel's AF_* value)."""
        return self._family

    @property
    def type(self):
        """The socket type (SOCK_*; without SOCK_NONBLOCK and SOCK_CLOEXEC)."""
        return self._type

    @property
    def proto(self):
        """The protocol number (0 for the family's default)."""
        return self._proto

    @property
    def kfd(self):
        """The kernel's file descriptor number (-1 once closed)."""
        return self._kfd

    @property
    def timeout(self):
        """The timeout in seconds (None: blocking), as gettimeout()."""
        return None if self._timeout < 0 else self._timeout

    cdef int _set_timeout(self, double t) except -1:
        cdef bint nonblock = t >= 0
        cdef int flags
        if self._kfd >= 0 and nonblock != self._knonblock:
            flags = _fcntl(self._kfd, LKL_F_GETFL, 0)
            flags = (flags | LKL_O_NONBLOCK) if nonblock else (flags & ~LKL_O_NONBLOCK)
            _fcntl(self._kfd, LKL_F_SETFL, flags)
            self._knonblock = nonblock
        self._timeout = t
        return 0

    def settimeout(self, value):
        """Set the timeout of blocking calls: None (block), 0.0 (never block:
        BlockingIOError) or seconds (then TimeoutError)."""
        self._check()
        self._set_timeout(_seconds(value))

    def gettimeout(self):
        """The timeout in seconds, or None for a blocking socket."""
        return None if self._timeout < 0 else self._timeout

    def setblocking(self, flag):
        """setblocking(True) is settimeout(None); setblocking(False) is
        settimeout(0.0)."""
        self._check()
        self._set_timeout(-1.0 if flag else 0.0)

    def getblocking(self):
        """True unless the timeout is 0.0."""
        return self._timeout != 0.0

    cdef int _check(self) except -1:
        if self._kfd < 0:
            raise _ebadf()
        return 0

    cdef bint _main_blocking(self):
        """A blocking socket used from the main thread, where Python runs
        signal handlers: its waits go in slices (see _call)."""
        return self._timeout < 0 and PyThread_get_thread_ident() == _main_ident

    cdef double _deadline(self):
        return _now() + self._timeout if self._timeout > 0 else -1.0

    # ---- the call loop -----------------------------------------------------

    cdef long _call(self, long nr, long *params, short events, int op,
                    double deadline) except -1:
        """Run socket call ``nr`` (params[0] is filled with the kfd): retry
        on EINTR, wait for ``events`` up to ``deadline`` on EAGAIN, keep the
        readiness endpoint true, raise on error."""
        cdef long ret
        cdef unsigned seq = 0
        cdef bint drained, nowait
        if self._kfd < 0:
            raise _ebadf()
        params[0] = self._kfd
        # A blocking socket with the caller's MSG_DONTWAIT: EAGAIN is the
        # answer, as with the standard library (no waiting in slices).
        nowait = ((nr == LKL__NR_recvfrom or nr == LKL__NR_lkl_recv_zerocopy)
                  and params[3] & LKL_MSG_DONTWAIT) or (
                  nr == LKL__NR_recvmsg and params[2] & LKL_MSG_DONTWAIT)
        if (deadline < 0 and op == _OP_READ and events and not nowait
                and self._main_blocking()):
            # A blocking read on the main thread: wait in slices that run
            # signal handlers (Ctrl-C) instead of blocking in the kernel.
            # recv* try first without blocking, accept waits first.
            deadline = _FOREVER
            if ((nr == LKL__NR_recvfrom or nr == LKL__NR_lkl_recv_zerocopy)
                    and not (params[3] & LKL_MSG_WAITALL)):
                params[3] |= LKL_MSG_DONTWAIT
            elif nr == LKL__NR_recvmsg and not (params[2] & LKL_MSG_WAITALL):
                params[2] |= LKL_MSG_DONTWAIT
            else:
                _wait_ready(params[0], events, deadline)
        while True:
            if op == _OP_READ and self._wslot >= 0:
                seq = glue_watch_seq(self._wslot, self._wgen)
            with nogil:
                ret = glue_syscall(nr, params)
            if ret >= 0:
                break
            if ret == -LKL_EINTR:
                PyErr_CheckSignals()
                continue
            if ret == -LKL_EAGAIN and deadline >= 0 and events:
                # Others may select on fileno() while this call waits.
                self._refresh()
                _wait_ready(params[0], events, deadline)
                continue
            break
        if op == _OP_READ and self._wslot >= 0:
            # A short stream read or EAGAIN drained it: no kernel call needed.
            drained = ret == -LKL_EAGAIN or (
                nr == LKL__NR_recvfrom and self._type == LKL_SOCK_STREAM
                and 0 < ret < params[2] and not (params[3] & LKL_MSG_PEEK))
            with nogil:
                glue_watch_settle(self._wslot, self._wgen, seq, drained)
        elif op != _OP_OTHER:
            self._refresh()
        if ret < 0:
            _raise_errno(ret)
        return ret

    # ---- host readiness ----------------------------------------------------

    cdef inline int _refresh(self) except -1:
        """After a call that consumed data or buffer space (or changed the
        state): make the host endpoint show the kernel socket's readiness."""
        if self._wslot >= 0:
            with nogil:
                glue_watch_refresh(self._wslot, self._wgen)
        return 0

    def fileno(self):
        """A host file descriptor that mirrors the kernel socket's readiness
        (-1 once closed): readable exactly while the kernel socket is
        readable (data, a pending connection, end of file), writable
        exactly while it is writable; an error or hang-up shows both, as
        select() reports them.  A connecting socket shows neither.

        It is one end of a host AF_UNIX socket pair, made on the first
        call (code that waits in the kernel never needs one).  The
        package's poller thread updates it on every kernel event, and every
        call on this socket that reads, writes, accepts, connects, listens
        or shuts down updates it before returning, so select, selectors and
        asyncio see no stale readiness.  Only the package may do I/O on it
        or close it; it closes with the socket.  Raises OSError (EIO) if
        the poller has stopped (see Kernel.log).
        """
        cdef int err, slot, fd
        cdef unsigned gen
        if self._kfd < 0:
            return -1
        err = glue_poller_error()
        if err:
            raise OSError(_errno.EIO, "the socket readiness poller stopped "
                          f"({_os.strerror(err)}); see Kernel.log")
        if self._wslot < 0:
            err = glue_watch_add(self._kfd, &slot, &gen, &fd)
            if err < 0:
                _raise_errno(err)
            self._wslot = slot
            self._wgen = gen
            self._hostfd = fd
        return self._hostfd

    def _rearm(self, bint read=True, bint write=False):
        """Recheck readiness now and show it on the host endpoint."""
        self._refresh()

    def _shown(self):
        """What the host endpoint shows now: (readable, writable), or None
        without one (for tests)."""
        cdef int shown = -1
        if self._wslot >= 0:
            shown = glue_watch_shown(self._wslot, self._wgen)
        if shown < 0:
            return None
        return bool(shown & GLUE_READ), bool(shown & GLUE_WRITE)

    # ---- closing -----------------------------------------------------------

    def _close_kfd(self):
        """Release the host eventfds and close the kernel socket.  Never
        raises: after a halt there is nothing left to close."""
        cdef long params[6]
        cdef int kfd = self._kfd
        self._kfd = -1
        if self._wslot >= 0:
            glue_watch_del(self._wslot, self._wgen)
            self._wslot = -1
            self._hostfd = -1
        if kfd >= 0 and lkl_is_running() and not glue_forked():
            params[0] = kfd
            with nogil:
                glue_syscall(LKL__NR_close, params)

    def detach(self):
        """Forget the kernel socket without closing it; return its kfd."""
        cdef int kfd = self._kfd
        if self._wslot >= 0:
            glue_watch_del(self._wslot, self._wgen)
            self._wslot = -1
            self._hostfd = -1
        self._kfd = -1
        return kfd

    # ---- addresses and options ---------------------------------------------

    def bind(self, address):
        """Bind to ``address``: ("1.2.3.4", port), (host, port, flowinfo,
        scope_id) for AF_INET6, or a path for AF_UNIX."""
        cdef char sa[ADDR_MAX]
        cdef long params[6]
        self._check()
        params[1] = <long>sa
        params[2] = _encode_addr(self._family, address, sa, "bind")
        self._call(LKL__NR_bind, params, 0, _OP_OTHER, -1.0)

    def listen(self, backlog=None):
        """Listen for connections; ``backlog`` defaults to min(SOMAXCONN, 128)."""
        cdef long params[6]
        cdef int n
        if backlog is None:
            n = min(constants["SOMAXCONN"], 128)
        else:
            n = max(<int>backlog, 0)
        params[1] = n
        self._call(LKL__NR_listen, params, 0, _OP_OTHER, -1.0)
        self._refresh()

    def _accept(self):
        """Accept a connection: (kfd, address).  lkl.Socket.accept wraps it."""
        cdef char sa[ADDR_MAX]
        cdef int salen = ADDR_MAX
        cdef long params[6]
        cdef long ret
        params[1] = <long>sa
        params[2] = <long>&salen
        params[3] = LKL_SOCK_CLOEXEC
        ret = self._call(LKL__NR_accept4, params, _READ_EVENTS, _OP_READ, self._deadline())
        return ret, _decode_addr(sa, salen)

    cdef int _connect(self, object address, bint raise_) except -1:
        """connect(); returns 0 or (if not raise_) the errno."""
        cdef char sa[ADDR_MAX]
        cdef long params[6]
        cdef long ret
        cdef int err
        cdef bint interruptible
        cdef double deadline
        if self._kfd < 0:
            raise _ebadf()
        params[0] = self._kfd
        params[1] = <long>sa
        params[2] = _encode_addr(self._family, address, sa, "connect")
        interruptible = self._main_blocking()
        if interruptible:
            # Main thread, blocking socket: wait in slices that run signal
            # handlers (Ctrl-C), the file description's flags untouched.
            ret = _connect_on_helper(self._kfd, sa, <int>params[2])
        else:
            with nogil:
                ret = glue_syscall(LKL__NR_connect, params)
        self._refresh()
        err = <int>-ret if ret < 0 else 0
        if err == LKL_EINTR:
            PyErr_CheckSignals()
        if ((err == LKL_EINPROGRESS and (self._timeout > 0 or interruptible))
                or (err == LKL_EINTR and self._timeout != 0)):
            # The connection goes on in the background: wait for it.
            deadline = _FOREVER if interruptible else self._deadline()
            try:
                _wait_ready(self._kfd, _WRITE_EVENTS, deadline)
            except TimeoutError:
                if raise_:
                    raise
                return LKL_EAGAIN
            err = _getsockopt_int(self._kfd, LKL_SOL_SOCKET, LKL_SO_ERROR)
            if err == LKL_EISCONN:
                err = 0
            self._refresh()
        if err and raise_:
            raise _errno_error(err)
        return err

    def connect(self, address):
        """Connect to ``address`` (see bind)."""
        self._connect(address, True)

    def connect_ex(self, address):
        """Like connect(), but return an errno (0 on success) instead of
        raising for errors of the connection itself."""
        return self._connect(address, False)

    def getsockname(self):
        """The socket's own address."""
        return self._name(LKL__NR_getsockname)

    def getpeername(self):
        """The address of the connected peer."""
        return self._name(LKL__NR_getpeername)

    cdef object _name(self, long nr):
        cdef char sa[ADDR_MAX]
        cdef int salen = ADDR_MAX
        cdef long params[6]
        memset(sa, 0, ADDR_MAX)
        params[1] = <long>sa
        params[2] = <long>&salen
        self._call(nr, params, 0, _OP_OTHER, -1.0)
        if self._family == LKL_AF_UNIX or salen > 0:
            return _decode_addr(sa, salen)
        return None

    def setsockopt(self, int level, int optname, value, optlen=None):
        """setsockopt(level, optname, value: int | buffer) or
        setsockopt(level, optname, None, optlen)."""
        cdef int flag
        cdef Py_buffer view
        cdef long params[6]
        params[1] = level
        params[2] = optname
        if optlen is not None:
            if value is not None:
                raise TypeError("setsockopt() takes value None when optlen is given")
            params[3] = 0
            params[4] = <int>optlen
            self._call(LKL__NR_setsockopt, params, 0, _OP_OTHER, -1.0)
            return
        if isinstance(value, int):
            flag = value
            params[3] = <long>&flag
            params[4] = sizeof(int)
            self._call(LKL__NR_setsockopt, params, 0, _OP_OTHER, -1.0)
            return
        PyObject_GetBuffer(value, &view, PyBUF_SIMPLE)
        try:
            params[3] = <long>view.buf
            params[4] = view.len
            self._call(LKL__NR_setsockopt, params, 0, _OP_OTHER, -1.0)
        finally:
            PyBuffer_Release(&view)

    def getsockopt(self, int level, int optname, int buflen=0):
        """getsockopt(level, optname) -> int, or
        getsockopt(level, optname, buflen) -> bytes (1 <= buflen <= 1024)."""
        cdef int flag = 0
        cdef int optlen = sizeof(int)
        cdef long params[6]
        cdef bytes buf
        params[1] = level
        params[2] = optname
        params[4] = <long>&optlen
        if buflen == 0:
            params[3] = <long>&flag
            self._call(LKL__NR_getsockopt, params, 0, _OP_OTHER, -1.0)
            return flag
        if buflen < 0 or buflen > 1024:
            raise OSError("getsockopt buflen out of range")
        buf = PyBytes_FromStringAndSize(NULL, buflen)
        memset(PyBytes_AS_STRING(buf), 0, buflen)
        optlen = buflen
        params[3] = <long>PyBytes_AS_STRING(buf)
        self._call(LKL__NR_getsockopt, params, 0, _OP_OTHER, -1.0)
        return buf[:optlen]

    def shutdown(self, int how):
        """Shut down reading (SHUT_RD), writing (SHUT_WR) or both (SHUT_RDWR)."""
        cdef long params[6]
        params[1] = how
        self._call(LKL__NR_shutdown, params, 0, _OP_OTHER, -1.0)
        self._refresh()

    def _dup_kfd(self):
        """A new kernel fd for the same socket (close-on-exec)."""
        self._check()
        return _fcntl(self._kfd, LKL_F_DUPFD_CLOEXEC, 0)

    # ---- sending -----------------------------------------------------------

    def send(self, data, int flags=0):
        """Send bytes from ``data`` (any buffer); return how many were sent."""
        cdef Py_buffer view
        cdef long params[6]
        cdef long ret
        self._check()
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            params[1] = <long>view.buf
            params[2] = view.len
            params[3] = flags
            params[4] = 0
            params[5] = 0
            ret = self._call(LKL__NR_sendto, params, _WRITE_EVENTS, _OP_WRITE, self._deadline())
        finally:
            PyBuffer_Release(&view)
        return ret

    def sendall(self, data, int flags=0):
        """Send all of ``data`` (any buffer, passed to the kernel in place).
        With a timeout, it bounds the whole call.  Returns None."""
        cdef Py_buffer view
        cdef long params[6]
        cdef Py_ssize_t done = 0
        cdef double deadline
        self._check()
        deadline = self._deadline()
        if self._main_blocking():
            # Interruptible on the main thread: send what fits, wait in slices.
            flags |= LKL_MSG_DONTWAIT
            deadline = _FOREVER
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            while True:
                params[1] = <long>(<char *>view.buf + done)
                params[2] = view.len - done
                params[3] = flags
                params[4] = 0
                params[5] = 0
                done += self._call(LKL__NR_sendto, params, _WRITE_EVENTS, _OP_WRITE, deadline)
                if done >= view.len:
                    break
        finally:
            PyBuffer_Release(&view)

    def sendto(self, data, flags_or_address, address=_MISSING):
        """sendto(data, address) or sendto(data, flags, address): send a
        datagram to ``address``; return the bytes sent."""
        cdef Py_buffer view
        cdef char sa[ADDR_MAX]
        cdef long params[6]
        cdef long ret
        cdef int flags = 0
        if address is _MISSING:
            address = flags_or_address
        else:
            flags = flags_or_address
        self._check()
        params[4] = <long>sa
        params[5] = _encode_addr(self._family, address, sa, "sendto")
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            params[1] = <long>view.buf
            params[2] = view.len
            params[3] = flags
            ret = self._call(LKL__NR_sendto, params, _WRITE_EVENTS, _OP_WRITE, self._deadline())
        finally:
            PyBuffer_Release(&view)
        return ret

    def sendmsg(self, buffers, ancdata=(), int flags=0, address=None):
        """Send the concatenation of ``buffers`` with ancillary data
        ``ancdata`` (an iterable of (level, type, data)) to ``address`` (or
        the peer).  Returns the bytes sent."""
        cdef list bufs = list(buffers)
        cdef list anc = [tuple(item) for item in ancdata]
        cdef Py_ssize_t nbuf = len(bufs), i, got = 0, space = 0, hdr, off
        cdef Py_buffer *views = NULL
        cdef lkl_iovec *iov = NULL
        cdef lkl_user_msghdr msg
        cdef char sa[ADDR_MAX]
        cdef bytearray control = None
        cdef char *cbuf
        cdef lkl_cmsghdr *cmsg
        cdef long params[6]
        cdef bytes payload
        self._check()
        memset(&msg, 0, sizeof(msg))
        if address is not None:
            msg.msg_name = sa
            msg.msg_namelen = <int>_encode_addr(self._family, address, sa, "sendmsg")
        hdr = _cmsg_align(sizeof(lkl_cmsghdr))
        for item in anc:
            if len(item) != 3:
                raise TypeError("ancillary data items must be (level, type, data)")
            space += hdr + _cmsg_align(len(memoryview(item[2]).cast("B")))
        if space:
            control = bytearray(space)
            cbuf = control
            off = 0
            for level, kind, data in anc:
                payload = bytes(memoryview(data).cast("B"))
                cmsg = <lkl_cmsghdr *>(cbuf + off)
                cmsg.cmsg_len = hdr + len(payload)
                cmsg.cmsg_level = level
                cmsg.cmsg_type = kind
                memcpy(cbuf + off + hdr, PyBytes_AS_STRING(payload), len(payload))
                off += hdr + _cmsg_align(len(payload))
            msg.msg_control = cbuf
            msg.msg_controllen = space
        views = <Py_buffer *>malloc(max(nbuf, 1) * sizeof(Py_buffer))
        iov = <lkl_iovec *>malloc(max(nbuf, 1) * sizeof(lkl_iovec))
        if views == NULL or iov == NULL:
            free(views)
            free(iov)
            raise MemoryError()
        try:
            for i in range(nbuf):
                PyObject_GetBuffer(bufs[i], &views[i], PyBUF_SIMPLE)
                got += 1
                iov[i].iov_base = views[i].buf
                iov[i].iov_len = views[i].len
            msg.msg_iov = iov
            msg.msg_iovlen = nbuf
            params[1] = <long>&msg
            params[2] = flags
            return self._call(LKL__NR_sendmsg, params, _WRITE_EVENTS, _OP_WRITE, self._deadline())
        finally:
            for i in range(got):
                PyBuffer_Release(&views[i])
            free(views)
            free(iov)

    # ---- receiving ---------------------------------------------------------

    def recv(self, Py_ssize_t bufsize, int flags=0):
        """Receive up to ``bufsize`` bytes (b"" at end of stream)."""
        cdef long params[6]
        cdef long ret
        cdef bytes buf
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        self._check()
        buf = PyBytes_FromStringAndSize(NULL, bufsize)
        params[1] = <long>PyBytes_AS_STRING(buf)
        params[2] = bufsize
        params[3] = flags
        params[4] = 0
        params[5] = 0
        ret = self._call(LKL__NR_recvfrom, params, _READ_EVENTS, _OP_READ, self._deadline())
        if ret == bufsize:
            return buf
        return buf[:ret]

    def recv_into(self, buffer, Py_ssize_t nbytes=0, int flags=0):
        """Receive up to ``nbytes`` (default: its size) bytes straight into
        the writable ``buffer``; return how many."""
        cdef Py_buffer view
        cdef long params[6]
        cdef long ret
        if nbytes < 0:
            raise ValueError("negative buffersize in recv_into")
        self._check()
        _writable_buffer(buffer, &view, "recv_into")
        try:
            if nbytes == 0:
                nbytes = view.len
            elif nbytes > view.len:
                raise ValueError("buffer too small for requested bytes")
            params[1] = <long>view.buf
            params[2] = nbytes
            params[3] = flags
            params[4] = 0
            params[5] = 0
            ret = self._call(LKL__NR_recvfrom, params, _READ_EVENTS, _OP_READ, self._deadline())
        finally:
            PyBuffer_Release(&view)
        return ret

    def recv_zerocopy(self, Py_ssize_t max_bytes, int flags=0, int max_segments=64):
        """Receive up to ``max_bytes`` of a TCP stream without copying them:
        a ``ZeroCopyRecv`` whose read-only memoryviews (``.views``) are the
        kernel's own skb data, held until ``.release()`` (or a ``with``
        block ends).  At most ``max_segments`` views (1 to
        ZC_MAX_SEGMENTS): fewer bytes when they run out.  Empty (``len()``
        0) at end of stream.  Blocks, times out and raises as ``recv``
        does (BlockingIOError, TimeoutError); ``flags`` may only be 0 or
        MSG_DONTWAIT; OSError(EINVAL) for a socket that is not TCP.

        Held data stays charged to the socket's receive buffer: the window
        the peer sees shrinks, and a sender stalls once a buffer's worth
        is held, until it is released.  So release promptly; to hold data
        while asking for more, give the socket a receive buffer larger
        than what is held plus one segment (SO_RCVBUF or SO_RCVBUFFORCE;
        loopback segments are 64 KiB), or the call waits for data the
        held views keep out.  Urgent data is skipped, as by recv.
        """
        cdef lkl_zc_seg segs[LKL_ZC_MAX_SEGS]
        cdef unsigned long token = 0
        cdef long params[6]
        cdef long ret
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        if not 1 <= max_segments <= LKL_ZC_MAX_SEGS:
            raise ValueError(f"max_segments must be 1 to {LKL_ZC_MAX_SEGS}")
        self._check()
        params[1] = <long>segs
        params[2] = max_bytes
        params[3] = flags
        params[4] = max_segments
        params[5] = <long>&token
        ret = self._call(LKL__NR_lkl_recv_zerocopy, params, _READ_EVENTS, _OP_READ,
                         self._deadline())
        return _zc_new(token if ret > 0 else 0, segs, ret)

    def recvfrom(self, Py_ssize_t bufsize, int flags=0):
        """Receive up to ``bufsize`` bytes: (data, sender address or None)."""
        cdef char sa[ADDR_MAX]
        cdef int salen = ADDR_MAX
        cdef long params[6]
        cdef long ret
        cdef bytes buf
        if bufsize < 0:
            raise ValueError("negative buffersize in recvfrom")
        self._check()
        memset(sa, 0, ADDR_MAX)
        buf = PyBytes_FromStringAndSize(NULL, bufsize)
        params[1] = <long>PyBytes_AS_STRING(buf)
        params[2] = bufsize
        params[3] = flags
        params[4] = <long>sa
        params[5] = <long>&salen
        ret = self._call(LKL__NR_recvfrom, params, _READ_EVENTS, _OP_READ, self._deadline())
        return (buf if ret == bufsize else buf[:ret]), self._peer(sa, salen)

    def recvfrom_into(self, buffer, Py_ssize_t nbytes=0, int flags=0):
        """Like recvfrom(), into ``buffer``: (nbytes, address or None)."""
        cdef Py_buffer view
        cdef char sa[ADDR_MAX]
        cdef int salen = ADDR_MAX
        cdef long params[6]
        cdef long ret
        if nbytes < 0:
            raise ValueError("negative buffersize in recvfrom_into")
        self._check()
        memset(sa, 0, ADDR_MAX)
        _writable_buffer(buffer, &view, "recvfrom_into")
        try:
            if nbytes == 0:
                nbytes = view.len
            elif nbytes > view.len:
                raise ValueError("nbytes is greater than the length of the buffer")
            params[1] = <long>view.buf
            params[2] = nbytes
            params[3] = flags
            params[4] = <long>sa
            params[5] = <long>&salen
            ret = self._call(LKL__NR_recvfrom, params, _READ_EVENTS, _OP_READ, self._deadline())
        finally:
            PyBuffer_Release(&view)
        return ret, self._peer(sa, salen)

    cdef object _peer(self, const char *sa, int salen):
        if salen <= 0 and self._family != LKL_AF_UNIX:
            return None
        return _decode_addr(sa, salen)

    def recvmsg(self, Py_ssize_t bufsize, Py_ssize_t ancbufsize=0, int flags=0):
        """Receive up to ``bufsize`` bytes and up to ``ancbufsize`` bytes of
        ancillary data: (data, [(level, type, data)], msg_flags, address)."""
        cdef char sa[ADDR_MAX]
        cdef lkl_user_msghdr msg
        cdef lkl_iovec iov
        cdef long params[6]
        cdef long ret
        cdef bytes buf
        cdef char *control = NULL
        cdef Py_ssize_t off, hdr, clen, dlen
        cdef lkl_cmsghdr *cmsg
        cdef list anc = []
        if bufsize < 0:
            raise ValueError("negative buffer size in recvmsg()")
        if ancbufsize < 0:
            raise ValueError("negative buffer size in recvmsg()")
        self._check()
        memset(sa, 0, ADDR_MAX)
        memset(&msg, 0, sizeof(msg))
        buf = PyBytes_FromStringAndSize(NULL, bufsize)
        if ancbufsize:
            control = <char *>malloc(ancbufsize)
            if control == NULL:
                raise MemoryError()
            memset(control, 0, ancbufsize)
        try:
            iov.iov_base = PyBytes_AS_STRING(buf)
            iov.iov_len = bufsize
            msg.msg_name = sa
            msg.msg_namelen = ADDR_MAX
            msg.msg_iov = &iov
            msg.msg_iovlen = 1
            msg.msg_control = control
            msg.msg_controllen = ancbufsize
            params[1] = <long>&msg
            params[2] = flags
            ret = self._call(LKL__NR_recvmsg, params, _READ_EVENTS, _OP_READ, self._deadline())
            hdr = _cmsg_align(sizeof(lkl_cmsghdr))
            off = 0
            clen = msg.msg_controllen
            while control != NULL and off + <Py_ssize_t>sizeof(lkl_cmsghdr) <= clen:
                cmsg = <lkl_cmsghdr *>(control + off)
                if <Py_ssize_t>cmsg.cmsg_len < <Py_ssize_t>sizeof(lkl_cmsghdr):
                    break
                dlen = min(<Py_ssize_t>cmsg.cmsg_len, clen - off) - hdr
                anc.append((cmsg.cmsg_level, cmsg.cmsg_type,
                            (control + off + hdr)[:max(dlen, 0)]))
                off += _cmsg_align(cmsg.cmsg_len)
        finally:
            free(control)
        return ((buf if ret == bufsize else buf[:ret]), anc, msg.msg_flags,
                self._peer(sa, msg.msg_namelen))


cdef int _getsockopt_int(int kfd, int level, int optname) except? -1:
    cdef int value = 0
    cdef int optlen = sizeof(int)
    cdef long params[6]
    cdef long ret
    params[0] = kfd
    params[1] = level
    params[2] = optname
    params[3] = <long>&value
    params[4] = <long>&optlen
    params[5] = 0
    with nogil:
        ret = glue_syscall(LKL__NR_getsockopt, params)
    if ret < 0:
        _raise_errno(ret)
    return value


cdef int _fcntl(int kfd, int cmd, long arg) except? -1:
    cdef long params[6]
    cdef long ret
    params[0] = kfd
    params[1] = cmd
    params[2] = arg
    params[3] = params[4] = params[5] = 0
    with nogil:
        ret = glue_syscall(LKL__NR_fcntl, params)
    if ret < 0:
        _raise_errno(ret)
    return <int>ret


def poller_error():
    """0 while the readiness poller runs, else the errno it stopped with
    (then fileno() raises OSError; a line in Kernel.log says why)."""
    return glue_poller_error()


def poller_failures():
    """How many times the readiness poller stopped on an error."""
    return glue_poller_failures()


def _poller_break():
    """Close the poller's kernel epoll fd, so that its next wait fails
    (tests of the failure path only)."""
    cdef int err = glue_poller_break()
    if err < 0:
        _raise_errno(err)

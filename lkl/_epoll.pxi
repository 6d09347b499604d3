# Waiting in the kernel: the engine of lkl.asyncio.EventLoop.
#
# _KernelEpoll is a kernel epoll instance that the event loop's thread
# blocks in (epoll_pwait2 with the GIL released): in direct mode the wait
# runs on the calling thread itself, so a readiness event costs no host
# thread hop.  Two kernel eventfds live in it: WAKE, set by
# call_soon_threadsafe from any thread, and HOST, set by _HostWaiter.
#
# _HostWaiter is the host side: a thread that waits, without the GIL, on
# the loop's host epoll fd (the self-pipe, the signal wakeup fd,
# subprocess pipes, the user's host sockets) and sets HOST when one is
# ready; then it waits until the loop asks it to watch again (resume()),
# which the loop does when it comes back to wait, after it ran the
# callbacks of what was ready (so a level-triggered fd does not wake it
# twice).  Nothing else of the package's readiness machinery (the
# eventfd watches and their poller, _glue.c) is involved.

cdef extern from "lkl/linux/eventpoll.h":
    struct lkl_epoll_event:
        unsigned int events
        uint64_t data
    enum:
        LKL_EPOLL_CTL_ADD
        LKL_EPOLL_CTL_DEL
        LKL_EPOLL_CTL_MOD
        LKL_EPOLL_CLOEXEC

cdef extern from "lkl/asm/unistd.h":
    enum:
        LKL__NR_epoll_create1
        LKL__NR_epoll_ctl
        LKL__NR_epoll_pwait2
        LKL__NR_eventfd2

cdef extern from "lkl/linux/fcntl.h":
    enum:
        LKL_O_CLOEXEC

# The host's own calls, renamed so they cannot shadow the module's names.
cdef extern from "<poll.h>" nogil:
    struct host_pollfd "pollfd":
        int fd
        short events
        short revents
    int host_poll "poll"(host_pollfd *fds, unsigned long nfds, int timeout)
    enum:
        HOST_POLLIN "POLLIN"

cdef extern from "<sys/eventfd.h>" nogil:
    int host_eventfd "eventfd"(unsigned int initval, int flags)
    enum:
        HOST_EFD_NONBLOCK "EFD_NONBLOCK"
        HOST_EFD_CLOEXEC "EFD_CLOEXEC"

cdef extern from "<unistd.h>" nogil:
    ssize_t host_read "read"(int fd, void *buf, size_t count)
    ssize_t host_write "write"(int fd, const void *buf, size_t count)
    int host_close "close"(int fd)

cdef extern from "<errno.h>" nogil:
    int host_errno "errno"
    enum:
        HOST_EINTR "EINTR"

#: Event data of the two eventfds (kernel fds are below 2**31).
EPOLL_WAKE_TOKEN = 1 << 40
EPOLL_HOST_TOKEN = (1 << 40) + 1
cdef uint64_t _WAKE = 1ULL << 40
cdef uint64_t _HOST = (1ULL << 40) + 1


cdef long _sys(long nr, long a, long b, long c, long d, long e, long f) noexcept nogil:
    cdef long params[6]
    params[0] = a
    params[1] = b
    params[2] = c
    params[3] = d
    params[4] = e
    params[5] = f
    return glue_syscall(nr, params)


cdef long _kernel_efd_set(int efd) noexcept nogil:
    cdef uint64_t one = 1
    return _sys(LKL__NR_write, efd, <long>&one, 8, 0, 0, 0)


cdef class _KernelEpoll:
    """A kernel epoll instance with a wake-up eventfd (see lkl/_epoll.pxi).

    ``ctl(op, kfd, events)`` adds, modifies or deletes kernel fd ``kfd``
    (its events come back with the kfd as data); ``wait(timeout)`` blocks
    in the kernel (GIL released) for up to ``timeout`` seconds (< 0:
    forever) and returns ``[(kfd or token, events), ...]``; ``wake()``
    (any thread) makes a wait return with EPOLL_WAKE_TOKEN.
    """

    cdef int _epfd
    cdef int _wake_efd
    cdef int _host_efd
    cdef lkl_epoll_event *_events
    cdef int _max

    def __cinit__(self, int maxevents=256):
        self._epfd = self._wake_efd = self._host_efd = -1
        self._events = NULL
        if maxevents < 1:
            raise ValueError("maxevents must be positive")
        self._max = maxevents
        self._events = <lkl_epoll_event *>malloc(maxevents * sizeof(lkl_epoll_event))
        if self._events == NULL:
            raise MemoryError()
        self._epfd = self._new_fd(LKL__NR_epoll_create1, LKL_EPOLL_CLOEXEC, 0)
        self._wake_efd = self._new_fd(LKL__NR_eventfd2, 0, LKL_O_NONBLOCK | LKL_O_CLOEXEC)
        self._host_efd = self._new_fd(LKL__NR_eventfd2, 0, LKL_O_NONBLOCK | LKL_O_CLOEXEC)
        self._add_token(self._wake_efd, _WAKE)
        self._add_token(self._host_efd, _HOST)

    cdef int _new_fd(self, long nr, long a, long b) except -1:
        cdef long ret
        with nogil:
            ret = _sys(nr, a, b, 0, 0, 0, 0)
        if ret < 0:
            self.close()
            _raise_errno(ret)
        return <int>ret

    cdef int _add_token(self, int efd, uint64_t token) except -1:
        cdef lkl_epoll_event ev
        cdef long ret
        ev.events = LKL_POLLIN
        ev.data = token
        ret = _sys(LKL__NR_epoll_ctl, self._epfd, LKL_EPOLL_CTL_ADD, efd, <long>&ev, 0, 0)
        if ret < 0:
            self.close()
            _raise_errno(ret)
        return 0

    def __dealloc__(self):
        self.close()
        free(self._events)
        self._events = NULL

    @property
    def host_efd(self):
        """The kernel eventfd _HostWaiter sets (EPOLL_HOST_TOKEN)."""
        return self._host_efd

    def ctl(self, int op, int kfd, unsigned int events):
        """epoll_ctl(op, kfd) with ``events`` (the kernel's EPOLL* bits)."""
        cdef lkl_epoll_event ev
        cdef long ret
        if self._epfd < 0:
            raise _ebadf()
        ev.events = events
        ev.data = <uint64_t>kfd
        with nogil:
            ret = _sys(LKL__NR_epoll_ctl, self._epfd, op, kfd, <long>&ev, 0, 0)
        if ret < 0:
            _raise_errno(ret)

    def wait(self, double timeout):
        """Wait up to ``timeout`` seconds (< 0: forever; 0: just look).
        The wake-up eventfds are read (cleared) when they are reported."""
        cdef lkl__kernel_timespec ts
        cdef long ret, tsp = 0
        cdef uint64_t value
        cdef int i
        cdef list out = []
        if self._epfd < 0:
            raise _ebadf()
        if timeout >= 0:
            ts.tv_sec = <long long>timeout
            ts.tv_nsec = <long long>((timeout - ts.tv_sec) * 1e9)
            tsp = <long>&ts
        with nogil:
            ret = _sys(LKL__NR_epoll_pwait2, self._epfd, <long>self._events,
                       self._max, tsp, 0, 8)
        if ret == -LKL_EINTR:
            return out
        if ret < 0:
            _raise_errno(ret)
        for i in range(ret):
            if self._events[i].data == _WAKE or self._events[i].data == _HOST:
                _sys(LKL__NR_read,
                     self._wake_efd if self._events[i].data == _WAKE else self._host_efd,
                     <long>&value, 8, 0, 0, 0)
            out.append((self._events[i].data, self._events[i].events))
        return out

    def wake(self):
        """Make the current or next wait() return (from any thread)."""
        cdef long ret
        if self._wake_efd < 0:
            raise _ebadf()
        with nogil:
            ret = _kernel_efd_set(self._wake_efd)
        if ret < 0 and ret != -LKL_EAGAIN:
            _raise_errno(ret)

    def close(self):
        """Close the kernel fds (harmless twice, or after a halt)."""
        cdef int fd
        for fd in (self._epfd, self._wake_efd, self._host_efd):
            if fd >= 0 and lkl_is_running() and not glue_forked():
                _sys(LKL__NR_close, fd, 0, 0, 0, 0, 0)
        self._epfd = self._wake_efd = self._host_efd = -1


cdef class _HostWaiter:
    """Watches a host fd (the loop's host epoll) from its own thread and
    sets a kernel eventfd when it is readable (see lkl/_epoll.pxi).

    ``run()`` is the thread's body; ``resume()`` lets it watch again after
    it reported; ``stop()`` ends run().
    """

    cdef int _hostfd
    cdef int _kefd
    cdef int _resume
    cdef int _stop

    def __cinit__(self, int hostfd, int kernel_efd):
        self._hostfd = hostfd
        self._kefd = kernel_efd
        self._resume = host_eventfd(0, HOST_EFD_NONBLOCK | HOST_EFD_CLOEXEC)
        self._stop = host_eventfd(0, HOST_EFD_NONBLOCK | HOST_EFD_CLOEXEC)
        if self._resume < 0 or self._stop < 0:
            err = host_errno
            self._close_fds()
            raise OSError(err, _os.strerror(err))

    cdef void _close_fds(self) noexcept:
        if self._resume >= 0:
            host_close(self._resume)
        if self._stop >= 0:
            host_close(self._stop)
        self._resume = self._stop = -1

    def __dealloc__(self):
        self._close_fds()

    def run(self):
        """Report readiness of the host fd until stop() (the GIL is free)."""
        cdef host_pollfd fds[2]
        cdef uint64_t value
        cdef int watching = 1
        cdef int n
        if self._stop < 0:
            return
        with nogil:
            while True:
                fds[0].fd = self._hostfd if watching else self._resume
                fds[0].events = HOST_POLLIN
                fds[0].revents = 0
                fds[1].fd = self._stop
                fds[1].events = HOST_POLLIN
                fds[1].revents = 0
                n = host_poll(fds, 2, -1)
                if n < 0:
                    if host_errno == HOST_EINTR:
                        continue
                    break
                if fds[1].revents:
                    break
                if not fds[0].revents:
                    continue
                if watching:
                    # After a halt the loop no longer waits in the kernel:
                    # it polls the host fds itself, so failing here is fine.
                    _kernel_efd_set(self._kefd)
                    watching = 0
                else:
                    host_read(self._resume, &value, 8)
                    watching = 1

    def resume(self):
        """Watch the host fd again (after it was reported)."""
        cdef uint64_t one = 1
        if self._resume >= 0:
            host_write(self._resume, &one, 8)

    def stop(self):
        """End run(); the fds close when the object goes."""
        cdef uint64_t one = 1
        if self._stop >= 0:
            host_write(self._stop, &one, 8)

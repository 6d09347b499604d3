# Kernel-visible buffers: memory the kernel has struct pages for.
#
# An anonymous mmap done inside the kernel (by the calling thread's
# shadow task, which shares init's mm) is kernel RAM with a VMA, so
# MSG_ZEROCOPY sends from it take real page references (the nommu GUP)
# instead of being copied.  See native/arch/lkl/kernel/zerocopy.c.

from cpython.buffer cimport PyBUF_FORMAT, PyBUF_ND, PyBUF_STRIDES

cdef extern from "lkl/asm/unistd.h":
    enum:
        LKL__NR_mmap
        LKL__NR_munmap

cdef char *_BYTE_FORMAT = "B"
cdef long _PROT_RW = 0x1 | 0x2            # PROT_READ | PROT_WRITE
cdef long _MAP_PRIVATE_ANON = 0x02 | 0x20  # MAP_PRIVATE | MAP_ANONYMOUS


cdef class KernelBuffer:
    """A writable buffer in the kernel's own memory (``Kernel.alloc_buffer``).

    Supports the buffer protocol (``memoryview(buf)``, ``buf[i:j] = ...``
    through it, ``sock.send(buf, lkl.MSG_ZEROCOPY)``).  ``close()`` unmaps
    it; pages the kernel still sends from stay alive until their
    completion, but the buffer must not be used from Python any more.
    Closing while a memoryview of it exists raises ``BufferError``.
    """

    cdef long _addr
    cdef Py_ssize_t _len
    cdef int _exports
    cdef bint _closed

    def __cinit__(self):
        self._addr = 0
        self._len = 0
        self._exports = 0
        self._closed = True

    @staticmethod
    def _map(Py_ssize_t size):
        """Map ``size`` bytes inside the kernel (the binding's half of
        ``Kernel.alloc_buffer``)."""
        cdef long params[6]
        cdef long ret
        cdef KernelBuffer buf
        if size <= 0:
            raise ValueError("buffer size must be positive")
        params[0] = 0
        params[1] = size
        params[2] = _PROT_RW
        params[3] = _MAP_PRIVATE_ANON
        params[4] = -1
        params[5] = 0
        with nogil:
            ret = lkl_syscall(LKL__NR_mmap, params)
        if ret < 0 and ret > -4096:
            _raise_errno(ret)
        buf = KernelBuffer.__new__(KernelBuffer)
        buf._addr = ret
        buf._len = size
        buf._closed = False
        return buf

    def __getbuffer__(self, Py_buffer *view, int flags):
        if self._closed:
            raise ValueError("I/O operation on a closed KernelBuffer")
        view.buf = <void *>self._addr
        view.obj = self
        view.len = self._len
        view.readonly = 0
        view.itemsize = 1
        view.format = _BYTE_FORMAT if (flags & PyBUF_FORMAT) else NULL
        view.ndim = 1
        view.shape = &self._len if (flags & PyBUF_ND) else NULL
        view.strides = &view.itemsize if (flags & PyBUF_STRIDES) else NULL
        view.suboffsets = NULL
        view.internal = NULL
        self._exports += 1

    def __releasebuffer__(self, Py_buffer *view):
        self._exports -= 1

    def __len__(self):
        return self._len

    @property
    def address(self):
        """The buffer's address (the same in the kernel and the host)."""
        if self._closed:
            raise ValueError("I/O operation on a closed KernelBuffer")
        return self._addr

    @property
    def closed(self):
        """True once ``close()`` ran."""
        return bool(self._closed)

    def close(self):
        """Unmap the buffer (a second call does nothing).  Raises
        ``BufferError`` while a memoryview of it is alive."""
        cdef long params[6]
        cdef long ret
        if self._closed:
            return
        if self._exports:
            raise BufferError("KernelBuffer has %d exported views" % self._exports)
        self._closed = True
        if not lkl_is_running() or glue_forked():
            return                  # the kernel (and its memory) is gone
        params[0] = self._addr
        params[1] = self._len
        with nogil:
            ret = lkl_syscall(LKL__NR_munmap, params)
        if ret < 0:
            _raise_errno(ret)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        state = "closed" if self._closed else "0x%x" % self._addr
        return "<lkl.KernelBuffer %d bytes %s>" % (self._len, state)

# Zero-copy receive: read-only views of the kernel's own skbs.
#
# Kernel memory is host memory, so lkl_recv_zerocopy (an lkl syscall,
# native/arch/lkl/kernel/zerocopy_rx.c) hands out the addresses of the
# received bytes and holds their skbs under a token until
# lkl_zerocopy_release.  Here:
#
# - _ZcHold owns the token: released once (release(), the last reference
#   going away, or a halt);
# - _ZcSegment is the buffer exporter of one segment: it refuses new
#   exports once the hold is released;
# - ZeroCopyRecv is what Socket.recv_zerocopy returns: the segments'
#   memoryviews (made on first use), release() and the context manager.
#   release() releases its own memoryviews first, and refuses (BufferError)
#   while anything derived from them (a slice, memoryview(view), a
#   consumer holding the buffer) is alive: those would outlive the skb.
#
# Each exporter keeps its ZeroCopyRecv alive, which refers to the views
# weakly (no cycle: dropping everything releases the token at once).
# Live ZeroCopyRecv objects are on an intrusive list (no references), so
# a halt can release their views before the kernel's RAM is unmapped.

from cpython.buffer cimport PyBuffer_FillInfo
from cpython.ref cimport PyObject

cdef extern from "lkl/lkl.h" nogil:
    struct lkl_zc_seg:
        unsigned long addr
        unsigned long len
    enum:
        LKL_ZC_MAX_SEGS

cdef extern from "lkl/asm/unistd.h":
    enum:
        LKL__NR_lkl_recv_zerocopy
        LKL__NR_lkl_zerocopy_release

cdef extern from "Python.h":
    # CPython's memoryview internals (Include/cpython/memoryobject.h): how
    # many views share a managed buffer and how many exports a view has.
    ctypedef struct _PyManagedBufferObject:
        Py_ssize_t exports
    ctypedef struct PyMemoryViewObject:
        _PyManagedBufferObject *mbuf
        int flags
        Py_ssize_t exports

cdef int _MEMORYVIEW_RELEASED = 0x001      # _Py_MEMORYVIEW_RELEASED

#: The most segments one recv_zerocopy call returns.
ZC_MAX_SEGMENTS = LKL_ZC_MAX_SEGS


cdef long _zc_release_token(unsigned long token) noexcept:
    cdef long params[6]
    cdef long ret
    if not lkl_is_running() or glue_forked():
        return 0                    # the kernel (and its skbs) are gone
    params[0] = <long>token
    with nogil:
        ret = glue_syscall(LKL__NR_lkl_zerocopy_release, params)
    return ret


cdef class _ZcHold:
    """The kernel's token for one recv_zerocopy call's skbs."""

    cdef unsigned long token
    cdef bint released

    cdef int free(self) except -1:
        cdef long ret
        if self.released:
            return 0
        self.released = True
        ret = _zc_release_token(self.token)
        if ret < 0 and ret != -LKL_ENODEV:
            _raise_errno(ret)
        return 0

    def __dealloc__(self):
        if not self.released:
            self.released = True
            _zc_release_token(self.token)


cdef class _ZcSegment:
    """The buffer exporter of one segment (read-only, refused once released).
    It keeps its ZeroCopyRecv alive, so a view outliving the object still
    has its skb held, and a halt still finds and releases it."""

    cdef ZeroCopyRecv owner
    cdef _ZcHold hold
    cdef char *addr
    cdef Py_ssize_t length

    def __getbuffer__(self, Py_buffer *view, int flags):
        if self.hold.released:
            raise ValueError("operation forbidden on released zero-copy views")
        PyBuffer_FillInfo(view, self, self.addr, self.length, 1, flags)

    def __releasebuffer__(self, Py_buffer *view):
        pass


# The live ZeroCopyRecv objects with a token (borrowed pointers).
cdef PyObject *_zc_live = NULL

import weakref as _weakref
_weakref_ref = _weakref.ref


cdef class ZeroCopyRecv:
    """Received bytes, read in place from the kernel's skbs (see
    ``Socket.recv_zerocopy``).

    ``views`` is a list of read-only memoryviews, one per segment, whose
    lengths add up to ``nbytes`` (``len()``); empty at end of stream.  A
    view keeps the object (and the data) alive.  The
    kernel holds the data, charged to the socket's receive buffer, until
    ``release()`` (or the end of a ``with`` block).  After it, using a view
    raises ValueError, as a released memoryview does; a second
    ``release()`` does nothing.  ``release()`` raises BufferError, and
    keeps the data, while something derived from a view is alive (a
    slice, ``memoryview(view)``, an object holding its buffer): drop those
    first.  Releases may come in any order, from any thread, also after
    the socket was closed.  A halt releases the views too (the kernel's
    memory is unmapped then; derived views must not outlive the kernel).
    Dropping the last reference releases the data.
    """

    cdef _ZcHold _hold
    cdef list _views                # weak references to the views made, or None
    cdef lkl_zc_seg *_segs
    cdef int _nsegs
    cdef Py_ssize_t _nbytes
    cdef PyObject *_prev
    cdef PyObject *_next
    cdef bint _linked

    def __cinit__(self):
        self._segs = NULL
        self._nsegs = 0
        self._nbytes = 0
        self._prev = NULL
        self._next = NULL
        self._linked = False

    def __init__(self):
        raise TypeError("ZeroCopyRecv objects come from Socket.recv_zerocopy()")

    def __dealloc__(self):
        # No view is alive (each keeps this object alive): _hold's own
        # __dealloc__ releases the token if nothing else did.
        self._unlink()
        free(self._segs)

    cdef list _live_views(self):
        """The views made so far that are still alive."""
        cdef list out = []
        if self._views is not None:
            for ref in self._views:
                v = ref()
                if v is not None:
                    out.append(v)
        return out

    cdef void _link(self) noexcept:
        global _zc_live
        self._next = _zc_live
        self._prev = NULL
        if _zc_live != NULL:
            (<ZeroCopyRecv>_zc_live)._prev = <PyObject *>self
        _zc_live = <PyObject *>self
        self._linked = True

    cdef void _unlink(self) noexcept:
        global _zc_live
        if not self._linked:
            return
        if self._prev != NULL:
            (<ZeroCopyRecv>self._prev)._next = self._next
        else:
            _zc_live = self._next
        if self._next != NULL:
            (<ZeroCopyRecv>self._next)._prev = self._prev
        self._prev = self._next = NULL
        self._linked = False

    @property
    def nbytes(self):
        """The number of bytes received (the views' lengths added up)."""
        return self._nbytes

    def __len__(self):
        return self._nbytes

    @property
    def released(self):
        """True once the data was released (or the kernel halted)."""
        return bool(self._hold.released)

    @property
    def token(self):
        """The kernel's token (``lkl_zerocopy_release``); 0 at end of stream."""
        return self._hold.token

    @property
    def views(self):
        """The segments as read-only memoryviews (a new list each time; a
        view is made again only if the last one was dropped).  ValueError
        once released (an empty list at end of stream)."""
        cdef int i
        cdef _ZcSegment seg
        cdef list out = []
        if self._hold.released and self._nbytes:
            raise ValueError("operation forbidden on released zero-copy views")
        if self._views is None:
            self._views = [None] * self._nsegs
        for i in range(self._nsegs):
            ref = self._views[i]
            v = ref() if ref is not None else None
            if v is None:
                seg = _ZcSegment.__new__(_ZcSegment)
                seg.owner = self
                seg.hold = self._hold
                seg.addr = <char *>self._segs[i].addr
                seg.length = <Py_ssize_t>self._segs[i].len
                v = memoryview(seg)
                self._views[i] = _weakref_ref(v)
            out.append(v)
        return out

    def __iter__(self):
        return iter(self.views)

    def tobytes(self):
        """A copy of the received bytes."""
        cdef int i
        cdef bytes out
        cdef char *p
        if self._hold.released and self._nbytes:
            raise ValueError("operation forbidden on released zero-copy views")
        out = PyBytes_FromStringAndSize(NULL, self._nbytes)
        p = PyBytes_AS_STRING(out)
        for i in range(self._nsegs):
            memcpy(p, <void *>self._segs[i].addr, self._segs[i].len)
            p += self._segs[i].len
        return out

    cdef int _views_free(self) except -1:
        """Raise BufferError if anything derived from a view is alive."""
        cdef PyMemoryViewObject *mv
        cdef Py_ssize_t alive = 0
        for v in self._live_views():
            mv = <PyMemoryViewObject *>v
            if mv.flags & _MEMORYVIEW_RELEASED:
                alive += mv.mbuf.exports
            else:
                alive += mv.exports + mv.mbuf.exports - 1
        if alive:
            raise BufferError(
                "%d buffer(s) derived from the zero-copy views are alive "
                "(slices, memoryviews or consumers of them)" % alive)
        return 0

    def release(self):
        """Give the bytes back to the kernel (a second call does nothing).

        Raises BufferError, and keeps them, while something derived from
        a view is alive; the kernel's errors as OSError."""
        if self._hold.released:
            self._unlink()
            return
        self._views_free()
        for v in self._live_views():
            v.release()
        self._unlink()
        self._hold.free()

    cdef void _halting(self) noexcept:
        """The kernel halts: release what can be released, forget the token."""
        for v in self._live_views():
            try:
                v.release()
            except BufferError:
                pass                # derived views: documented as unsafe
        self._hold.released = True
        self._unlink()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def __repr__(self):
        state = "released" if self._hold.released else "held"
        return "<lkl.ZeroCopyRecv %d bytes in %d segments, %s>" % (
            self._nbytes, self._nsegs, state)


cdef ZeroCopyRecv _zc_new(unsigned long token, lkl_zc_seg *segs, long nbytes):
    """A ZeroCopyRecv for the segments the kernel filled (nbytes of them)."""
    cdef ZeroCopyRecv z = ZeroCopyRecv.__new__(ZeroCopyRecv)
    cdef _ZcHold hold = _ZcHold.__new__(_ZcHold)
    cdef long left = nbytes
    cdef int n = 0
    hold.token = token
    hold.released = token == 0
    z._hold = hold
    z._nbytes = nbytes
    while left > 0:
        left -= segs[n].len
        n += 1
    if n:
        z._segs = <lkl_zc_seg *>malloc(n * sizeof(lkl_zc_seg))
        if z._segs == NULL:
            hold.free()
            raise MemoryError()
        memcpy(z._segs, segs, n * sizeof(lkl_zc_seg))
    z._nsegs = n
    if token:
        z._link()
    return z


cdef void _zc_halting() noexcept:
    """Before a halt: every live ZeroCopyRecv lets go of its views."""
    cdef ZeroCopyRecv z
    while _zc_live != NULL:
        # A strong reference: releasing its views may drop the last other one.
        z = <ZeroCopyRecv>_zc_live
        z._halting()
        z = None

# Boot, halt, raw syscalls, the console and the constant tables.


cdef dict _table(const glue_const *t):
    cdef dict d = {}
    cdef int i = 0
    while t[i].name != NULL:
        d[t[i].name.decode("ascii")] = t[i].value
        i += 1
    return d


#: The socket-level constants, with the kernel's values (exported by ``lkl``).
constants = _table(glue_constants)
#: Flags, errnos and structure sizes the package itself uses.
internal_constants = _table(glue_internal_constants)
#: Every syscall of the kernel: name (``"read"``) to number.
syscall_numbers = _table(glue_syscall_numbers)


cdef inline double _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


def _boot(bytes cmdline, int pin_cpu):
    """Boot with ``cmdline``; pin kernel threads to ``pin_cpu`` (-1: no CPU,
    -2: leave as is).  Returns 0 or a negative errno: -EBUSY (a kernel runs),
    -EALREADY (one ran and halted in this process), other boot failures."""
    cdef const char *c = cmdline
    cdef int err
    with nogil:
        err = glue_boot(c, pin_cpu)
    return err


def _halt():
    """Halt the kernel and join its threads and the poller.  Returns 0, or
    -ENODEV when no kernel runs."""
    cdef long ret
    if lkl_is_running() and not glue_forked():
        _zc_halting()           # zero-copy views: the RAM goes away
    with nogil:
        ret = glue_halt()
    return ret


def is_running():
    """True while a kernel runs in this process (and this is not a fork)."""
    return bool(lkl_is_running()) and not glue_forked()


def syscall_mode():
    """The running kernel's syscall mode: "shadow", "direct", or None when
    no kernel runs or the library cannot tell."""
    cdef int mode = glue_syscall_mode()
    return {0: "shadow", 1: "direct"}.get(mode)


def in_forked_child():
    """True in a process forked from the one that runs the kernel."""
    return bool(glue_forked())


def _console_read(uint64_t start=0):
    """The console text from offset ``start`` (or the oldest byte kept) and
    the offset after it: ``(bytes, end)``."""
    cdef char *text = NULL
    cdef uint64_t length = 0
    cdef uint64_t end = glue_console_copy(start, &text, &length)
    try:
        return (text[:length] if text != NULL else b""), end
    finally:
        free(text)


def _console_wait(uint64_t offset, double timeout):
    """Wait (GIL released) until the console passes ``offset``, the kernel
    halts, or ``timeout`` seconds pass.  Returns the console's end offset."""
    cdef uint64_t end
    if timeout < 0 or timeout != timeout:
        raise ValueError("timeout must be a non-negative number")
    with nogil:
        end = glue_console_wait(offset, timeout)
    return end


def _console_closed():
    """True once the kernel halted: the console will not grow."""
    return bool(glue_console_closed())


cdef long _syscall_number(object nr) except? -1:
    if isinstance(nr, str):
        try:
            return syscall_numbers[nr]
        except KeyError:
            raise ValueError(f"unknown syscall {nr!r}") from None
    if isinstance(nr, bool) or not isinstance(nr, int):
        raise TypeError(f"syscall number must be int or str, not {type(nr).__name__}")
    if not (-2**63 <= nr < 2**63):
        raise OverflowError("syscall number out of range")
    return <long>nr


cdef long _to_long(object value) except? -1:
    if value < 0:
        if value < -2**63:
            raise OverflowError("syscall argument out of range")
        return <long>value
    if value >= 2**64:
        raise OverflowError("syscall argument out of range")
    return <long><unsigned long>value


cdef long _buffer_address(object obj, Py_buffer *view, list keep) except? -1:
    """The address to pass for buffer ``obj`` (``view`` is held until the
    caller releases it): writable buffers in place, read-only ones as a
    copy kept alive in ``keep`` (the kernel must not write into bytes)."""
    cdef bytearray copy
    try:
        PyObject_GetBuffer(obj, view, PyBUF_WRITABLE)
        return <long>view.buf
    except BufferError:
        pass
    PyObject_GetBuffer(obj, view, PyBUF_SIMPLE)
    copy = bytearray(view.len)
    if view.len:
        memcpy(<char *>copy, view.buf, view.len)
    keep.append(copy)
    return <long><char *>copy


def syscall(nr, *args):
    """syscall(nr, *args) -> int

    Run a raw syscall in the kernel and return its result.  ``nr`` is a
    number or a name (``"getpid"``).  Each argument is an ``int`` (passed
    as is), ``None`` (0), a ``str`` (a NUL-terminated file-system-encoded
    string) or a buffer.  A writable buffer (``bytearray``, a writable
    ``memoryview``, ...) is passed in place: its address, so the kernel
    reads and writes it.  A read-only buffer (``bytes``, a read-only
    ``memoryview``) is an input only: the kernel gets the address of a
    copy, so it can never change an immutable object, and whatever it
    writes there is discarded -- pass a writable buffer for anything the
    kernel writes (read's buffer, getcwd's, a struct it fills in).  The
    GIL is released during the call.  A negative result raises the
    standard library's OSError subclass.

    An ``int`` given where the kernel expects a pointer is used as an
    address in this process, like ctypes: the kernel has no MMU to catch
    a bad one.
    """
    cdef long params[6]
    cdef Py_buffer bufs[6]
    cdef bint held[6]
    cdef long lnr, ret
    cdef int i, n = len(args)
    cdef list keep = []
    if n > 6:
        raise TypeError(f"syscall() takes at most 6 arguments after the number ({n} given)")
    lnr = _syscall_number(nr)
    for i in range(6):
        params[i] = 0
        held[i] = False
    try:
        for i in range(n):
            a = args[i]
            if a is None:
                params[i] = 0
            elif isinstance(a, int):
                params[i] = _to_long(a)
            elif isinstance(a, str):
                b = _os.fsencode(a)
                if b"\0" in b:
                    raise ValueError("embedded null byte")
                keep.append(b)
                params[i] = <long>PyBytes_AS_STRING(b)
            else:
                params[i] = _buffer_address(a, &bufs[i], keep)
                held[i] = True
        with nogil:
            ret = glue_syscall(lnr, params)
    finally:
        for i in range(6):
            if held[i]:
                PyBuffer_Release(&bufs[i])
    if ret < 0:
        _raise_errno(ret)
    return ret


def getpid():
    """The kernel's pid for this process's threads (1: they all run as
    threads of the kernel's init process)."""
    cdef long ret
    with nogil:
        ret = glue_syscall(LKL__NR_getpid, NULL)
    if ret < 0:
        _raise_errno(ret)
    return ret

# Kernel errnos become the standard library's exceptions.
#
# The kernel and the host number errors alike on the hosts lkl builds for
# (_glue.c checks it at compile time), so OSError(errno, strerror) picks
# the same subclass the standard library would: ConnectionRefusedError,
# BrokenPipeError, BlockingIOError, TimeoutError (ETIMEDOUT) and so on.


class KernelError(OSError):
    """The kernel cannot serve the call: it is not running (never booted,
    or halted), it cannot boot (one kernel per process), or this process
    is a fork of the one that runs it.

    An ``OSError``, so that code written for the standard library's sockets
    (``except OSError:`` loops, socketserver) ends cleanly when the kernel
    goes away under it: ``errno`` is ENODEV when no kernel runs (a halt, a
    fork), and the boot refusals carry EBUSY (one runs), EALREADY (one ran
    and halted) or the boot's own errno.  ``KernelError(message)`` alone
    means ENODEV.
    """

    def __init__(self, *args):
        if len(args) == 1 and isinstance(args[0], str):
            args = (_errno.ENODEV, args[0])
        super().__init__(*args)


cdef str _not_running_message():
    if glue_forked():
        return ("this process is a fork of the one that runs the kernel; "
                "the kernel's threads did not survive the fork")
    return "the kernel is not running (halted, or never booted)"


cdef object _errno_error(int err, object filename=None):
    """The exception for a positive kernel errno."""
    if err == LKL_ENODEV and (glue_forked() or not lkl_is_running()):
        return KernelError(_not_running_message())
    if filename is not None:
        return OSError(err, _os.strerror(err), filename)
    return OSError(err, _os.strerror(err))


cdef int _raise_errno(long ret, object filename=None) except -1:
    """Raise the exception for a negative kernel result."""
    raise _errno_error(<int>-ret, filename)


cdef object _ebadf():
    return OSError(_errno.EBADF, _os.strerror(_errno.EBADF))


def errno_error(int err, filename=None):
    """Return (not raise) the exception the package raises for kernel errno
    ``err``: an ``OSError`` subclass, or ``KernelError`` (also an OSError,
    errno ENODEV) for ENODEV while no kernel runs."""
    return _errno_error(err, filename)

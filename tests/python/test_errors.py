"""Errors: kernel errnos arrive as the standard library's OSError subclasses;
misuse raises ordinary exceptions, never crashes."""

import errno
import os
import pickle

import pytest

import lkl

SUBCLASSES = {
    errno.ECONNREFUSED: ConnectionRefusedError,
    errno.ECONNRESET: ConnectionResetError,
    errno.ECONNABORTED: ConnectionAbortedError,
    errno.EPIPE: BrokenPipeError,
    errno.ESHUTDOWN: BrokenPipeError,
    errno.EAGAIN: BlockingIOError,
    errno.EINPROGRESS: BlockingIOError,
    errno.EALREADY: BlockingIOError,
    errno.ETIMEDOUT: TimeoutError,
    errno.EINTR: InterruptedError,
    errno.ENOENT: FileNotFoundError,
    errno.EEXIST: FileExistsError,
    errno.EISDIR: IsADirectoryError,
    errno.ENOTDIR: NotADirectoryError,
    errno.EACCES: PermissionError,
    errno.EPERM: PermissionError,
    errno.ESRCH: ProcessLookupError,
    errno.ECHILD: ChildProcessError,
}


@pytest.mark.parametrize("err", sorted(SUBCLASSES))
def test_errno_becomes_the_stdlib_subclass(err):
    exc = lkl.errno_error(err)
    assert type(exc) is SUBCLASSES[err]
    assert exc.errno == err and exc.strerror == os.strerror(err)
    assert type(OSError(err, os.strerror(err))) is type(exc)      # as the stdlib builds it


def test_plain_oserror_for_the_rest(kernel):
    for err in (errno.EADDRINUSE, errno.EBADF, errno.EINVAL, errno.ENOTSOCK, errno.EMSGSIZE):
        exc = lkl.errno_error(err)
        assert type(exc) is OSError and exc.errno == err


def test_errors_arriving_from_the_kernel(kernel):
    with pytest.raises(FileExistsError):
        kernel.syscall("mkdirat", -100, "/proc", 0o755)
    with pytest.raises(FileNotFoundError) as info:
        kernel.listdir("/nonexistent")
    assert info.value.filename == "/nonexistent"
    with pytest.raises(OSError) as info:
        kernel.syscall("listen", 999, 1)
    assert info.value.errno == errno.EBADF
    fd = kernel.syscall("openat", -100, "/proc/version", 0, 0)
    try:
        with pytest.raises(OSError) as info:
            lkl.Socket(kfd=fd)                      # not a socket
        assert info.value.errno == errno.ENOTSOCK
    finally:
        kernel.syscall("close", fd)
    with pytest.raises(OSError) as info:
        kernel.socket(12345, lkl.SOCK_STREAM)
    assert info.value.errno == errno.EAFNOSUPPORT
    with pytest.raises(OSError) as info:
        kernel.socket(lkl.AF_INET, 999)
    assert info.value.errno == errno.EINVAL
    with kernel.socket(lkl.AF_INET, lkl.SOCK_DGRAM) as s, pytest.raises(OSError) as info:
        s.sendto(b"x", ("10.1.2.3", 9))             # only lo exists
    assert info.value.errno == errno.ENETUNREACH
    with kernel.socket() as s:
        s.setblocking(False)
        with pytest.raises(BlockingIOError) as info:
            srv = kernel.socket()
            srv.bind(("127.0.0.1", 0))
            srv.listen()
            try:
                s.connect(srv.getsockname())          # non-blocking: in progress
            finally:
                srv.close()
        assert info.value.errno == errno.EINPROGRESS


def test_misuse_is_an_exception(kernel):
    with pytest.raises(ValueError):
        lkl.Socket(kfd=-1)
    with pytest.raises(TypeError):
        lkl.Socket(kfd="3")
    s = kernel.socket()
    with pytest.raises(TypeError):
        pickle.dumps(s)
    with pytest.raises(TypeError):
        s.setsockopt(lkl.SOL_SOCKET, lkl.SO_REUSEADDR, "yes")
    with pytest.raises(TypeError):
        s.setsockopt(lkl.SOL_SOCKET, lkl.SO_REUSEADDR, 1, 4)
    with pytest.raises(OverflowError):
        s.setsockopt(lkl.SOL_SOCKET, lkl.SO_REUSEADDR, 2**40)
    with pytest.raises(OverflowError):
        s.listen(2**40)
    with pytest.raises(TypeError):
        s.sendmsg([b"x"], [(1, 2)])
    with pytest.raises(ValueError):
        s.recvmsg(-1)
    with pytest.raises(ValueError):
        s.makefile("rx")
    with pytest.raises(ValueError):
        s.makefile("r", buffering=0)
    import socket
    with pytest.raises(socket.gaierror):
        s.connect(("no-such-host.invalid", 80))     # never sent to a resolver
    s.close()
    with pytest.raises(OSError) as info:
        s.connect(("127.0.0.1", 1))
    assert info.value.errno == errno.EBADF


def test_resource_warning_for_unclosed_socket(kernel):
    s = kernel.socket()
    kfd = s.kfd
    with pytest.warns(ResourceWarning):
        s.__del__()
    assert s.kfd == -1
    with pytest.raises(OSError) as info:
        kernel.syscall("fcntl", kfd, 1)             # F_GETFD: the kfd was closed
    assert info.value.errno == errno.EBADF


def test_select_and_poll_misuse(kernel):
    with pytest.raises(ValueError):
        lkl.select([], [], [], -1)
    with pytest.raises(TypeError):
        lkl.select([object()], [], [], 0)
    with pytest.raises(ValueError):
        lkl.select([-3], [], [], 0)
    with pytest.raises(OSError) as info:
        lkl.select([100_000], [], [], 0)
    assert info.value.errno == errno.EBADF
    p = lkl.poll()
    with pytest.raises(KeyError):
        p.unregister(5)
    with pytest.raises(FileNotFoundError):
        p.modify(5, lkl.POLLIN)
    assert p.poll(0) == []

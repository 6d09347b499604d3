"""Regressions found by CPython's own test_socket under ``python -m lkl run``.

Each test is the small form of one CPython test that failed on lkl.socket.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import lkl
import lkl.socket as lsocket


@pytest.fixture
def patched(kernel: lkl.Kernel) -> Iterator[Any]:
    with lkl.patched(kernel) as handle:
        yield handle


def test_getnameinfo_error_keeps_no_reference_to_its_argument(patched: Any) -> None:
    # testRefCountGetNameInfo: the traceback's frames must not hold sockaddr.
    arg = "not a tuple " + str(os.getpid())  # a fresh object: its count is ours
    before = sys.getrefcount(arg)
    with pytest.raises(TypeError):
        socket.getnameinfo(arg, 0)  # type: ignore[arg-type]
    assert sys.getrefcount(arg) == before


def test_socket_close_of_a_kernel_sockets_fd_closes_it(patched: Any) -> None:
    # test_socket_close: socket.close(fd) ends the socket; its own close() is EBADF.
    sock = socket.socket()
    assert isinstance(sock, lsocket.socket)
    sock.bind(("127.0.0.1", 0))
    socket.close(sock.fileno())
    with pytest.raises(OSError):
        sock.listen(1)
    with pytest.raises(OSError) as info:
        sock.close()
    assert info.value.errno == errno.EBADF
    with pytest.raises(TypeError):
        socket.close(None)  # type: ignore[arg-type]
    with pytest.raises(OSError):
        socket.close(-1)


def test_socket_close_of_a_host_fd_is_the_stdlibs(patched: Any) -> None:
    r, w = os.pipe()
    socket.close(r)
    os.close(w)
    with pytest.raises(OSError):
        os.fstat(r)


def test_sendfile_use_sendfile_checks_then_gives_up(kernel: lkl.Kernel, tmp_path: Any) -> None:
    # test__sendfile_use_sendfile: the stdlib's argument errors, then a clean
    # _GiveupOnSendfile (socket.sendfile falls back to send on it).
    giveup = socket._GiveupOnSendfile  # type: ignore[attr-defined]

    class File:
        def __init__(self, fd: Any) -> None:
            self.fd = fd

        def fileno(self) -> Any:
            return self.fd

    with lsocket.socket() as sock:
        fd = os.open(os.curdir, os.O_RDONLY)
        os.close(fd)
        with pytest.raises(giveup):
            sock._sendfile_use_sendfile(File(fd))
        with pytest.raises(OverflowError):
            sock._sendfile_use_sendfile(File(2**1000))
        with pytest.raises(TypeError):
            sock._sendfile_use_sendfile(File(None))
        path = tmp_path / "data"
        path.write_bytes(b"x" * 100)
        with open(path, "rb") as f:
            with pytest.raises(giveup, match="kernel socket"):
                sock._sendfile_use_sendfile(f)
            with pytest.raises(ValueError):
                sock._sendfile_use_sendfile(f, count=0)

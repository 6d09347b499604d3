"""lkl.select() and lkl.poll() over kernel sockets, and the fileno() eventfds."""

import select
import threading
import time

from helpers import tcp_pair as _pair

import lkl


def test_lkl_select(kernel):
    cli, conn, srv = _pair(kernel)
    try:
        assert lkl.select([conn, srv], [], [], 0) == ([], [], [])
        r, w, x = lkl.select([conn], [cli, conn], [conn], 0)
        assert r == [] and w == [cli, conn] and x == []
        cli.sendall(b"data")
        r, _, _ = lkl.select([conn, srv], [], [], 5)
        assert r == [conn]
        assert lkl.select([conn.kfd], [], [], 0)[0] == [conn.kfd]     # kernel fd numbers
        cli.send(b"!", lkl.MSG_OOB)
        assert lkl.select([], [], [conn], 5)[2] == [conn]             # urgent data
        t0 = time.monotonic()
        assert lkl.select([srv], [], [], 0.15) == ([], [], [])
        assert 0.1 < time.monotonic() - t0 < 2
    finally:
        for s in (cli, conn, srv):
            s.close()


def test_lkl_select_wakes_on_data_from_another_thread(kernel):
    cli, conn, srv = _pair(kernel)
    try:
        threading.Timer(0.1, cli.sendall, (b"wake",)).start()
        t0 = time.monotonic()
        r, _, _ = lkl.select([conn], [], [], None)
        assert r == [conn] and time.monotonic() - t0 < 5
    finally:
        for s in (cli, conn, srv):
            s.close()


def test_lkl_poll(kernel):
    cli, conn, srv = _pair(kernel)
    try:
        p = lkl.poll()
        p.register(conn, lkl.POLLIN)
        p.register(srv.kfd)
        assert p.poll(0) == []
        cli.sendall(b"x")
        assert p.poll(5000) == [(conn.kfd, lkl.POLLIN)]
        p.modify(conn, lkl.POLLIN | lkl.POLLOUT)
        assert dict(p.poll(0))[conn.kfd] == lkl.POLLIN | lkl.POLLOUT
        p.unregister(conn)
        assert p.poll(10) == []
        cli.close()
        p.register(conn, lkl.POLLIN | lkl.POLLRDHUP)
        assert dict(p.poll(5000))[conn.kfd] & lkl.POLLRDHUP
    finally:
        for s in (cli, conn, srv):
            s.close()


def test_fileno_is_a_host_eventfd_matching_kernel_readiness(kernel):
    cli, conn, srv = _pair(kernel)
    try:
        fd = conn.fileno()
        assert fd >= 0 and conn.fileno() == fd            # stable
        assert select.select([fd], [], [], 0)[0] == []
        assert select.select([], [fd], [], 0)[1] == [fd]   # never a write signal
        for _ in range(50):                                # many edges, no stale state
            cli.sendall(b"abc")
            assert select.select([fd], [], [], 5)[0] == [fd]
            assert conn.recv(10) == b"abc"
            assert select.select([fd], [], [], 0)[0] == []
        conn.settimeout(0)
        try:
            conn.recv(1)
        except BlockingIOError:
            pass
        assert select.select([fd], [], [], 0)[0] == []
        conn.close()
        assert conn.fileno() == -1
    finally:
        for s in (cli, conn, srv):
            s.close()


def test_fileno_writability(kernel):
    cli, conn, srv = _pair(kernel)
    try:
        cli.setblocking(False)
        fd = cli.fileno()
        assert select.select([], [fd], [], 5)[1] == [fd]        # writable now
        sent = 0
        try:
            while True:
                sent += cli.send(b"x" * 65536)
        except BlockingIOError:
            pass
        assert select.select([], [fd], [], 0)[1] == []          # full: not writable
        got = 0
        conn.settimeout(5)
        while got < sent:
            got += len(conn.recv(1 << 20))
        assert select.select([], [fd], [], 5)[1] == [fd]        # space again
    finally:
        for s in (cli, conn, srv):
            s.close()


def test_signal_handlers_run_during_timed_waits(kernel):
    import signal

    class Interrupted(Exception):
        pass

    def handler(signum, frame):
        raise Interrupted

    cli, conn, srv = _pair(kernel)
    conn.settimeout(30)
    old = signal.signal(signal.SIGALRM, handler)
    try:
        for call in (lambda: conn.recv(1), lambda: lkl.select([conn], [], [], None),
                     lambda: lkl.select([srv], [], [], 30), lambda: lkl.poll().poll(30_000)):
            signal.setitimer(signal.ITIMER_REAL, 0.1)
            t0 = time.monotonic()
            try:
                call()
            except Interrupted:
                pass
            assert time.monotonic() - t0 < 2, "the signal handler waited for the kernel"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        for s in (cli, conn, srv):
            s.close()

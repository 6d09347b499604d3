"""lkl.asyncio.EventLoop: an asyncio loop that waits in the kernel's epoll.

The session kernel serves most tests (its syscall mode is the session's,
LKL_TEST_SYSCALL_MODE); the ones that halt a kernel, send Ctrl-C or state
a mode run in a fresh interpreter.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import ROOT, echo_stream, in_threads, run_ok, stream_round_trip, tcp_pair

import lkl
import lkl.asyncio as lkl_asyncio

CERTS = Path(ssl.__file__).parent / "test" / "certdata"


def run(coro, timeout=60):
    return lkl_asyncio.run(asyncio.wait_for(coro, timeout))


def host_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_run_uses_the_kernel_loop_and_streams_need_no_host_fd(kernel):
    async def main():
        loop = asyncio.get_running_loop()
        assert isinstance(loop, lkl_asyncio.EventLoop)
        before = host_fds()
        server = await lkl_asyncio.start_server(kernel, echo_stream, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pairs = [await lkl_asyncio.open_connection(kernel, "127.0.0.1", port)
                 for _ in range(32)]
        during = host_fds()
        results = await asyncio.gather(*(stream_round_trip(r, w, i, 64 << 10)
                                         for i, (r, w) in enumerate(pairs)))
        server.close()
        await server.wait_closed()
        return before, during, results

    before, during, results = run(main())
    assert results == [True] * 32
    # 33 listening and connected lkl sockets, 32 accepted: no host fd for any.
    assert during == before


def test_policy_makes_kernel_loops(kernel):
    policy = lkl_asyncio.EventLoopPolicy()
    loop = policy.new_event_loop()
    try:
        assert isinstance(loop, lkl_asyncio.EventLoop)
        assert loop.run_until_complete(asyncio.sleep(0.01, "slept")) == "slept"
    finally:
        loop.close()


def test_timers_keep_their_deadline(kernel):
    async def main():
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(0.05)
        return loop.time() - start

    elapsed = run(main())
    assert 0.05 <= elapsed < 1.0


def test_mixed_host_and_lkl_fds_in_one_loop(kernel):
    """A host socket pair, a host pipe and an lkl connection, served at once."""

    async def host_side(n):
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        try:
            for i in range(n):
                await loop.sock_sendall(a, b"h%d;" % i)
                got = await loop.sock_recv(b, 64)
                assert got == b"h%d;" % i
        finally:
            a.close()
            b.close()
        return "host"

    async def pipe_side():
        loop = asyncio.get_running_loop()
        rfd, wfd = os.pipe()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(rfd, "rb", 0))
        loop.call_later(0.02, os.write, wfd, b"through a host pipe\n")
        try:
            return (await reader.readline()).decode().strip()
        finally:
            transport.close()
            os.close(wfd)

    async def lkl_side():
        server = await lkl_asyncio.start_server(kernel, echo_stream, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await lkl_asyncio.open_connection(kernel, "127.0.0.1", port)
        ok = await stream_round_trip(reader, writer, 7, 256 << 10)
        server.close()
        await server.wait_closed()
        return ok

    async def main():
        return await asyncio.gather(host_side(200), pipe_side(), lkl_side())

    assert run(main()) == [
        "host", "through a host pipe", True]


def test_low_level_socket_calls_on_lkl_sockets(kernel):
    payload = hashlib.shake_256(b"sock_").digest(2 << 20)

    async def main():
        loop = asyncio.get_running_loop()
        listener = kernel.socket(lkl.AF_INET, lkl.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        client = kernel.socket(lkl.AF_INET, lkl.SOCK_STREAM)
        client.setblocking(False)
        accept = asyncio.ensure_future(loop.sock_accept(listener))
        await loop.sock_connect(client, listener.getsockname())
        conn, _ = await accept
        assert conn.gettimeout() == 0

        async def receive():
            got = hashlib.sha256()
            buf = bytearray(65536)
            while n := await loop.sock_recv_into(conn, buf):
                got.update(buf[:n])
            return got.hexdigest()

        receiver = asyncio.ensure_future(receive())
        await loop.sock_sendall(client, payload)
        client.shutdown(lkl.SHUT_WR)
        digest = await receiver
        for s in (conn, client, listener):
            s.close()
        return digest

    assert run(main()) == hashlib.sha256(payload).hexdigest()


@pytest.mark.parametrize("tls", [False, True])
def test_create_server_and_connection_with_lkl_sockets(kernel, tls):
    """The stock protocol API (create_server/create_connection with sock=),
    plain and with ssl= (asyncio's SSLProtocol over our transport)."""
    server_ctx, client_ctx = _tls_contexts() if tls else (None, None)
    hostname = {"server_hostname": "localhost"} if tls else {}

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            self.transport.write(data)

    async def main():
        loop = asyncio.get_running_loop()
        listener = kernel.socket(lkl.AF_INET, lkl.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        server = await loop.create_server(Echo, sock=listener, ssl=server_ctx)
        client = kernel.socket(lkl.AF_INET, lkl.SOCK_STREAM)
        client.setblocking(False)
        await loop.sock_connect(client, listener.getsockname())
        got = loop.create_future()

        class Client(asyncio.Protocol):
            def data_received(self, data):
                if not got.done():
                    got.set_result(data)

        transport, _ = await loop.create_connection(Client, sock=client, ssl=client_ctx,
                                                    **hostname)
        assert (transport.get_extra_info("peercert") is not None) == tls
        transport.write(b"protocols over the kernel")
        data = await got
        transport.close()
        server.close()
        await server.wait_closed()
        return data

    assert run(main()) == b"protocols over the kernel"


def _tls_contexts():
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(CERTS / "keycert3.pem")
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(CERTS / "pycacert.pem")
    return server, client


@pytest.mark.parametrize("loop_kind", ["kernel", "stock"])
def test_tls_streams_over_lkl(kernel, loop_kind):
    server_ctx, client_ctx = _tls_contexts()
    payload = hashlib.shake_256(b"tls").digest(512 << 10)

    async def main():
        server = await lkl_asyncio.start_server(kernel, echo_stream, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await lkl_asyncio.open_connection(
            kernel, "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost")
        assert writer.get_extra_info("peercert")["subject"]
        assert not writer.can_write_eof()  # TLS streams cannot half-close

        async def send():
            for off in range(0, len(payload), 16384):
                writer.write(payload[off:off + 16384])
                await writer.drain()

        sender = asyncio.create_task(send())
        echoed = await reader.readexactly(len(payload))
        await sender
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return echoed == payload

    if loop_kind == "kernel":
        assert run(main(), 30)
    else:
        assert asyncio.run(asyncio.wait_for(main(), 30))


def test_start_tls_upgrades_an_lkl_connection(kernel):
    server_ctx, client_ctx = _tls_contexts()

    async def handle(reader, writer):
        assert await reader.readline() == b"STARTTLS\n"
        writer.write(b"GO\n")
        await writer.drain()
        await writer.start_tls(server_ctx)
        line = await reader.readline()
        writer.write(b"secret " + line)
        await writer.drain()
        writer.close()

    async def main():
        server = await lkl_asyncio.start_server(kernel, handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await lkl_asyncio.open_connection(kernel, "127.0.0.1", port)
        writer.write(b"STARTTLS\n")
        assert await reader.readline() == b"GO\n"
        await writer.start_tls(client_ctx, server_hostname="localhost")
        assert writer.get_extra_info("sslcontext") is client_ctx
        writer.write(b"hello\n")
        line = await reader.readline()
        writer.close()
        server.close()
        await server.wait_closed()
        return line

    assert run(main()) == b"secret hello\n"


def test_call_soon_threadsafe_from_threads_wakes_the_kernel_wait(kernel):
    threads, each = 4, 200

    async def main():
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        seen = []

        def arrive(i):
            seen.append(i)
            if len(seen) == threads * each and not done.done():
                done.set_result(None)

        def worker(t):
            for i in range(each):
                loop.call_soon_threadsafe(arrive, t * each + i)
                if i % 50 == 0:
                    time.sleep(0.001)  # let the loop go back to its kernel wait

        workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        await asyncio.wait_for(done, 20)
        for w in workers:
            w.join()
        return sorted(seen)

    assert run(main()) == list(range(threads * each))


def test_run_in_executor_results_come_back(kernel):
    async def main():
        loop = asyncio.get_running_loop()
        return await asyncio.gather(*(loop.run_in_executor(None, pow, 2, n) for n in range(20)))

    assert run(main()) == [2 ** n for n in range(20)]


def test_subprocess_exec_on_the_kernel_loop(kernel):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import sys; sys.stdout.write(sys.stdin.read().upper())",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        out, _ = await proc.communicate(b"piped through a child\n")
        return proc.returncode, out

    assert run(main()) == (0, b"PIPED THROUGH A CHILD\n")


def test_signal_handler_runs_while_the_loop_waits_in_the_kernel(kernel):
    async def main():
        loop = asyncio.get_running_loop()
        got = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, got.set_result, "SIGUSR1")
        try:
            # From another thread, once the loop is (most likely) blocked.
            threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR1)).start()
            return await asyncio.wait_for(got, 10)
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)

    assert run(main()) == "SIGUSR1"


@pytest.mark.parametrize("mode", ["shadow", "direct"])
def test_ctrl_c_ends_lkl_asyncio_run(mode):
    out = run_ok(f"""
        import asyncio, os, signal, threading, time, lkl, lkl.asyncio as la
        k = lkl.boot(syscall_mode={mode!r})
        srv = k.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(); srv.setblocking(False)

        async def main():
            loop = asyncio.get_running_loop()
            threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
            await loop.sock_accept(srv)   # nobody connects: waits in the kernel

        start = time.monotonic()
        try:
            la.run(main())
        except KeyboardInterrupt:
            print("interrupted", round(time.monotonic() - start, 1) < 5)
        srv.close()
        k.halt()
    """, timeout=60)
    assert out.split() == ["interrupted", "True"]


@pytest.mark.parametrize("mode", ["shadow", "direct"])
def test_halt_while_the_loop_waits_is_a_clean_error(mode):
    out = run_ok(f"""
        import asyncio, threading, time, lkl, lkl.asyncio as la
        k = lkl.boot(syscall_mode={mode!r})
        srv = k.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
        cli = k.socket(); cli.connect(srv.getsockname())
        conn, _ = srv.accept()
        conn.setblocking(False)

        async def main():
            loop = asyncio.get_running_loop()
            loop.call_later(0.2, threading.Thread(target=k.halt).start)
            await loop.sock_recv(conn, 100)   # nothing comes: waits in the kernel

        start = time.monotonic()
        try:
            la.run(main())
        except lkl.KernelError as e:
            print("KernelError", round(time.monotonic() - start, 1) < 10)
        k.halt()
    """, timeout=60)
    assert out.split() == ["KernelError", "True"]


def test_stdlib_asyncio_suites_selection_on_the_kernel_loop():
    """A CI-sized selection of CPython's asyncio suites on our loop (the
    full run: tests/python/stdlib_asyncio_suites.py)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests/python/stdlib_asyncio_suites.py"),
         "--only", "test_events", "test_sock_lowlevel", "test_streams",
         "-k", "create_server", "-k", "create_connection", "-k", "sock_",
         "-k", "subprocess_exec", "-k", "signal", "-k", "start_tls", "-k", "readline"],
        capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line.split() for line in proc.stdout.splitlines() if " run " in line]
    runs = {(w[0], w[1]): int(w[5]) for w in lines}
    for module in ("test_events", "test_sock_lowlevel", "test_streams"):
        assert runs[(module, "lkl")] >= runs[(module, "host")] > 0


def test_event_loop_needs_a_running_kernel():
    out = run_ok("""
        import lkl, lkl.asyncio as la
        try:
            la.EventLoop()
        except lkl.KernelError as e:
            print("refused:", e)
    """)
    assert out.startswith("refused:") and "the kernel is not running" in out


def test_a_closed_unregistered_socket_does_not_block_its_reused_kfd(kernel):
    """A socket closed while registered (a user bug the stock selectors
    share): the next socket with the same kernel fd can still register."""
    selector = lkl_asyncio.KernelSelector()
    try:
        first = kernel.socket()
        kfd = first.kfd
        selector.register(first, 1)
        first.close()
        second = kernel.socket()
        assert second.kfd == kfd
        key = selector.register(second, 1)
        assert key.fileobj is second and selector.get_key(second) is key
        with pytest.raises(KeyError):
            selector.get_key(first)
        # A fresh TCP socket is "hung up" for poll: reported, as the second one.
        assert [k.fileobj for k, _ in selector.select(0)] == [second]
        second.close()
    finally:
        selector.close()


def test_a_wrapper_with_an_lkl_socket_is_served_in_the_kernel(kernel):
    """The hook for wrapper classes: ``_lkl_socket`` names the kernel socket."""

    class Wrapper:
        def __init__(self, sock):
            self._lkl_socket = sock

        def __getattr__(self, name):
            return getattr(self._lkl_socket, name)

    async def main():
        loop = asyncio.get_running_loop()
        client, conn, listener = tcp_pair(kernel)
        wrapped = Wrapper(conn)
        got = loop.create_future()
        before = host_fds()

        def readable():
            if not got.done():
                got.set_result(wrapped.recv(100))

        loop.add_reader(wrapped, readable)
        client.send(b"seen through the wrapper")
        data = await got
        loop.remove_reader(wrapped)
        assert host_fds() == before
        for s in (conn, client, listener):
            s.close()
        return data

    assert run(main()) == b"seen through the wrapper"


def test_loops_leave_no_thread_and_no_fd_behind(kernel):
    threads, fds = threading.active_count(), host_fds()
    for _ in range(30):
        loop = lkl_asyncio.EventLoop()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
        loop.close()                      # harmless twice
    assert threading.active_count() == threads
    assert host_fds() == fds


def test_misuse_is_a_clear_error(kernel):
    async def main():
        loop = asyncio.get_running_loop()
        blocking = kernel.socket()
        with pytest.raises(ValueError, match="non-blocking"):
            await loop.sock_recv(blocking, 10)
        blocking.close()
        with pytest.raises(TypeError, match="SSLContext"):
            await lkl_asyncio.open_connection(kernel, "127.0.0.1", 9, ssl="yes")
        with pytest.raises(ValueError, match="server_hostname"):
            await lkl_asyncio.open_connection(kernel, "127.0.0.1", 9, server_hostname="x")
        selector = loop._selector
        sock = kernel.socket()
        with pytest.raises(ValueError, match="Invalid events"):
            selector.register(sock, 0)
        with pytest.raises(KeyError):
            selector.unregister(sock)
        sock.close()
        with pytest.raises(ValueError):
            selector.register(sock, 1)     # closed: kfd -1

    run(main())


def test_loops_in_several_threads_at_once(kernel):
    """One EventLoop per thread, all waiting in the kernel at the same time."""
    async def one(seed):
        server = await lkl_asyncio.start_server(kernel, echo_stream, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await lkl_asyncio.open_connection(kernel, "127.0.0.1", port)
        ok = await stream_round_trip(reader, writer, seed, 256 << 10)
        server.close()
        await server.wait_closed()
        return ok

    assert in_threads(lambda s: run(one(s), 30), 3, 60) == [True] * 3


@pytest.mark.skipif(os.geteuid() != 0, reason="TAP devices need root")
@pytest.mark.watchdog(150)
def test_loop_over_a_tap_with_direct_rx_serves_host_clients():
    """A real device: the loop's thread, asleep in the kernel's epoll, takes
    the TAP's frames itself (direct_rx); host-stack clients in the same
    loop (host epoll) talk to the kernel's server over the TAP."""
    from helpers import in_netns

    from harness.netns import Netns

    with Netns() as ns:
        ns.add_tap("tl0", "10.204.12.1/24")
        out = in_netns(ns.name, """
            import asyncio, lkl, lkl.asyncio as la
            from helpers import echo_stream, stream_round_trip
            nic = lkl.Nic(lkl.Tap("tl0"), offload=lkl.Offload.LARGE_SEGMENTS, direct_rx=True)
            k = lkl.boot(nics=[nic])               # the default: direct syscalls
            nic.up()
            nic.add_address("10.204.12.2/24")

            async def client(port, seed):
                reader, writer = await asyncio.open_connection("10.204.12.2", port)
                return await stream_round_trip(reader, writer, seed, 2 << 20, 32768)

            async def main():
                server = await la.start_server(k, echo_stream, "10.204.12.2", 0)
                port = server.sockets[0].getsockname()[1]
                results = await asyncio.gather(*(client(port, i) for i in range(3)))
                server.close()
                await server.wait_closed()
                return results

            results = la.run(asyncio.wait_for(main(), 60))
            st = nic.stats()["device"]
            print(results == [True] * 3, st["rx_direct"] > 0, st["rx_dropped"])
            k.halt()
        """, timeout=120)
    assert out.split() == ["True", "True", "0"]


def test_patched_stdlib_sockets_are_served_in_the_kernel():
    """Under lkl.patch(), stock asyncio code (asyncio.start_server and
    open_connection, which make lkl.socket.socket objects) runs on our loop
    with lkl's transport: the kernel's TCP, waited for in the kernel."""
    out = run_ok("""
        import asyncio, lkl, lkl.asyncio as la
        from helpers import echo_stream

        async def main(kernel):
            server = await asyncio.start_server(echo_stream, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert type(writer.transport).__name__ == "LklTransport", writer.transport
            opens = kernel.snmp()["Tcp"]["PassiveOpens"]
            writer.write(b"x" * 100000)
            got = await reader.readexactly(100000)
            writer.close()
            await writer.wait_closed()
            server.close()
            await server.wait_closed()
            return len(got), opens

        with lkl.boot() as kernel, lkl.patched(kernel):
            n, opens = la.run(asyncio.wait_for(main(kernel), 30))
        print(n, opens >= 1)
    """, timeout=60)
    assert out.split() == ["100000", "True"]

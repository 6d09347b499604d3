"""asyncio streams over the kernel's TCP (lkl.asyncio).

Every test runs twice: on the stock asyncio loop (lkl sockets seen through
their host eventfds) and on lkl.asyncio.EventLoop (waiting in the kernel).
"""

import asyncio
import os

import pytest
from helpers import echo_stream, stream_round_trip

import lkl
import lkl.asyncio as lkl_asyncio

_loop_kind = "stock"


@pytest.fixture(autouse=True, params=["stock", "kernel"])
def loop_kind(request):
    """Which event loop run() uses for this test."""
    global _loop_kind
    _loop_kind = request.param
    yield request.param
    _loop_kind = "stock"


def run(coro, timeout=60):
    runner = lkl_asyncio.run if _loop_kind == "kernel" else asyncio.run
    return runner(asyncio.wait_for(coro, timeout))


def test_asyncio_echo_server_and_clients(kernel):
    async def client(port, seed):
        reader, writer = await lkl_asyncio.open_connection(kernel, "127.0.0.1", port)
        assert isinstance(reader, asyncio.StreamReader)
        assert isinstance(writer, asyncio.StreamWriter)
        return await stream_round_trip(reader, writer, seed, 1 << 20, 16384)

    async def main():
        server = await lkl_asyncio.start_server(kernel, echo_stream, "127.0.0.1", 0)
        assert server.is_serving()
        port = server.sockets[0].getsockname()[1]
        async with server:
            results = await asyncio.gather(*(client(port, i) for i in range(16)))
        assert not server.is_serving()
        return results

    assert run(main()) == [True] * 16


def test_asyncio_lines_and_extra_info(kernel):
    async def handle(reader, writer):
        peer = writer.get_extra_info("peername")
        sock = writer.get_extra_info("socket")
        assert isinstance(sock, lkl.Socket)
        async for line in reader:
            writer.write(f"{peer[0]} says {line.decode()}".encode())
        writer.close()

    async def main():
        async with await lkl_asyncio.start_server(kernel, handle, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await lkl_asyncio.open_connection(kernel, "127.0.0.1", port)
            assert writer.get_extra_info("peername") == ("127.0.0.1", port)
            writer.writelines([b"one\n", b"two\n"])
            await writer.drain()
            assert await reader.readline() == b"127.0.0.1 says one\n"
            assert await reader.readline() == b"127.0.0.1 says two\n"
            writer.write_eof()
            assert await reader.read() == b""
            writer.close()
            await writer.wait_closed()

    run(main())


def test_asyncio_ipv6_and_refused(kernel):
    async def main():
        async with await lkl_asyncio.start_server(kernel, echo_stream, "::1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await lkl_asyncio.open_connection(kernel, "::1", port)
            writer.write(b"v6")
            assert await reader.readexactly(2) == b"v6"
            writer.close()
            await writer.wait_closed()
        with pytest.raises(ConnectionRefusedError):
            await lkl_asyncio.open_connection(kernel, "127.0.0.1", port)

    run(main())


def test_asyncio_writer_backpressure_does_not_spin(kernel):
    """A writer blocked on a peer that does not read waits without spinning."""
    async def main():
        release = asyncio.Event()

        async def slow(reader, writer):
            await release.wait()
            total = 0
            while data := await reader.read(1 << 20):
                total += len(data)
            writer.write(str(total).encode())
            writer.close()

        async with await lkl_asyncio.start_server(kernel, slow, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await lkl_asyncio.open_connection(kernel, "127.0.0.1", port)
            blob = os.urandom(8 << 20)
            writer.write(blob)
            assert writer.transport.get_write_buffer_size() > 0   # the kernel is full
            cpu0 = os.times()
            try:
                await asyncio.wait_for(writer.drain(), 0.5)
            except asyncio.TimeoutError:
                pass
            cpu = os.times()
            busy = (cpu.user - cpu0.user) + (cpu.system - cpu0.system)
            assert busy < 0.35, f"drain() used {busy:.2f} s of CPU in 0.5 s: spinning"
            release.set()
            await writer.drain()
            writer.write_eof()
            assert int(await reader.read()) == len(blob)
            writer.close()
            await writer.wait_closed()

    run(main())


def test_asyncio_server_close_and_serve_forever(kernel):
    async def main():
        server = await lkl_asyncio.start_server(kernel, echo_stream, "127.0.0.1", 0,
                                                start_serving=False)
        assert not server.is_serving()
        task = asyncio.create_task(server.serve_forever())
        await asyncio.sleep(0)
        assert server.is_serving()
        port = server.sockets[0].getsockname()[1]
        reader, writer = await lkl_asyncio.open_connection(kernel, "127.0.0.1", port)
        writer.write(b"x")
        assert await reader.readexactly(1) == b"x"
        task.cancel()
        writer.close()                 # serve_forever's wait_closed waits for it
        with pytest.raises(asyncio.CancelledError):
            await task
        assert server.sockets == ()
        await server.wait_closed()

    run(main())


def test_proxy_between_the_kernel_and_the_host_stack(kernel):
    """The paper's Figure 3 in one event loop: connections terminated by
    the kernel's TCP, relayed to a backend over the host's own TCP (host
    loopback), and back.  Both kinds of socket share one asyncio loop."""

    async def pipe(reader, writer):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.write_eof()

    async def relay(reader, writer):
        # A kernel connection in, a host connection out.
        host_reader, host_writer = await asyncio.open_connection("127.0.0.1", backend_port)
        await asyncio.gather(pipe(reader, host_writer), pipe(host_reader, writer))
        for w in (host_writer, writer):
            w.close()
            await w.wait_closed()

    async def client(port, seed):
        reader, writer = await lkl_asyncio.open_connection(kernel, "127.0.0.1", port)
        return await stream_round_trip(reader, writer, seed, 4 << 20, 65536)

    async def main():
        nonlocal backend_port
        backend = await asyncio.start_server(echo_stream, "127.0.0.1", 0)   # the host stack
        backend_port = backend.sockets[0].getsockname()[1]
        before = kernel.snmp()["Tcp"]["PassiveOpens"]
        proxy = await lkl_asyncio.start_server(kernel, relay, "127.0.0.1", 0)
        port = proxy.sockets[0].getsockname()[1]
        async with backend, proxy:
            results = await asyncio.gather(*(client(port, i) for i in range(4)))
        # The kernel accepted the four client connections itself.
        assert kernel.snmp()["Tcp"]["PassiveOpens"] - before == 4
        return results

    backend_port = 0
    assert run(main(), timeout=90) == [True] * 4

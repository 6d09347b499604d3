"""asyncio on the kernel's TCP.

- :class:`EventLoop` (``lkl.asyncio.run(main())``, :class:`EventLoopPolicy`):
  asyncio's selector loop waiting in the kernel's own epoll, so readiness
  of lkl sockets costs no host thread hop; host fds (pipes, subprocesses,
  signals, host sockets) are served as by the stock loop.
- :func:`open_connection` / :func:`start_server`: asyncio streams (the
  standard StreamReader/StreamWriter, with ``ssl=``) over lkl sockets, on
  this loop or on any selector loop (the stock one, uvloop).
"""

from lkl.asyncio.loop import (
    EventLoop,
    EventLoopPolicy,
    KernelSelector,
    is_lkl_socket,
    kernel_socket,
    new_event_loop,
    run,
)
from lkl.asyncio.streams import LklTransport, Server, open_connection, ssl_protocol, start_server

__all__ = [
    "EventLoop",
    "EventLoopPolicy",
    "KernelSelector",
    "LklTransport",
    "Server",
    "is_lkl_socket",
    "kernel_socket",
    "new_event_loop",
    "open_connection",
    "run",
    "ssl_protocol",
    "start_server",
]

"""lkl: the real Linux kernel (6.12) as a library, driven from Python.

Boot a kernel inside this process and use its TCP/IP stack through the
standard library's socket API::

    import lkl

    with lkl.boot(memory="64M") as k:
        srv = k.socket(lkl.AF_INET, lkl.SOCK_STREAM)
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        ...
        print(k.snmp()["Tcp"]["ActiveOpens"])

- Lifecycle: :func:`boot`, :func:`kernel`, :class:`Kernel` (one kernel per
  process; it cannot boot again after a halt).
- Files and counters: ``Kernel.read_text``, ``sysctl``, ``snmp``...
- Sockets: :class:`Socket` (the stdlib socket API), :func:`select`,
  :func:`poll`, the kernel's constants (``AF_*``, ``SOCK_*``, ``SO_*``...),
  and :mod:`lkl.asyncio` (an event loop that waits in the kernel, asyncio
  streams).
- Network devices: :class:`Nic` on a :class:`Tap`, :class:`RawSocket` or
  :class:`Pipe` backend, with :class:`Offload` bits (``boot(nics=...)``,
  ``Kernel.add_nic``, ``add_route``, ``add_neighbor``, ``set_qdisc``).
- Errors: the standard library's ``OSError`` subclasses, and
  :class:`KernelError` (an ``OSError`` too: errno ENODEV) when no kernel
  can serve a call.
"""

from lkl import constants
from lkl._kernel import Kernel, KernelError, boot, kernel
from lkl._lkl import Poll, errno_error, poll, select, syscall_numbers
from lkl._socket import Socket
from lkl.constants import *  # noqa: F403  (the kernel's AF_*, SOCK_*, ... values)
from lkl.net.nic import Backend, Nic, Offload, Pipe, RawSocket, Tap

__version__ = "0.1.0"

__all__ = [
    "boot",
    "kernel",
    "Kernel",
    "KernelError",
    "Socket",
    "select",
    "poll",
    "Poll",
    "errno_error",
    "syscall_numbers",
    "Nic",
    "Offload",
    "Backend",
    "Tap",
    "RawSocket",
    "Pipe",
    *constants.__annotations__,  # its declared names (see lkl/constants.py)
]

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
- Running unmodified code: ``lkl.patch(kernel)`` / ``with lkl.patched():``
  put the standard library's sockets on the kernel (:mod:`lkl.socket`).
- Errors: the standard library's ``OSError`` subclasses, and
  :class:`KernelError` (an ``OSError`` too: errno ENODEV) when no kernel
  can serve a call.
"""

# lkl.patch is a callable module (lkl.patch(kernel)); lkl.socket the stdlib's class.
from lkl import constants, patch, socket  # noqa: F401  (socket: lkl.socket)
from lkl._kernel import Kernel, KernelError, boot, kernel
from lkl._lkl import Poll, errno_error, poll, select, syscall_numbers
from lkl._socket import Socket
from lkl.constants import *  # noqa: F403  (the kernel's AF_*, SOCK_*, ... values)
from lkl.net.nic import Backend, Nic, Offload, Pipe, RawSocket, Tap
from lkl.patch import patched

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
    "patch",
    "patched",
    *constants.__annotations__,  # its declared names (see lkl/constants.py)
]

# lkl.asyncio is an attribute after a plain ``import lkl`` (not in __all__:
# it would shadow the stdlib's asyncio); lkl.ssl and lkl.resolver load
# OpenSSL and dnspython, so they are imported on demand.
from lkl import asyncio as asyncio

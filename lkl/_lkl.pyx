# cython: language_level=3, auto_pickle=False, embedsignature=True
"""The lkl extension: the Linux kernel as a library, at the C level.

One extension module, made of several included files (like uvloop):

- ``_errors.pxi``: kernel errnos to the standard library's OSError subclasses;
- ``_core.pxi``: boot, halt, raw syscalls, the console, constant tables;
- ``_addr.pxi``: socket addresses, as the standard library spells them;
- ``_socket.pxi``: the socket type's kernel calls (``_SocketBase``);
- ``_select.pxi``: ``select()`` and ``poll()`` over kernel sockets;
- ``_epoll.pxi``: waiting in a kernel epoll (lkl.asyncio.EventLoop's engine);
- ``_net.pxi``: virtio-net devices and their backends (lkl/net/nic.py wraps them);
- ``_relay.pxi``: the proxy's byte mover, C loops without the GIL (lkl/_relay.c);
- ``_control.pxi``: the control endpoint and packet capture (lkl/control.py);
- ``_zerocopy.pxi``: kernel-visible buffers for MSG_ZEROCOPY sends;
- ``_zerocopy_rx.pxi``: zero-copy receive, views of the kernel's skbs.

The public, documented API is the ``lkl`` package; this module is its engine.
"""

cimport cython
from cpython.buffer cimport (PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release,
                             PyObject_GetBuffer)
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.exc cimport PyErr_CheckSignals
from cpython.pythread cimport PyThread_get_thread_ident
from libc.stdint cimport uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset, strlen
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from lkl.includes.connect cimport *
from lkl.includes.glue cimport *
from lkl.includes.lkl cimport *
from lkl.includes.netdev cimport *
from lkl.includes.control cimport *

import errno as _errno
import math as _math
import os as _os
import socket as _hostsocket
import threading as _threading

include "_errors.pxi"
include "_zerocopy_rx.pxi"
include "_core.pxi"
include "_addr.pxi"
include "_socket.pxi"
include "_select.pxi"
include "_epoll.pxi"
include "_net.pxi"
include "_relay.pxi"
include "_control.pxi"
include "_zerocopy.pxi"

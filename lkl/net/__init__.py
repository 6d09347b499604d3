"""Network devices and their configuration in the kernel.

A :class:`Nic` is a virtio-net device served by this process and driven by
the kernel's own virtio_net driver; its frames go to a backend::

    import lkl

    nic = lkl.Nic(lkl.Tap("tap0"), offload=lkl.Offload.LARGE_SEGMENTS)
    with lkl.boot(nics=[nic]) as k:
        nic.up()
        nic.add_address("10.0.0.2/24")
        k.add_route("default", via="10.0.0.1")

Devices can also be hot-added after boot with ``Kernel.add_nic``.  The
package's parts:

- :mod:`lkl.net.nic`: the devices (Nic, its backends, Offload bits);
- :mod:`lkl.net.rtnl`: rtnetlink and interface ioctls, the one way the
  package configures the kernel's network (addresses, routes, neighbours,
  links, ethtool features);
- :mod:`lkl.net.tc`: qdiscs on egress and ingress (also ``lkl.tc``).
"""

from lkl.net.nic import Backend, Nic, Offload, Pipe, RawSocket, Tap
from lkl.net.rtnl import add_neighbor, add_route

__all__ = ["Offload", "Backend", "Tap", "RawSocket", "Pipe", "Nic", "add_route", "add_neighbor"]

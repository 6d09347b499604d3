"""``lkl.proxy``: a sandboxed TCP/TLS terminator for untrusted guests.

The paper's application (its Figure 3): guests' connections are
terminated by the lkl kernel's TCP, on a TAP (or raw socket) NIC, and
relayed to backends over the host's own stack, so hostile packets are
parsed by this process, which confines itself with seccomp, not by the
host kernel.  ``python -m lkl proxy`` is the command line
(:mod:`lkl.cli.proxy`); :class:`Proxy` and :func:`serve` are the library.
"""

from lkl.proxy.config import ProxyConfig, add_proxy_options, proxy_config
from lkl.proxy.server import Proxy, serve

__all__ = ["Proxy", "ProxyConfig", "add_proxy_options", "proxy_config", "serve"]

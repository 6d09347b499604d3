"""Network namespaces for the benchmarks (pyroute2).

Every TAP or veth device a benchmark uses lives in a namespace created
here and deleted when its with-block ends, so no packet can leave them.
"""

from __future__ import annotations

import os

from pyroute2 import NetNS, netns


class Namespace:
    """A network namespace for the length of a with-block, loopback up."""

    def __init__(self, prefix: str, tag: str) -> None:
        self.name = f"{prefix}-{tag}-{os.getpid()}"

    def __enter__(self) -> Namespace:
        netns.create(self.name)
        with NetNS(self.name) as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
        return self

    def __exit__(self, *exc: object) -> None:
        netns.remove(self.name)

    def argv(self, argv: list[str], cpu: int | None = None) -> list[str]:
        """argv run inside the namespace, confined to cpu if given."""
        pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
        return ["ip", "netns", "exec", self.name, *pin, *argv]

    def address(self, ifname: str, cidr: str) -> None:
        """Put cidr on ifname and bring it up."""
        addr, prefix = cidr.split("/")
        with NetNS(self.name) as ipr:
            index = ipr.link_lookup(ifname=ifname)[0]
            ipr.addr("add", index=index, address=addr, prefixlen=int(prefix))
            ipr.link("set", index=index, state="up")

"""Traffic control inside the kernel: qdiscs on egress and on ingress.

A qdisc is given the way tc(8) writes it, kind first, then its options::

    k.set_qdisc(nic, "fq_codel")
    k.set_qdisc(nic, "netem delay 1ms loss 5% reorder 25% duplicate 1% corrupt 1%")
    k.set_qdisc(nic, "netem loss 2%", ingress=True)

Egress qdiscs replace the device's root qdisc.  The kernel queues only
what it sends, so an ingress qdisc is built the way tc-mirred(8) and
ifb(4) describe: an IFB device (``ifb4<name>``, or ``ifb#<ifindex>`` for a
name too long for that) takes everything that
arrives on the device (an ``ingress`` qdisc with a match-all filter whose
mirred action redirects to it) and carries the qdisc as its root; the
packets then continue up the stack as if they had arrived on the device.

The ingress hook runs after GRO, and GRO validates checksums: to have
netem's ``corrupt`` on ingress act like corruption on the wire (caught by
the receiver's checksum), turn GRO off (``Nic.set_kernel_offloads(gro=False)``).
Everything is rtnetlink inside the kernel (lkl.net.rtnl); pyroute2's
classes encode it.
"""

from __future__ import annotations

import re
import socket
from typing import TYPE_CHECKING, Any

from lkl import _lkl
from lkl.net import rtnl

if TYPE_CHECKING:
    from lkl._kernel import Kernel
    from lkl.net.rtnl import Device

__all__ = ["parse_qdisc", "set_qdisc", "del_qdisc", "qdiscs", "qdisc_stats", "ifb_name"]

_K = _lkl.internal_constants
_TC_H_ROOT = _K["TC_H_ROOT"]
_TC_H_INGRESS = _K["TC_H_INGRESS"]
# The ingress qdisc's handle, ffff: (as tc(8) gives it).
_INGRESS_HANDLE = 0xFFFF0000
# An IFB device's name: ifb4<name>, or by index where that is too long.
_IFB_PREFIX = "ifb4"
_IFB_BY_INDEX = "ifb#"

# Kinds that take no options here (the kernel's defaults).
_PLAIN = ("fq", "fq_codel", "pfifo_fast", "prio", "noqueue", "sfq", "ingress")
# Kinds whose only option is "limit N" (packets for pfifo, bytes for bfifo).
_LIMIT_ONLY = ("pfifo", "bfifo")

_TIME_UNITS = {"s": 1_000_000.0, "sec": 1_000_000.0, "ms": 1000.0, "msec": 1000.0,
               "us": 1.0, "usec": 1.0}
_RATE_UNITS = {"bit": 1, "kbit": 1000, "mbit": 1000**2, "gbit": 1000**3,
               "bps": 8, "kbps": 8000, "mbps": 8 * 1000**2, "gbps": 8 * 1000**3}


def _time_us(text: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([a-z]*)", text)
    if not m or m.group(2) not in {**_TIME_UNITS, "": 1}:
        raise ValueError(f"bad time {text!r}: use e.g. '1ms', '500us', '0.5s'")
    return int(float(m.group(1)) * _TIME_UNITS.get(m.group(2), 1.0))


def _percent(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)%?", text)
    if not m or float(m.group(1)) > 100:
        raise ValueError(f"bad percentage {text!r}: use e.g. '5%'")
    return float(m.group(1))


def _rate_bytes(text: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([a-z]+)", text.lower())
    if not m or m.group(2) not in _RATE_UNITS:
        raise ValueError(f"bad rate {text!r}: use e.g. '100mbit', '1gbit'")
    return int(float(m.group(1)) * _RATE_UNITS[m.group(2)] / 8)


def _count(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise ValueError(f"bad count {text!r}: a positive whole number")
    return int(text)


def _is_number(text: str | None) -> bool:
    return text is not None and re.fullmatch(r"\d+(?:\.\d+)?[a-z%]*", text) is not None


def _netem_options(words: list[str]) -> dict[str, Any]:
    """tc-netem(8) options -> pyroute2's sched_netem keywords."""
    opts: dict[str, Any] = {"limit": 1000}
    i = 0

    def value() -> str:
        nonlocal i
        if i >= len(words):
            raise ValueError(f"netem option {words[i - 1]!r} needs a value")
        i += 1
        return words[i - 1]

    def optional() -> str | None:
        """An optional second number (jitter, correlation), if one follows."""
        return value() if i < len(words) and _is_number(words[i]) else None

    while i < len(words):
        word = words[i]
        i += 1
        if word == "delay":
            opts["delay"] = _time_us(value())
            if (jitter := optional()) is not None:
                opts["jitter"] = _time_us(jitter)
        elif word == "loss":
            if i < len(words) and words[i] == "random":
                i += 1
            opts["loss"] = _percent(value())
        elif word == "duplicate":
            opts["duplicate"] = _percent(value())
        elif word == "corrupt":
            opts["prob_corrupt"] = _percent(value())
        elif word == "reorder":
            opts["prob_reorder"] = _percent(value())
            if (corr := optional()) is not None:
                opts["corr_reorder"] = _percent(corr)
        elif word == "limit":
            opts["limit"] = _count(value())
        elif word == "rate":
            opts["rate"] = _rate_bytes(value())
        else:
            raise ValueError(f"unknown netem option {word!r} (delay, loss, duplicate, "
                             "corrupt, reorder, limit, rate)")
    if opts.get("prob_reorder") and not opts.get("delay"):
        raise ValueError("netem reorder needs a delay (the packets not reordered wait)")
    return opts


def parse_qdisc(spec: str) -> tuple[str, dict[str, Any]]:
    """Split a tc-style qdisc spec into its kind and pyroute2 keywords.

    Raises ValueError for a malformed spec or an option this module does
    not know; an unknown kind is left to the kernel (OSError ENOENT).
    """
    if not isinstance(spec, str):
        raise TypeError(f"qdisc spec must be a str, not {type(spec).__name__}")
    words = spec.split()
    if not words or not re.fullmatch(r"[a-z_]+", words[0]):
        raise ValueError(f"qdisc spec must start with a kind such as 'fq_codel', not {spec!r}")
    kind, rest = words[0], words[1:]
    if kind == "netem":
        return kind, _netem_options(rest)
    if kind in _LIMIT_ONLY:
        if not rest:
            return kind, {}
        if len(rest) != 2 or rest[0] != "limit":
            raise ValueError(f"{kind} takes only 'limit N', not {' '.join(rest)!r}")
        return kind, {"limit": _count(rest[1])}
    if rest:
        raise ValueError(f"options for {kind!r} are not supported here: {' '.join(rest)!r}")
    return kind, {}


def _tc_message(kind: str, ifindex: int, parent: int, handle: int = 0,
                info: int = 0, options: dict[str, Any] | None = None) -> Any:
    from pyroute2.netlink.rtnl.tcmsg import tcmsg  # type: ignore[import-untyped]

    msg = tcmsg()
    msg["family"] = 0
    msg["index"] = ifindex
    msg["handle"] = handle
    msg["parent"] = parent
    msg["info"] = info
    attrs: list[tuple[str, Any]] = [("TCA_KIND", kind)]
    if options is not None:
        attrs.append(("TCA_OPTIONS", options))
    msg["attrs"] = attrs
    return msg


def _qdisc_options(kind: str, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    if not kwargs:
        return None
    from pyroute2.netlink.rtnl.tcmsg import plugins  # type: ignore[import-untyped]

    return plugins[kind].get_parameters(dict(kwargs))


def _replace_root(k: Kernel, ifindex: int, spec: str) -> None:
    kind, kwargs = parse_qdisc(spec)
    msg = _tc_message(kind, ifindex, _TC_H_ROOT, options=_qdisc_options(kind, kwargs))
    rtnl.request(k, msg, _K["RTM_NEWQDISC"], rtnl.REPLACE)


def _ifb_for(k: Kernel, ifindex: int) -> int:
    """Return the ifindex of the IFB device for ``ifindex``'s ingress qdisc.

    Made on first use and always up (the IFB driver's own ifb0 and ifb1 are
    left alone).
    """
    name = _ifb_name(k, ifindex)
    index = rtnl.lookup(k, name)
    if index is None:
        index = rtnl.new_link(k, name, "ifb")
    rtnl.set_up(k, name, True)
    return index


def _redirect_ingress(k: Kernel, ifindex: int, ifb: int) -> None:
    """Redirect what arrives on ``ifindex`` to ``ifb``, once.

    An ingress qdisc, a match-all filter and a mirred action.
    """
    if any(idx == ifindex and parent == _TC_H_INGRESS and kind == "ingress"
           for idx, parent, kind in qdiscs(k, ifindex)):
        return
    rtnl.request(k, _tc_message("ingress", ifindex, _TC_H_INGRESS, handle=_INGRESS_HANDLE),
                 _K["RTM_NEWQDISC"], rtnl.NEW)
    from pyroute2.netlink.rtnl.tcmsg import cls_matchall  # type: ignore[import-untyped]

    options = cls_matchall.get_parameters({"action": {
        "kind": "mirred", "direction": "egress", "action": "redirect", "ifindex": ifb}})
    # tcm_info: priority 1, protocol ETH_P_ALL in network order.
    msg = _tc_message("matchall", ifindex, _INGRESS_HANDLE,
                      info=(1 << 16) | socket.htons(_K["ETH_P_ALL"]), options=options)
    rtnl.request(k, msg, _K["RTM_NEWTFILTER"], rtnl.NEW)


def set_qdisc(k: Kernel, dev: Device, spec: str, ingress: bool = False) -> None:
    """Set ``dev``'s qdisc from a tc-style ``spec`` (see Kernel.set_qdisc)."""
    parse_qdisc(spec)  # bad specs fail before anything changes
    ifindex = rtnl.ifindex(k, dev)
    if not ingress:
        _replace_root(k, ifindex, spec)
        return
    ifb = _ifb_for(k, ifindex)
    _replace_root(k, ifb, spec)
    _redirect_ingress(k, ifindex, ifb)


def ifb_name(name: str, ifindex: int) -> str:
    """The IFB device for the ingress of interface ``name`` (index ``ifindex``).

    ``ifb4<name>`` where that fits in an interface name (15 characters),
    else ``ifb#<ifindex>``: two long names never share one by truncation.
    """
    ifb = _IFB_PREFIX + name
    if len(ifb) <= 15:
        return ifb
    return f"{_IFB_BY_INDEX}{ifindex}"


def _ifb_name(k: Kernel, ifindex: int) -> str:
    return ifb_name(rtnl.ifname(k, ifindex), ifindex)


def del_qdisc(k: Kernel, dev: Device, ingress: bool = False) -> None:
    """Undo set_qdisc (see Kernel.del_qdisc); nothing to undo is no error."""
    ifindex = rtnl.ifindex(k, dev)
    mine = [m for m in _dump(k) if m["index"] == ifindex]
    if not ingress:
        # The kernel puts its default qdisc back; a default root has no
        # handle and cannot be deleted, so only one set_qdisc put there.
        root = next((m for m in mine if m["parent"] == _TC_H_ROOT), None)
        if root is not None and root["handle"]:
            rtnl.request(k, _tc_message(root.get_attr("TCA_KIND"), ifindex, _TC_H_ROOT),
                         _K["RTM_DELQDISC"], rtnl.NLM_F_ACK)
        return
    if any(m["parent"] == _TC_H_INGRESS for m in mine):
        # Its filter and mirred action go with it.
        rtnl.request(k, _tc_message("ingress", ifindex, _TC_H_INGRESS,
                                    handle=_INGRESS_HANDLE),
                     _K["RTM_DELQDISC"], rtnl.NLM_F_ACK)
    ifb = rtnl.lookup(k, _ifb_name(k, ifindex))
    if ifb is not None:
        rtnl.del_link(k, ifb)


def _dump(k: Kernel) -> list[Any]:
    from pyroute2.netlink.rtnl.tcmsg import tcmsg  # type: ignore[import-untyped]

    req = tcmsg()
    req["family"] = 0
    out = []
    for raw in rtnl.request(k, req, _K["RTM_GETQDISC"], rtnl.NLM_F_DUMP):
        m = tcmsg(raw)
        m.decode()
        out.append(m)
    return out


def qdiscs(k: Kernel, dev: Device | None = None) -> list[tuple[int, int, str]]:
    """The kernel's qdiscs as ``(ifindex, parent, kind)``, for ``dev`` or all."""
    want = None if dev is None else rtnl.ifindex(k, dev)
    return [(m["index"], m["parent"], m.get_attr("TCA_KIND")) for m in _dump(k)
            if want is None or m["index"] == want]


def qdisc_stats(k: Kernel, dev: Device, ingress: bool = False) -> dict[str, Any]:
    """Return the counters of ``dev``'s root qdisc, or of its ingress one.

    Keys: kind, packets, bytes, drops, overlimits, qlen, backlog.  The
    ingress qdisc is the root of the device's IFB (see ifb_name); drops
    count what netem's loss threw away.
    """
    ifindex = rtnl.ifindex(k, dev)
    if ingress:
        ifindex = rtnl.ifindex(k, _ifb_name(k, ifindex))
    for m in _dump(k):
        if m["index"] == ifindex and m["parent"] == _TC_H_ROOT:
            st = m.get_attr("TCA_STATS") or {}
            return {"kind": m.get_attr("TCA_KIND"), "packets": st.get("packets", 0),
                    "bytes": st.get("bytes", 0), "drops": st.get("drop", 0),
                    "overlimits": st.get("overlimits", 0), "qlen": st.get("qlen", 0),
                    "backlog": st.get("backlog", 0)}
    raise FileNotFoundError(f"no root qdisc on ifindex {ifindex}")

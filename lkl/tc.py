"""Traffic control inside the kernel, under its first name (see lkl.net.tc)."""

from lkl.net.tc import del_qdisc, ifb_name, parse_qdisc, qdisc_stats, qdiscs, set_qdisc

__all__ = ["parse_qdisc", "set_qdisc", "del_qdisc", "qdiscs", "qdisc_stats", "ifb_name"]

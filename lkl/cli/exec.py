r"""``lkl exec``: run an unmodified program on the lkl stack.

The program runs with ``LD_PRELOAD=liblkl-preload.so``: before its
``main``, the library boots a kernel inside it, attaches the NIC and
configures it from ``LKL_*`` variables, which this command sets from its
options; the program's AF_INET/AF_INET6/AF_NETLINK/AF_PACKET sockets are
then that kernel's.  A bad setting ends the program with a message and
exit status 2 before ``main``.

    lkl exec --tap tap0 --address 10.0.0.2/24 --gateway 10.0.0.1 \\
        --offload LARGE_SEGMENTS -- iperf3 -c 10.0.0.1

Until the ``lkl`` command wires it in, ``python -m lkl.cli.exec`` works
alike.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

LIBRARY_NAME = "liblkl-preload.so"
OFFLOAD_PRESETS = ("NONE", "CHECKSUM", "LARGE_SEGMENTS", "BIG_PACKETS")


def preload_library() -> Path:
    """Where liblkl-preload.so is.

    ``$LKL_PRELOAD_LIBRARY``, else beside the package, else in the source
    tree's ``build/lib``.
    """
    explicit = os.environ.get("LKL_PRELOAD_LIBRARY")
    if explicit:
        return Path(explicit)
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / LIBRARY_NAME,
                      package.parent / "build" / "lib" / LIBRARY_NAME):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"{LIBRARY_NAME} not found (build it with `make lib`, or set LKL_PRELOAD_LIBRARY)")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``exec`` subcommand to an ``add_subparsers()`` object."""
    parser = subparsers.add_parser(
        "exec", help="run an unmodified program on the lkl stack (LD_PRELOAD)",
        description=__doc__.split("\n\n")[1] if __doc__ else None)
    configure_parser(parser)
    return parser


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """The options of ``exec`` (also used by ``python -m lkl.cli.exec``)."""
    parser.add_argument("--memory", help="kernel RAM, e.g. 128M (LKL_MEMORY)")
    parser.add_argument("--syscall-mode", choices=("shadow", "direct"),
                        help="how syscalls enter the kernel (LKL_SYSCALL_MODE)")
    nic = parser.add_mutually_exclusive_group()
    nic.add_argument("--tap", metavar="NAME", help="a TAP device as the NIC")
    nic.add_argument("--raw", metavar="IFNAME",
                     help="an existing interface through AF_PACKET as the NIC")
    nic.add_argument("--nic", metavar="tap:NAME|raw:IFNAME",
                     help="the NIC, spelled as python -m lkl run spells it")
    parser.add_argument("--address", action="append", default=[], metavar="CIDR",
                        help="an address of the NIC, e.g. 10.0.0.2/24 (repeatable)")
    parser.add_argument("--gateway", action="append", default=[], metavar="ADDR",
                        help="a default route via ADDR, IPv4 and/or IPv6")
    parser.add_argument("--offload", help="NONE, CHECKSUM, LARGE_SEGMENTS, "
                        "BIG_PACKETS or virtio-net feature bits")
    parser.add_argument("--mtu", type=int)
    parser.add_argument("--mac", help="the NIC's MAC address")
    parser.add_argument("--sysctl", action="append", default=[], metavar="KEY=VALUE",
                        help="a kernel sysctl, e.g. net.ipv4.tcp_congestion_control=bbr")
    parser.add_argument("--nameserver", action="append", default=[], metavar="ADDR",
                        help="DNS server for getaddrinfo (default: /etc/resolv.conf's)")
    parser.add_argument("--config", metavar="FILE", help="a JSON configuration (LKL_CONFIG)")
    parser.add_argument("--control", metavar="NAME",
                        help="serve the kernel to `python -m lkl attach NAME` (LKL_CONTROL)")
    parser.add_argument("--debug", action="store_true", help="the kernel's console on stderr")
    parser.add_argument("--keep-preload", action="store_true",
                        help="programs the program runs get kernels of their own too")
    parser.add_argument("program", help="the program to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")


def environment(args: argparse.Namespace,
                base: dict[str, str] | None = None) -> dict[str, str]:
    """The program's environment.

    ``base`` (default ``os.environ``) without its ``LKL_*`` variables, with
    ``LD_PRELOAD`` and the ``LKL_*`` settings of ``args``.
    """
    env = dict(os.environ if base is None else base)
    for key in [k for k in env if k.startswith("LKL_") and k != "LKL_PRELOAD_LIBRARY"]:
        del env[key]
    nic_spec = getattr(args, "nic", None)
    if nic_spec:
        kind, _, name = nic_spec.partition(":")
        if kind not in ("tap", "raw") or not name:
            raise ValueError(f"--nic expects tap:NAME or raw:IFNAME, not {nic_spec!r}")
        args.tap, args.raw = (name, None) if kind == "tap" else (None, name)
    if args.offload and args.offload.upper() in OFFLOAD_PRESETS:
        args.offload = args.offload.upper()
    for sysctl in args.sysctl:
        if "=" not in sysctl or sysctl.startswith("="):
            raise ValueError(f"--sysctl expects KEY=VALUE, not {sysctl!r}")
        if ";" in sysctl:
            raise ValueError(f"--sysctl: one KEY=VALUE at a time, not {sysctl!r}")
    settings = {
        "LKL_MEMORY": args.memory,
        "LKL_SYSCALL_MODE": args.syscall_mode,
        "LKL_NIC": f"tap:{args.tap}" if args.tap else f"raw:{args.raw}" if args.raw else None,
        "LKL_ADDRESS": ",".join(args.address) or None,
        "LKL_GATEWAY": ",".join(args.gateway) or None,
        "LKL_OFFLOAD": args.offload,
        "LKL_MTU": str(args.mtu) if args.mtu is not None else None,
        "LKL_MAC": args.mac,
        "LKL_SYSCTL": ";".join(args.sysctl) or None,
        "LKL_NAMESERVER": ",".join(args.nameserver) or None,
        "LKL_CONTROL": args.control,
        "LKL_CONFIG": args.config,
        "LKL_DEBUG": "1" if args.debug else None,
        "LKL_KEEP_PRELOAD": "1" if args.keep_preload else None,
    }
    env.update({k: v for k, v in settings.items() if v is not None})
    library = str(preload_library())
    env["LD_PRELOAD"] = library  # only ours: a second preload could take the calls first
    return env


def main(args: argparse.Namespace) -> int:
    """Replace this process with the program (``os.execvpe``).

    Returns 2 (bad options) or 127 (no such program) with a message if it
    cannot start.
    """
    try:
        env = environment(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"lkl exec: {exc}", file=sys.stderr)
        return 2
    argv = [args.program, *args.args]
    try:
        os.execvpe(args.program, argv, env)
    except OSError as exc:
        print(f"lkl exec: {args.program}: {exc.strerror}", file=sys.stderr)
        return 127
    raise AssertionError("unreachable")


def _standalone() -> NoReturn:
    parser = argparse.ArgumentParser(prog="python -m lkl.cli.exec",
                                     description=__doc__.split("\n\n")[1] if __doc__ else None)
    configure_parser(parser)
    sys.exit(main(parser.parse_args()))


if __name__ == "__main__":
    _standalone()

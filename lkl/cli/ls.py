"""``python -m lkl ls``: the live kernels of this user that serve a control socket.

One line each: name, pid, uptime, interfaces.  Sockets of processes that
died are removed on the way (see lkl.control.instances).
"""

from __future__ import annotations

import argparse
import sys

from lkl import control

__all__ = ["add_parser", "main"]


def _uptime(seconds: float) -> str:
    s = int(seconds)
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s // 60 % 60:02d}m"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Add the ``ls`` subcommand to an argparse subparsers object."""
    p = subparsers.add_parser("ls", help="list the live kernels serving a control socket",
                              description=__doc__)
    p.set_defaults(main=main)
    return p


def main(args: argparse.Namespace) -> int:
    """Print the instances; 0."""
    rows = control.instances()
    print(f"{'NAME':<20} {'PID':>8} {'UPTIME':>8}  INTERFACES")
    for inst in rows:
        print(f"{inst.name:<20} {inst.pid:>8} {_uptime(inst.uptime):>8}  "
              f"{','.join(inst.interfaces)}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m lkl.cli.ls")
    sys.exit(main(parser.parse_args()))

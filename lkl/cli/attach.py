"""``python -m lkl attach NAME ...``: diagnose a live kernel from outside its process.

- ``attach NAME -- CMD ARGS...``: run an unmodified tool (``ip -s link``,
  ``ss -tnie``, ``tc -s qdisc``, ``sysctl -w ...``, ``nstat -az``,
  ``ethtool -k eth0``, ``cat /proc/net/snmp``) with liblkl-attach.so
  preloaded: its netlink and inet sockets and its /proc/net, /proc/sys and
  /sys/class/net files are the kernel's (see native/attach/attach.c).
- ``attach NAME capture IFNAME -w FILE.pcap [-c N] [-s SNAPLEN] [-t SECONDS]``:
  the serving process captures IFNAME's frames into FILE (the client
  opens it and passes the fd) until N frames, SECONDS or Ctrl-C.
- ``attach NAME``: an interactive console over the kernel's procfs and
  sysfs (lkl.console).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from lkl import control

__all__ = ["add_parser", "main"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Add the ``attach`` subcommand to an argparse subparsers object."""
    p = subparsers.add_parser("attach", help="run a tool, a capture or a console against a "
                              "live kernel", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    _arguments(p)
    p.set_defaults(main=main)
    return p


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="the instance name (python -m lkl ls) or a socket path")
    p.add_argument("rest", nargs=argparse.REMAINDER,
                   help="-- CMD ARGS..., or capture IFNAME -w FILE [-c N], or nothing")


def _capture(name: str, argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog=f"attach {name} capture")
    p.add_argument("ifname")
    p.add_argument("-w", dest="file", required=True, help="the pcap file to write")
    p.add_argument("-c", dest="count", type=int, default=0, help="stop after N frames")
    p.add_argument("-s", dest="snaplen", type=int, default=65535)
    p.add_argument("-t", dest="seconds", type=float, default=None, help="stop after SECONDS")
    a = p.parse_args(argv)
    if a.count < 0 or not 1 <= a.snaplen <= 262144:
        p.error("-c must be >= 0 and -s in 1..262144")
    with control.Client(name) as c, open(a.file, "wb") as f:
        cid = c.capture_start(a.ifname, f, snaplen=a.snaplen, count=a.count)
        deadline = None if a.seconds is None else time.monotonic() + a.seconds
        try:
            while True:
                frames, _dropped, done = c.capture_status(cid)
                if done or (deadline is not None and time.monotonic() >= deadline):
                    break
                time.sleep(0.05)  # a status poll; the capture itself runs in the server
        except KeyboardInterrupt:
            pass
        frames, dropped = c.capture_stop(cid)
    print(f"{frames} frames captured to {a.file}, {dropped} dropped", file=sys.stderr)
    return 0


def main(args: argparse.Namespace) -> int:
    """Run what ``args`` asks; the tool's exit status, or 0 / 2 for errors of ours."""
    rest = list(args.rest)
    try:
        if rest and rest[0] == "capture":
            return _capture(args.name, rest[1:])
        if rest and rest[0] == "--":
            rest = rest[1:]
        # Reach the server first: a clear error instead of a tool's confusion.
        with control.Client(args.name, timeout=5.0):
            pass
        if not rest:
            from lkl import console
            return console.run(args.name)
        env = control.attach_env(args.name)
        try:
            return subprocess.run(rest, env=env).returncode
        except FileNotFoundError:
            print(f"lkl attach: {rest[0]}: command not found", file=sys.stderr)
            return 127
    except control.ControlError as e:
        print(f"lkl attach: {e.strerror or e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"lkl attach: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m lkl.cli.attach", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _arguments(parser)
    sys.exit(main(parser.parse_args()))

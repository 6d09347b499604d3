"""``python -m lkl``: the command line.

- ``python -m lkl`` or ``python -m lkl demo``: the demo (``make demo``).
- ``python -m lkl run [options] script.py | -m module | -c code [args]``:
  a Python program on the kernel's network stack (:mod:`lkl.cli.run`).
- ``python -m lkl proxy [options]``: the sandboxed TCP/TLS terminator
  (:mod:`lkl.cli.proxy`, :mod:`lkl.proxy`).
- ``python -m lkl exec [options] -- PROGRAM [args]``: an unmodified native
  program on its own kernel through the preload library (:mod:`lkl.cli.exec`).
- ``python -m lkl attach NAME [-- TOOL args]`` and ``python -m lkl ls``:
  tools and a console on a live instance (:mod:`lkl.cli.attach`, :mod:`lkl.cli.ls`).

The kernel options are shared by every subcommand (:mod:`lkl.cli.options`).
Bad options print a message and exit with code 2; ``--help`` works on each.
"""

from __future__ import annotations

import argparse
import sys

from lkl.cli import attach, ls, options, proxy, run
from lkl.cli import exec as exec_

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    """The parser of ``python -m lkl`` with its subcommands."""
    return _parsers()[0]


def _parsers() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    p = argparse.ArgumentParser(
        prog="python -m lkl",
        description="The Linux kernel as a library: boot it inside this process and use "
        "its network stack.  Without a subcommand: the demo.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("demo", help="boot, move 32 MiB through the kernel's TCP, show counters",
                   description="Boot a kernel, move data through its TCP over its loopback, "
                   "print its counters, halt (what make demo runs).")
    run_parser = run.add_parser(sub)
    proxy.add_parser(sub)
    exec_.add_parser(sub)
    attach.add_parser(sub)
    ls.add_parser(sub)
    return p, run_parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    p, run_parser = _parsers()
    if not argv:
        argv = ["demo"]
    if argv[0] == "run":
        own, program, program_args = run.split_program(run_parser, argv[1:])
        args = run_parser.parse_args(own)
        if program is None:
            run_parser.error("give a script, -m module or -c code to run")
        try:
            return run.run(args, program, program_args)
        except options.OptionsError as e:
            run_parser.error(str(e))
        except ValueError as e:          # a value lkl.boot refused (memory, CPU)
            run_parser.error(str(e))
    if argv[0] == "proxy":
        return proxy.main(argv[1:])
    if argv[0] == "exec" and "--" in argv:
        # Everything after the first "--" is the program's, untouched.
        cut = argv.index("--")
        args = p.parse_args([*argv[:cut], "--", argv[cut + 1] if cut + 1 < len(argv) else ""])
        args.args = argv[cut + 2:]
        if not args.program:
            p.error("exec: give the program to run after --")
        return exec_.main(args)
    args = p.parse_args(argv)
    if args.command == "exec":
        return exec_.main(args)
    if args.command in ("attach", "ls"):
        return int(args.main(args))
    if args.command == "demo":
        from lkl.cli import demo

        return demo.main()
    p.error(f"unknown command {args.command!r}")
    return 2

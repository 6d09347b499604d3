"""``python -m lkl proxy [options]``: the sandboxed TCP/TLS terminator.

The kernel options are the shared ones (:mod:`lkl.cli.options`), the
proxy's own are in :mod:`lkl.proxy.config`; ``--check`` validates the
configuration, prints it as JSON and exits.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from lkl.cli import options

HELP = "relay guests' connections from the kernel's TCP to backends on the host"


DESCRIPTION = (HELP + " (the paper's Figure 3): guests reach the lkl kernel over its NICs, "
               "each accepted connection is relayed to a backend over the host's stack; "
               "the process sandboxes itself once set up.")
EPILOG = "Signals: SIGTERM/SIGINT drain, SIGHUP reloads the backends from --config."


def _declare(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from lkl.proxy.config import add_proxy_options

    options.add_kernel_options(p)
    add_proxy_options(p)
    return p


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """The ``proxy`` subcommand's parser (for ``python -m lkl --help``)."""
    return _declare(subparsers.add_parser("proxy", help=HELP, description=DESCRIPTION,
                                          epilog=EPILOG))


def parser() -> argparse.ArgumentParser:
    """The parser of ``python -m lkl proxy``."""
    return _declare(argparse.ArgumentParser(prog="python -m lkl proxy",
                                            description=DESCRIPTION, epilog=EPILOG))


def main(argv: list[str]) -> int:
    """Parse, check, and serve (or print the checked configuration)."""
    from lkl.proxy import config, server

    p = parser()
    args = p.parse_args(argv)
    try:
        cfg = config.proxy_config(args)
    except options.OptionsError as e:
        p.error(str(e))
    if args.check:
        print(json.dumps(config.describe(cfg), indent=1))
        return 0
    from lkl.proxy import workers

    index = workers.worker_index()
    if cfg.workers > 1 and index is None:
        return workers.supervise(cfg, argv)
    if index is not None and cfg.stats:
        cfg.stats = workers.worker_stats(cfg.stats, index)
    try:
        return server.serve(cfg)
    except ValueError as e:          # a value lkl.boot refused
        p.error(str(e))
    return 2

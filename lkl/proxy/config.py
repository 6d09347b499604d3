"""The proxy's settings: command line and TOML/JSON file.

The config file is the shared kernel options' file (``--config``, see
:mod:`lkl.cli.options`) with one more table, ``[proxy]``, holding the
proxy's own settings, named as the long options with ``_`` for ``-``::

    [[nic]]
    backend = "tap:guest0"
    address = ["10.0.0.2/24"]
    offload = "LARGE_SEGMENTS"

    [proxy]
    listen = ["10.0.0.2:443"]
    backend = ["127.0.0.1:8443", "127.0.0.1:8444"]
    tls_cert = "cert.pem"
    tls_key = "key.pem"
    max_connections = 1000
    max_per_source = 50
    idle_timeout = 300
    proxy_protocol = "v2"

A setting on the command line replaces the file's.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
from dataclasses import dataclass, field
from typing import Any

from lkl.cli import options as kopts

__all__ = ["ProxyConfig", "add_proxy_options", "proxy_config", "parse_hostport"]

Address = tuple[str, int]


@dataclass
class ProxyConfig:
    """Everything the proxy needs, checked."""

    kernel: kopts.KernelOptions
    listen: list[Address] = field(default_factory=list)
    backends: list[Address] = field(default_factory=list)
    tls_cert: str | None = None
    tls_key: str | None = None
    workers: int = 1
    sandbox: bool = True
    user: str | None = None
    max_connections: int = 1024
    max_per_source: int = 64
    connect_timeout: float = 5.0
    idle_timeout: float = 300.0
    drain_timeout: float = 10.0
    proxy_protocol: str | None = None     # None, "v1" or "v2"
    stats: str | None = None              # "unix:/path", "127.0.0.1:PORT"
    stats_interval: float = 0.0           # seconds between stats log lines; 0: none
    backlog: int = 128
    config_path: str | None = None


def parse_hostport(text: str, what: str) -> Address:
    """``"10.0.0.2:443"`` or ``"[fd00::2]:443"`` as (host, port); IPs only."""
    text = str(text).strip()
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise kopts.OptionsError(f"{what} wants IP:PORT, not {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise kopts.OptionsError(f"{what} {text!r}: {host!r} is not an IP address "
                                 f"(names are not resolved)") from None
    if not 0 < int(port) < 65536:
        raise kopts.OptionsError(f"{what} {text!r}: port out of range")
    return host, int(port)


def _stats_addr(text: str) -> str:
    if text.startswith("unix:"):
        if not text[5:]:
            raise kopts.OptionsError("--stats unix: wants a path")
        return text
    host, _port = parse_hostport(text, "--stats")
    if not ipaddress.ip_address(host).is_loopback:
        raise kopts.OptionsError(f"--stats {text}: only a loopback address or unix:PATH")
    return text


def _positive(value: Any, what: str, integer: bool = False) -> Any:
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        raise kopts.OptionsError(f"{what} wants a number, not {value!r}") from None
    if isinstance(value, bool) or number <= 0 or (integer and number != float(value)):
        raise kopts.OptionsError(f"{what} must be a positive "
                                 f"{'integer' if integer else 'number'}, not {value!r}")
    return number


def add_proxy_options(parser: argparse.ArgumentParser) -> None:
    """Declare the proxy's own options on ``parser``."""
    g = parser.add_argument_group("proxy options")
    g.add_argument("--listen", action="append", metavar="IP:PORT",
                   help="an address of the kernel's to accept guests on (repeatable)")
    g.add_argument("--backend", action="append", metavar="IP:PORT",
                   help="a backend on the host's stack (repeatable: round robin)")
    g.add_argument("--tls-cert", metavar="FILE", help="terminate TLS: the certificate chain")
    g.add_argument("--tls-key", metavar="FILE", help="terminate TLS: the private key")
    g.add_argument("--workers", type=int, metavar="N", help="processes, each its own kernel")
    g.add_argument("--no-sandbox", action="store_true",
                   help="skip seccomp, capability dropping and --user (debugging)")
    g.add_argument("--user", metavar="NAME", help="when started as root, run as this user")
    g.add_argument("--max-connections", type=int, metavar="N", help="open connections at most")
    g.add_argument("--max-per-source", type=int, metavar="N",
                   help="open connections per guest address at most")
    g.add_argument("--connect-timeout", type=float, metavar="SECONDS",
                   help="for the backend connection and the TLS handshake")
    g.add_argument("--idle-timeout", type=float, metavar="SECONDS",
                   help="close a connection that moved nothing for this long")
    g.add_argument("--drain-timeout", type=float, metavar="SECONDS",
                   help="after SIGTERM, how long open connections may go on")
    g.add_argument("--proxy-protocol", choices=("v1", "v2"),
                   help="send a PROXY protocol header to the backend")
    g.add_argument("--stats", metavar="unix:PATH|127.0.0.1:PORT",
                   help="serve counters as JSON (HTTP GET /)")
    g.add_argument("--stats-interval", type=float, metavar="SECONDS",
                   help="log the counters this often")
    g.add_argument("--check", action="store_true",
                   help="check the configuration, print it and exit")


_PROXY_KEYS = {"listen", "backend", "tls_cert", "tls_key", "workers", "sandbox", "user",
               "max_connections", "max_per_source", "connect_timeout", "idle_timeout",
               "drain_timeout", "proxy_protocol", "stats", "stats_interval", "backlog"}


def _load_file(path: str) -> tuple[kopts.KernelOptions, dict[str, Any]]:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise kopts.OptionsError(f"cannot read config file {path}: {e.strerror}") from None
    return _parse_file(path, raw)


def _parse_file(path: str, raw: bytes) -> tuple[kopts.KernelOptions, dict[str, Any]]:
    """The kernel settings and the [proxy] table of a config file's bytes."""
    try:
        if path.endswith(".toml"):
            import tomllib  # first imported at start-up, before the sandbox (SIGHUP)

            data = tomllib.loads(raw.decode())
        else:
            data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise kopts.OptionsError(f"config file {path}: {e}") from None
    if not isinstance(data, dict):
        raise kopts.OptionsError(f"config file {path}: the top level must be a table")
    proxy = data.pop("proxy", {})
    if not isinstance(proxy, dict):
        raise kopts.OptionsError(f"config file {path}: [proxy] must be a table")
    proxy = {k.replace("-", "_"): v for k, v in proxy.items()}
    unknown = set(proxy) - _PROXY_KEYS
    if unknown:
        raise kopts.OptionsError(f"config file {path}: unknown proxy setting "
                                 f"{sorted(unknown)[0]!r}")
    return kopts._options_from_dict(data, path), proxy


def _as_list(value: Any, key: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise kopts.OptionsError(f"proxy {key} must be a string or a list of strings")
    return items


def proxy_config(args: argparse.Namespace) -> ProxyConfig:
    """The parsed command line over its config file, checked."""
    path = args.config or os.environ.get(kopts.CONFIG_ENV) or None
    if path:
        kernel, table = _load_file(path)
    else:
        kernel, table = kopts.KernelOptions(), {}
    # The shared options' own merge, over the file's kernel settings.
    kopts.merge_command_line(kernel, args)
    if args.control is not None:
        kernel.control = args.control
    kopts.check_control(kernel.control)
    # Each worker its own kernel, each its own control name (NAME.i),
    # as each its own stats endpoint.
    from lkl.proxy.workers import worker_index

    index = worker_index()
    if kernel.control and index is not None:
        kernel.control = f"{kernel.control}.{index}"

    def pick(name: str) -> Any:
        value = getattr(args, name, None)
        return value if value is not None else table.get(name)

    cfg = ProxyConfig(kernel=kernel, config_path=path)
    cfg.listen = [parse_hostport(t, "--listen") for t in
                  (args.listen or _as_list(table.get("listen", []), "listen"))]
    cfg.backends = [parse_hostport(t, "--backend") for t in
                    (args.backend or _as_list(table.get("backend", []), "backend"))]
    cfg.tls_cert = pick("tls_cert")
    cfg.tls_key = pick("tls_key")
    for name, integer in (("workers", True), ("max_connections", True),
                          ("max_per_source", True), ("backlog", True),
                          ("connect_timeout", False), ("idle_timeout", False),
                          ("drain_timeout", False)):
        value = pick(name)
        if value is not None:
            setattr(cfg, name, _positive(value, "--" + name.replace("_", "-"), integer))
    interval = pick("stats_interval")
    if interval is not None:
        cfg.stats_interval = float(interval) if float(interval) == 0 else \
            _positive(interval, "--stats-interval")
    cfg.sandbox = not args.no_sandbox and bool(table.get("sandbox", True))
    cfg.user = pick("user")
    cfg.proxy_protocol = pick("proxy_protocol")
    if cfg.proxy_protocol not in (None, "v1", "v2"):
        raise kopts.OptionsError("proxy_protocol must be v1 or v2")
    stats = pick("stats")
    cfg.stats = _stats_addr(str(stats)) if stats is not None else None
    _check(cfg)
    return cfg


def _check(cfg: ProxyConfig) -> None:
    if not cfg.kernel.nics:
        raise kopts.OptionsError("give the guest-facing NIC: --nic tap:NAME (or raw:IFNAME)")
    if not cfg.listen:
        raise kopts.OptionsError("give at least one --listen IP:PORT")
    if not cfg.backends:
        raise kopts.OptionsError("give at least one --backend IP:PORT")
    if (cfg.tls_cert is None) != (cfg.tls_key is None):
        raise kopts.OptionsError("--tls-cert and --tls-key go together")
    if cfg.tls_cert is not None:
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            ctx.load_cert_chain(cfg.tls_cert, cfg.tls_key)
        except (OSError, ssl.SSLError) as e:
            raise kopts.OptionsError(f"--tls-cert/--tls-key: {e}") from None
    if cfg.user is not None:
        import pwd

        try:
            pwd.getpwnam(cfg.user)
        except KeyError:
            raise kopts.OptionsError(f"--user {cfg.user}: no such user") from None
    if cfg.workers > 1 and any(not n.backend.startswith("tap:") for n in cfg.kernel.nics):
        raise kopts.OptionsError("--workers above 1 needs TAP NICs (a multi-queue device: "
                                 "ip tuntap add NAME mode tap multi_queue)")
    if cfg.max_per_source > cfg.max_connections:
        cfg.max_per_source = cfg.max_connections


def describe(cfg: ProxyConfig) -> dict[str, Any]:
    """The configuration as JSON-able data (what ``--check`` prints)."""
    k = cfg.kernel
    return {
        "kernel": {"memory": k.memory, "syscall_mode": k.syscall_mode,
                   "nics": [{"backend": n.backend, "addresses": n.addresses,
                             "offload": n.offload or k.offload or "NONE"} for n in k.nics],
                   "gateways": k.gateways, "sysctls": k.sysctls},
        "listen": [f"{h}:{p}" for h, p in cfg.listen],
        "backends": [f"{h}:{p}" for h, p in cfg.backends],
        "tls": cfg.tls_cert is not None, "workers": cfg.workers,
        "sandbox": cfg.sandbox, "user": cfg.user,
        "max_connections": cfg.max_connections, "max_per_source": cfg.max_per_source,
        "connect_timeout": cfg.connect_timeout, "idle_timeout": cfg.idle_timeout,
        "drain_timeout": cfg.drain_timeout, "proxy_protocol": cfg.proxy_protocol,
        "stats": cfg.stats,
    }

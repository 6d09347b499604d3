"""The kernel options every ``python -m lkl`` subcommand shares.

``add_kernel_options(parser)`` declares them; ``kernel_options(args)``
merges the command line over a config file (``--config FILE`` or
``$LKL_CONFIG``: JSON, or TOML for ``*.toml``) into :class:`KernelOptions`;
``boot_kernel(options)`` boots a kernel with its devices, addresses,
routes and sysctls.

The config file holds the same settings, named as the long options with
``_`` for ``-``, lists for the repeatable ones::

    memory = "128M"
    syscall_mode = "direct"
    nameserver = ["10.0.0.1"]
    gateway = "10.0.0.1"
    sysctl = { "net.ipv4.tcp_congestion_control" = "bbr" }

    [[nic]]
    backend = "tap:tap0"
    address = ["10.0.0.2/24"]
    offload = "LARGE_SEGMENTS"

On the command line ``--address`` and ``--offload`` belong to the ``--nic``
before them (an ``--offload`` before any ``--nic`` is every NIC's default).
A setting given on the command line replaces the file's; sysctls merge.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["NicSpec", "KernelOptions", "OptionsError", "add_kernel_options",
           "kernel_options", "merge_command_line", "check_control", "load_config",
           "boot_kernel", "parse_offload"]

CONFIG_ENV = "LKL_CONFIG"


class OptionsError(ValueError):
    """A bad option or config file (the command line exits with code 2)."""


@dataclass
class NicSpec:
    """One ``--nic``: its backend and what goes with it."""

    backend: str                      # "tap:NAME" or "raw:IFNAME"
    addresses: list[str] = field(default_factory=list)
    offload: str | None = None


@dataclass
class KernelOptions:
    """Everything the shared options say about the kernel to boot."""

    memory: str = "64M"
    syscall_mode: str = "shadow"
    pin_cpu: int | None = None
    nics: list[NicSpec] = field(default_factory=list)
    offload: str | None = None
    gateways: list[str] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)
    nameservers: list[str] = field(default_factory=list)
    control: str | None = None


# ---- checks --------------------------------------------------------------------


def parse_offload(text: str) -> Any:
    """An lkl.Offload from a preset or bit names ("LARGE_SEGMENTS", "CSUM|GUEST_CSUM")."""
    from lkl.net import Offload

    value = Offload.NONE
    for part in re.split(r"[|,+]", text):
        name = part.strip().upper().replace("-", "_")
        if name not in Offload.__members__:
            raise OptionsError(f"unknown offload {part.strip()!r} (one of "
                               f"{', '.join(Offload.__members__)})")
        value |= Offload[name]
    return value


def _nic_backend(text: str) -> str:
    kind, sep, name = text.partition(":")
    if not sep or kind not in ("tap", "raw") or not name:
        raise OptionsError(f"--nic wants tap:NAME or raw:IFNAME, not {text!r}")
    if len(name.encode()) > 15 or "/" in name or name.strip() != name:
        raise OptionsError(f"bad interface name {name!r} in --nic {text}")
    return text


def _cidr(text: str) -> str:
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError:
        raise OptionsError(f"--address wants an address with its prefix (10.0.0.2/24), "
                           f"not {text!r}") from None
    if "/" not in text:
        raise OptionsError(f"--address {text}: give the prefix length too "
                           f"({iface.ip}/{iface.network.prefixlen})")
    return text


def _ip(text: str, what: str) -> str:
    try:
        ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        raise OptionsError(f"{what} wants an IP address, not {text!r}") from None
    return text


def _sysctl(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise OptionsError(f"--sysctl wants key=value, not {text!r}")
    return key.strip(), value.strip()


def _memory(text: str) -> str:
    if not re.fullmatch(r"\s*\d+\s*[kKmMgG]?[bB]?\s*", str(text)):
        raise OptionsError(f"--memory wants a size like 64M or 1G, not {text!r}")
    return str(text)


# ---- argparse ------------------------------------------------------------------


def _checked(check: Any) -> Any:
    def convert(text: str) -> Any:
        try:
            return check(text)
        except OptionsError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    convert.__name__ = check.__name__.strip("_")
    return convert


class _NicAction(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        nics = getattr(namespace, "nics", None) or []
        nics.append(NicSpec(values))
        namespace.nics = nics


class _PerNicAction(argparse.Action):
    """--address (appended) and --offload (set) of the latest --nic."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        nics = getattr(namespace, "nics", None)
        if self.dest == "address":
            if not nics:
                parser.error(f"{option_string} {values}: give the --nic it belongs to first")
            nics[-1].addresses.append(values)
        elif nics:
            nics[-1].offload = values
        else:
            namespace.offload = values


def add_kernel_options(parser: argparse.ArgumentParser) -> None:
    """Declare the shared kernel options on ``parser``."""
    g = parser.add_argument_group("kernel options (shared by the subcommands)")
    g.add_argument("--memory", type=_checked(_memory), metavar="SIZE",
                   help="the kernel's RAM, e.g. 64M (default) or 1G")
    g.add_argument("--syscall-mode", choices=("shadow", "direct"),
                   help="how threads enter the kernel (default shadow)")
    g.add_argument("--pin-cpu", type=int, metavar="N",
                   help="pin every kernel thread to host CPU N")
    g.add_argument("--nic", action=_NicAction, type=_checked(_nic_backend), dest="nics",
                   metavar="tap:NAME|raw:IFNAME", help="attach a virtio-net device "
                   "(repeatable); --address and --offload after it belong to it")
    g.add_argument("--address", action=_PerNicAction, type=_checked(_cidr), metavar="CIDR",
                   help="an address of the last --nic, e.g. 10.0.0.2/24 (repeatable)")
    g.add_argument("--offload", action=_PerNicAction, metavar="PRESET",
                   type=_checked(lambda t: (parse_offload(t), t)[1]),
                   help="offloads of the last --nic (before any --nic: the default): "
                   "NONE, CHECKSUM, LARGE_SEGMENTS, BIG_PACKETS or bits joined by |")
    g.add_argument("--gateway", action="append", type=_checked(lambda t: _ip(t, "--gateway")),
                   metavar="IP", help="default route via IP (one per address family)")
    g.add_argument("--sysctl", action="append", type=_checked(_sysctl), metavar="KEY=VALUE",
                   help="set a sysctl after boot, e.g. net.ipv4.tcp_congestion_control=bbr "
                   "(repeatable)")
    g.add_argument("--nameserver", action="append",
                   type=_checked(lambda t: _ip(t, "--nameserver")), metavar="IP",
                   help="a DNS server asked through the kernel (repeatable; default: "
                   "the host's /etc/resolv.conf)")
    g.add_argument("--control", metavar="NAME",
                   help="serve a control socket for 'python -m lkl attach NAME'")
    g.add_argument("--config", metavar="FILE",
                   help=f"settings from a JSON or TOML file (default: ${CONFIG_ENV})")


# ---- config files --------------------------------------------------------------

_SCALARS = {"memory", "syscall_mode", "pin_cpu", "offload", "control"}
_LISTS = {"gateway", "nameserver"}


def load_config(path: str) -> KernelOptions:
    """The settings of a JSON or TOML config file (OptionsError if malformed)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise OptionsError(f"cannot read config file {path}: {e.strerror}") from None
    try:
        if path.endswith(".toml"):
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                raise OptionsError("TOML config files need Python 3.11 (tomllib); "
                                   "use JSON") from None
            data = tomllib.loads(raw.decode())
        else:
            data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise OptionsError(f"config file {path}: {e}") from None
    if not isinstance(data, dict):
        raise OptionsError(f"config file {path}: the top level must be a table/object")
    return _options_from_dict(data, path)


def _strings(value: Any, key: str, where: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise OptionsError(f"{where}: {key} must be a string or a list of strings")
    return list(items)


def _options_from_dict(data: dict[str, Any], where: str) -> KernelOptions:
    opts = KernelOptions()
    for key, value in data.items():
        name = key.replace("-", "_")
        if name in ("nameservers", "gateways", "sysctls", "nics"):
            name = name[:-1]
        if name == "memory":
            opts.memory = _memory(str(value))
        elif name == "syscall_mode":
            if value not in ("shadow", "direct"):
                raise OptionsError(f"{where}: syscall_mode must be shadow or direct")
            opts.syscall_mode = value
        elif name == "pin_cpu":
            if isinstance(value, bool) or not isinstance(value, int):
                raise OptionsError(f"{where}: pin_cpu must be an integer")
            opts.pin_cpu = value
        elif name == "offload":
            parse_offload(str(value))
            opts.offload = str(value)
        elif name == "control":
            opts.control = str(value)
        elif name == "gateway":
            opts.gateways = [_ip(v, "gateway") for v in _strings(value, key, where)]
        elif name == "nameserver":
            opts.nameservers = [_ip(v, "nameserver") for v in _strings(value, key, where)]
        elif name == "sysctl":
            if isinstance(value, dict):
                opts.sysctls = {str(k): str(v) for k, v in value.items()}
            else:
                opts.sysctls = dict(_sysctl(v) for v in _strings(value, key, where))
        elif name == "nic":
            opts.nics = [_nic_from_dict(n, where) for n in
                         (value if isinstance(value, list) else [value])]
        else:
            raise OptionsError(f"{where}: unknown setting {key!r}")
    return opts


def _nic_from_dict(value: Any, where: str) -> NicSpec:
    if isinstance(value, str):
        return NicSpec(_nic_backend(value))
    if not isinstance(value, dict) or "backend" not in value:
        raise OptionsError(f"{where}: each nic needs a backend (tap:NAME or raw:IFNAME)")
    unknown = set(value) - {"backend", "address", "addresses", "offload"}
    if unknown:
        raise OptionsError(f"{where}: unknown nic setting {sorted(unknown)[0]!r}")
    spec = NicSpec(_nic_backend(str(value["backend"])))
    addrs = value.get("address", value.get("addresses", []))
    spec.addresses = [_cidr(a) for a in _strings(addrs, "address", where)]
    if "offload" in value:
        parse_offload(str(value["offload"]))
        spec.offload = str(value["offload"])
    return spec


def kernel_options(args: argparse.Namespace) -> KernelOptions:
    """The parsed command line over its config file."""
    path = args.config or os.environ.get(CONFIG_ENV) or None
    opts = load_config(path) if path else KernelOptions()
    merge_command_line(opts, args)
    if args.control is not None:
        opts.control = args.control
    check_control(opts.control)
    return opts


def merge_command_line(opts: KernelOptions, args: argparse.Namespace) -> None:
    """Put the command line's kernel settings over a config file's.

    Those given in ``args`` replace ``opts``' (sysctls merge), all but
    ``--control`` and ``--config``.
    """
    if args.memory is not None:
        opts.memory = args.memory
    if args.syscall_mode is not None:
        opts.syscall_mode = args.syscall_mode
    if args.pin_cpu is not None:
        opts.pin_cpu = args.pin_cpu
    if getattr(args, "nics", None):
        opts.nics = args.nics
    if getattr(args, "offload", None) is not None:
        opts.offload = args.offload
    if args.gateway:
        opts.gateways = args.gateway
    if args.sysctl:
        opts.sysctls.update(dict(args.sysctl))
    if args.nameserver:
        opts.nameservers = args.nameserver


def check_control(name: str | None) -> None:
    """OptionsError unless ``name`` (if given) can name a control socket."""
    if name is None:
        return
    from lkl import control

    try:
        control.check_name(name)
    except (OSError, ValueError) as e:
        raise OptionsError(f"--control: {e}") from e


# ---- booting -------------------------------------------------------------------


def boot_kernel(opts: KernelOptions, mac: str | None = None) -> Any:
    """Boot a kernel as ``opts`` say, every NIC on ``mac`` if given.

    NICs come up with their addresses, then default routes and sysctls;
    the kernel is halted again if any step fails.
    """
    import lkl

    nics = []
    for spec in opts.nics:
        kind, _, name = spec.backend.partition(":")
        backend = lkl.Tap(name) if kind == "tap" else lkl.RawSocket(name)
        offload = spec.offload or opts.offload
        nics.append(lkl.Nic(backend, mac=mac, offload=parse_offload(offload) if offload
                            else lkl.Offload.NONE))
    kernel = lkl.boot(memory=opts.memory, syscall_mode=opts.syscall_mode,
                      pin_cpu=opts.pin_cpu, nics=nics,
                      nameservers=opts.nameservers or None, control=opts.control)
    try:
        for nic, spec in zip(nics, opts.nics, strict=True):
            nic.up()
            for cidr in spec.addresses:
                nic.add_address(cidr)
        for gateway in opts.gateways:
            kernel.add_route("default", via=gateway)
        for key, value in opts.sysctls.items():
            kernel.sysctl(key, value)
    except BaseException:
        kernel.halt()
        raise
    return kernel

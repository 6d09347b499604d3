"""Name resolution through the lkl kernel.

The standard library's ``getaddrinfo``, ``gethostbyname(_ex)`` and
``getnameinfo``, with DNS sent through the kernel's network stack.

Names are looked up as glibc does, in order: numeric addresses; the
host's ``/etc/hosts`` (read as a file); then DNS, whose queries travel
through the *kernel's* network stack (UDP on a kernel socket, TCP when an
answer comes back truncated) to the nameservers given at boot
(``lkl.boot(nameservers=[...])``) or else those of the host's
``/etc/resolv.conf``, with its ``search``, ``ndots``, ``timeout`` and
``attempts``.  Results and errors are the standard library's: lists of
``(family, type, proto, canonname, sockaddr)``, ``socket.gaierror`` with
``EAI_NONAME``, ``EAI_AGAIN``, ``EAI_NODATA``, ``EAI_SERVICE``...

A host's resolv.conf that points at a loopback resolver (127.0.0.53)
names the *kernel's* loopback here, where nothing answers: give the
nameservers at boot (``--nameserver`` on the command line).
:func:`configure` sets the lookup options of one kernel explicitly.

``lkl.patch`` installs these functions as ``socket.getaddrinfo`` & co.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket as _socket
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.reversename

from lkl._lkl import KernelError

__all__ = [
    "Config",
    "configure",
    "config",
    "read_resolv_conf",
    "getaddrinfo",
    "gethostbyname",
    "gethostbyname_ex",
    "gethostbyaddr",
    "getnameinfo",
]

AF_INET: int = int(_socket.AF_INET)
AF_INET6: int = int(_socket.AF_INET6)
_DNS_PORT = 53
_MAX_UDP = 65535

# glibc's messages for the EAI_* codes.
_MESSAGES = {
    _socket.EAI_NONAME: "Name or service not known",
    _socket.EAI_AGAIN: "Temporary failure in name resolution",
    _socket.EAI_NODATA: "No address associated with hostname",
    _socket.EAI_FAIL: "Non-recoverable failure in name resolution",
    _socket.EAI_FAMILY: "ai_family not supported",
    _socket.EAI_SOCKTYPE: "ai_socktype not supported",
    _socket.EAI_SERVICE: "Servname not supported for ai_socktype",
    _socket.EAI_BADFLAGS: "Bad value for ai_flags",
    _socket.EAI_ADDRFAMILY: "Address family for hostname not supported",
}


def _gaierror(code: int) -> _socket.gaierror:
    return _socket.gaierror(code, _MESSAGES[code])


# ---- configuration ---------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """How one kernel resolves names (see :func:`configure`).

    ``nameservers``: IP addresses asked over DNS (port 53).  ``search``:
    domains tried for names with fewer than ``ndots`` dots first, as
    resolv.conf(5).  ``timeout``: seconds per query and server;
    ``attempts``: rounds over the servers.  ``hosts_file``: the hosts(5)
    file read before DNS (None: none).
    """

    nameservers: tuple[str, ...] = ("127.0.0.1",)
    search: tuple[str, ...] = ()
    ndots: int = 1
    timeout: float = 5.0
    attempts: int = 2
    rotate: bool = False
    hosts_file: str | None = "/etc/hosts"
    _next: list[int] = field(default_factory=lambda: [0], compare=False, repr=False)


def read_resolv_conf(path: str = "/etc/resolv.conf") -> Config:
    """The :class:`Config` a resolv.conf(5) file describes.

    A missing file gives the defaults, as in glibc (nameserver 127.0.0.1).
    """
    servers: list[str] = []
    search: list[str] = []
    ndots, timeout, attempts, rotate = 1, 5.0, 2, False
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(words) < 2 and not (words and words[0] == "options"):
            continue
        key, args = words[0], words[1:]
        if key == "nameserver" and len(servers) < 3:
            try:
                ipaddress.ip_address(args[0].split("%", 1)[0])
                servers.append(args[0])
            except ValueError:
                pass
        elif key == "domain":
            search = [args[0].rstrip(".")]
        elif key == "search":
            search = [d.rstrip(".") for d in args if d != "."]
        elif key == "options":
            for opt in args:
                name, _, value = opt.partition(":")
                if name == "ndots" and value.isdigit():
                    ndots = min(int(value), 15)
                elif name == "timeout" and value.isdigit():
                    timeout = float(max(1, min(int(value), 30)))
                elif name == "attempts" and value.isdigit():
                    attempts = max(1, min(int(value), 5))
                elif name == "rotate":
                    rotate = True
    return Config(nameservers=tuple(servers) or ("127.0.0.1",), search=tuple(search),
                  ndots=ndots, timeout=timeout, attempts=attempts, rotate=rotate)


_configs: weakref.WeakKeyDictionary[Any, Config] = weakref.WeakKeyDictionary()
_config_lock = threading.Lock()
_UNSET: Any = object()


def configure(
    kernel: Any = None,
    *,
    nameservers: Iterable[str] | None = None,
    search: Iterable[str] | None = None,
    ndots: int | None = None,
    timeout: float | None = None,
    attempts: int | None = None,
    hosts_file: str | None = _UNSET,
    resolv_conf: str | None = "/etc/resolv.conf",
) -> Config:
    """Set how ``kernel`` (default: the running one) resolves names.

    Starts from ``resolv_conf`` (None: built-in defaults, no file read),
    then the kernel's boot nameservers, then the arguments given here.
    Returns the new :class:`Config`.
    """
    k = _kernel_of(kernel)
    base = read_resolv_conf(resolv_conf) if resolv_conf is not None else Config()
    if k.nameservers is not None:
        base = replace(base, nameservers=tuple(k.nameservers))
    changes: dict[str, Any] = {}
    if nameservers is not None:
        servers = tuple(nameservers)
        for ns in servers:
            ipaddress.ip_address(ns.split("%", 1)[0])  # ValueError for a name
        changes["nameservers"] = servers
    if search is not None:
        changes["search"] = tuple(d.rstrip(".") for d in search)
    if ndots is not None:
        changes["ndots"] = int(ndots)
    if timeout is not None:
        if not timeout > 0:
            raise ValueError("timeout must be positive")
        changes["timeout"] = float(timeout)
    if attempts is not None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        changes["attempts"] = int(attempts)
    if hosts_file is not _UNSET:
        changes["hosts_file"] = hosts_file
    cfg = replace(base, **changes)
    with _config_lock:
        _configs[k] = cfg
    return cfg


def config(kernel: Any = None) -> Config:
    """How ``kernel`` resolves names.

    What :func:`configure` set, or else the host's /etc/resolv.conf with
    the kernel's boot nameservers.
    """
    k = _kernel_of(kernel)
    with _config_lock:
        cfg = _configs.get(k)
    return cfg if cfg is not None else configure(k)


def _kernel_of(kernel: Any) -> Any:
    if kernel is None:
        import lkl

        kernel = lkl.kernel()
        if kernel is None:
            raise lkl.KernelError("no kernel is running (lkl.boot())")
    return kernel


# ---- the hosts file ----------------------------------------------------------


def _hosts(path: str | None) -> list[tuple[str, list[str]]]:
    """(address, names) per line of a hosts(5) file."""
    if path is None:
        return []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2:
            out.append((words[0], words[1:]))
    return out


@dataclass
class _Found:
    """Addresses of a name: ``(family, address)``, canonical name, aliases."""

    addresses: list[tuple[int, str]]
    canonical: str
    aliases: list[str]


def _from_hosts(cfg: Config, name: str, families: tuple[int, ...]) -> _Found | None:
    want = name.lower().rstrip(".")
    found = _Found([], "", [])
    for addr, names in _hosts(cfg.hosts_file):
        if want not in (n.lower() for n in names):
            continue
        parsed = _numeric(addr)
        if parsed is None or parsed[0] not in families:
            continue
        if not found.canonical:
            found.canonical = names[0]
            found.aliases = [n for n in names[1:] if n.lower() != names[0].lower()]
        if parsed not in found.addresses:
            found.addresses.append(parsed)
    return found if found.addresses else None


# ---- DNS through the kernel ----------------------------------------------------


class _Outcome:
    """What asking for one name gave: answers per type, or why none."""

    def __init__(self) -> None:
        self.answers: dict[int, list[str]] = {}
        self.canonical = ""
        self.aliases: list[str] = []
        self.nxdomain = False
        self.failed = False      # timeouts, errors, SERVFAIL: try again later


def _server_address(ns: str) -> tuple[int, tuple[Any, ...]]:
    host, _, scope = ns.partition("%")
    if ":" in host:
        return AF_INET6, (host, _DNS_PORT, 0, int(scope) if scope.isdigit() else 0)
    return AF_INET, (host, _DNS_PORT)


def _udp_exchange(kernel: Any, ns: str, queries: list[dns.message.Message],
                  deadline: float) -> dict[int, dns.message.Message]:
    """Send every query to ``ns`` over UDP; the replies by query index.

    Missing ones timed out.  OSError for network errors.
    """
    family, address = _server_address(ns)
    replies: dict[int, dns.message.Message] = {}
    with kernel.socket(family, _socket.SOCK_DGRAM) as sock:
        # Connected: the kernel drops datagrams from elsewhere and reports
        # ICMP errors (ECONNREFUSED).
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        sock.connect(address)
        for q in queries:
            sock.send(q.to_wire())
        while len(replies) < len(queries):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                wire = sock.recv(_MAX_UDP)
            except TimeoutError:
                break
            try:
                reply = dns.message.from_wire(wire, ignore_trailing=True)
            except (dns.exception.DNSException, ValueError):
                continue  # not a DNS message: ignore it, as a stub resolver does
            for i, q in enumerate(queries):
                if i not in replies and q.is_response(reply):
                    replies[i] = reply
                    break
    return replies


def _recv_exactly(sock: Any, n: int, deadline: float) -> bytes:
    out = bytearray()
    while len(out) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        sock.settimeout(left)
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionResetError("the nameserver closed the TCP connection")
        out += chunk
    return bytes(out)


def _tcp_exchange(kernel: Any, ns: str, query: dns.message.Message,
                  deadline: float) -> dns.message.Message | None:
    """Ask ``ns`` over TCP (after a truncated UDP answer).

    None if the reply is not one to ``query``.
    """
    family, address = _server_address(ns)
    wire = query.to_wire()
    with kernel.socket(family, _socket.SOCK_STREAM) as sock:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        sock.connect(address)
        sock.sendall(len(wire).to_bytes(2, "big") + wire)
        size = int.from_bytes(_recv_exactly(sock, 2, deadline), "big")
        reply = dns.message.from_wire(_recv_exactly(sock, size, deadline))
    return reply if query.is_response(reply) else None


def _ask(kernel: Any, cfg: Config, name: str, rdtypes: tuple[int, ...]) -> _Outcome:
    """Ask the nameservers for ``rdtypes`` of the absolute ``name``."""
    out = _Outcome()
    qname = dns.name.from_text(name)
    pending = list(rdtypes)
    servers = list(cfg.nameservers)
    if cfg.rotate and servers:
        start = cfg._next[0] % len(servers)
        cfg._next[0] += 1
        servers = servers[start:] + servers[:start]
    for _attempt in range(cfg.attempts):
        for ns in servers:
            queries: list[dns.message.Message] = [
                dns.message.make_query(qname, dns.rdatatype.RdataType(t)) for t in pending]
            deadline = time.monotonic() + cfg.timeout
            try:
                replies = _udp_exchange(kernel, ns, queries, deadline)
            except KernelError:
                raise                     # no kernel: not a DNS failure
            except OSError:
                out.failed = True
                continue
            for i, q in enumerate(queries):
                reply: dns.message.Message | None = replies.get(i)
                if reply is not None and reply.flags & dns.flags.TC:
                    try:
                        reply = _tcp_exchange(kernel, ns, q, time.monotonic() + cfg.timeout)
                    except KernelError:
                        raise
                    except (OSError, dns.exception.DNSException, ValueError):
                        reply = None
                if reply is None:
                    out.failed = True
                    continue
                rcode = reply.rcode()
                if rcode == dns.rcode.NXDOMAIN:
                    out.nxdomain = True
                    return out
                if rcode != dns.rcode.NOERROR:
                    out.failed = True    # SERVFAIL, REFUSED...: the next server
                    continue
                rdtype = q.question[0].rdtype
                chain = reply.resolve_chaining()  # type: ignore[attr-defined]
                out.answers[rdtype] = [
                    r.target.to_text() if rdtype == dns.rdatatype.PTR else r.address
                    for r in (chain.answer if chain.answer is not None else ())]
                canonical = chain.canonical_name.to_text(omit_final_dot=True)
                if not out.canonical or out.answers[rdtype]:
                    out.canonical = canonical
                for cname in chain.cnames:
                    alias = cname.name.to_text(omit_final_dot=True)
                    if alias not in out.aliases:
                        out.aliases.append(alias)
                pending.remove(rdtype)
            if not pending:
                out.failed = False
                return out
    return out


def _candidates(cfg: Config, name: str) -> list[str]:
    """The absolute names to try for ``name``: resolv.conf's search rules."""
    if name.endswith("."):
        return [name]
    searched = [f"{name}.{d}." for d in cfg.search]
    if name.count(".") >= cfg.ndots:
        return [name + ".", *searched]
    return [*searched, name + "."]


def _from_dns(kernel: Any, cfg: Config, name: str, families: tuple[int, ...]) -> _Found:
    """The addresses of ``name`` by DNS, or socket.gaierror."""
    rdtypes = tuple(dns.rdatatype.A if f == AF_INET else dns.rdatatype.AAAA for f in families)
    failed = nodata = False
    for candidate in _candidates(cfg, name):
        try:
            outcome = _ask(kernel, cfg, candidate, rdtypes)
        except (dns.exception.DNSException, ValueError):
            continue  # a name DNS cannot carry (an empty label, too long)
        addresses = [(AF_INET6 if ":" in a else AF_INET, a)
                     for t in rdtypes for a in outcome.answers.get(t, [])]
        if addresses:
            return _Found(addresses, outcome.canonical, outcome.aliases)
        if outcome.failed:
            failed = True
        elif not outcome.nxdomain:
            nodata = True
    if failed:
        raise _gaierror(_socket.EAI_AGAIN)
    if nodata:
        raise _gaierror(_socket.EAI_NODATA)
    raise _gaierror(_socket.EAI_NONAME)


# ---- addresses -------------------------------------------------------------------


def _numeric(host: str) -> tuple[int, str] | None:
    """``(family, address)`` if ``host`` is a numeric address, else None.

    IPv4 in any inet_aton spelling, IPv6 with an optional %scope.
    """
    if ":" in host:
        addr, _, scope = host.partition("%")
        try:
            packed = _socket.inet_pton(AF_INET6, addr)
        except OSError:
            return None
        text = _socket.inet_ntop(AF_INET6, packed)
        return AF_INET6, f"{text}%{scope}" if scope else text
    if not host or not re.fullmatch(r"[0-9a-fA-FxX.]+", host):
        return None
    try:
        return AF_INET, _socket.inet_ntoa(_socket.inet_aton(host))
    except OSError:
        return None


def _sockaddr(kernel: Any, family: int, address: str, port: int) -> tuple[Any, ...]:
    if family == AF_INET:
        return (address, port)
    addr, _, scope = address.partition("%")
    scope_id = 0
    if scope:
        if scope.isdigit():
            scope_id = int(scope)
        else:
            from lkl.net import rtnl

            try:
                scope_id = rtnl.ifindex(kernel, scope)
            except OSError:
                raise _gaierror(_socket.EAI_NONAME) from None
    return (addr, port, 0, scope_id)


# RFC 6724's default policy table: (prefix, precedence).
_PRECEDENCE = [(ipaddress.ip_network(p), v) for p, v in (
    ("::1/128", 50), ("::ffff:0:0/96", 35), ("2002::/16", 30), ("2001::/32", 5),
    ("fc00::/7", 3), ("::/96", 1), ("fec0::/10", 1), ("3ffe::/16", 1), ("::/0", 40))]


def _precedence(family: int, address: str) -> int:
    ip = ipaddress.ip_address(address.partition("%")[0])
    if family == AF_INET:
        ip = ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + ip.packed)
    for net, value in _PRECEDENCE:
        if ip in net:
            return value
    return 40


def _reachable(kernel: Any, family: int, address: str) -> bool:
    """Whether the kernel has a route to ``address`` (a UDP connect: no packet)."""
    try:
        with kernel.socket(family, _socket.SOCK_DGRAM) as probe:
            probe.connect(_sockaddr(kernel, family, address, 9))
        return True
    except (OSError, _socket.gaierror):
        return False


def _sorted(kernel: Any, addresses: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """RFC 6724 destination order, in short: reachable first, then by precedence."""
    if len(addresses) < 2:
        return addresses
    keyed = [(not _reachable(kernel, f, a), -_precedence(f, a), i, (f, a))
             for i, (f, a) in enumerate(addresses)]
    return [item for *_, item in sorted(keyed)]


def _configured_families(kernel: Any) -> tuple[bool, bool]:
    """(IPv4, IPv6): whether the kernel has a non-loopback address of each."""
    try:
        v4 = any(line.split()[0] != "lo" for line in
                 kernel.read_text("/proc/net/route").splitlines()[1:] if line.strip())
    except OSError:
        v4 = False
    try:
        v6 = any(line.split()[-1] != "lo" for line in
                 kernel.read_text("/proc/net/if_inet6").splitlines() if line.strip())
    except OSError:
        v6 = False
    return v4, v6


def _lookup(kernel: Any, host: str, families: tuple[int, ...], flags: int) -> _Found:
    """The addresses of a host name or numeric address."""
    numeric = _numeric(host)
    if numeric is not None:
        if numeric[0] not in families:
            raise _gaierror(_socket.EAI_ADDRFAMILY)
        return _Found([numeric], host, [])
    if flags & _socket.AI_NUMERICHOST or not host.strip("."):
        raise _gaierror(_socket.EAI_NONAME)
    cfg = config(kernel)
    found = _from_hosts(cfg, host, families)
    if found is None and _is_localhost(host):
        # RFC 6761: localhost is the loopback, hosts file or not; no DNS.
        found = _Found([a for a in ((AF_INET6, "::1"), (AF_INET, "127.0.0.1"))
                        if a[0] in families], "localhost", [])
    if found is None:
        found = _own_name(kernel, host, families)
    if found is None:
        found = _from_dns(kernel, cfg, host, families)
    return found


def _own_name(kernel: Any, host: str, families: tuple[int, ...]) -> _Found | None:
    """The addresses of the kernel's own host name (its uname nodename).

    As glibc's nss-myhostname answers on the host: its interfaces'
    addresses, the loopback ones only if it has no other (127.0.0.2, ::1).
    """
    from lkl.net import rtnl

    name = host.lower().rstrip(".")
    own = kernel.uname().nodename
    if name != own.lower() or own in ("", "(none)"):
        return None
    try:
        addrs = [(fam, addr) for fam, addr, _ in rtnl.addresses(kernel) if fam in families]
    except OSError:
        addrs = []
    usable = [a for a in addrs if not ipaddress.ip_address(a[1]).is_loopback
              and not ipaddress.ip_address(a[1]).is_link_local]
    if not usable:
        usable = [a for a in ((AF_INET, "127.0.0.2"), (AF_INET6, "::1")) if a[0] in families]
    return _Found(usable, own, []) if usable else None


def _is_localhost(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


# ---- the standard library's functions ---------------------------------------------

# glibc's table of socket types and protocols: (type, proto, service protocol
# name or None for "no services", returned when neither type nor proto is
# given, any proto allowed).
_TYPEPROTO = (
    (_socket.SOCK_STREAM, _socket.IPPROTO_TCP, "tcp", True, False),
    (_socket.SOCK_DGRAM, _socket.IPPROTO_UDP, "udp", True, False),
    (6, 33, "dccp", False, False),                      # SOCK_DCCP, IPPROTO_DCCP
    (_socket.SOCK_DGRAM, 136, "udplite", False, False),  # IPPROTO_UDPLITE
    (_socket.SOCK_STREAM, 132, "sctp", False, False),    # IPPROTO_SCTP
    (_socket.SOCK_SEQPACKET, 132, "sctp", False, False),
    (_socket.SOCK_RAW, 0, None, True, True),
)

_AI_ALL_FLAGS = int(_socket.AI_PASSIVE | _socket.AI_CANONNAME | _socket.AI_NUMERICHOST
                 | _socket.AI_V4MAPPED | _socket.AI_ALL | _socket.AI_ADDRCONFIG
                 | _socket.AI_NUMERICSERV | 0x0040 | 0x0080 | 0x0100)  # AI_IDN & co


def _host_arg(host: Any) -> str | None:
    if host is None:
        return None
    if isinstance(host, str):
        try:
            return host.encode("idna").decode("ascii") if not host.isascii() else host
        except UnicodeError as e:
            raise UnicodeError(f"encoding with 'idna' codec failed ({e})") from None
    if isinstance(host, (bytes, bytearray)):
        return bytes(host).decode("ascii", "surrogateescape")
    raise TypeError("getaddrinfo() argument 1 must be string or None")


def _port_arg(port: Any) -> str | None:
    if port is None:
        return None
    if isinstance(port, int):
        return str(int(port))
    if isinstance(port, str):
        return port
    if isinstance(port, (bytes, bytearray)):
        return bytes(port).decode("ascii", "surrogateescape")
    raise OSError("Int or String expected")


def _socket_kinds(port: str | None, type: int, proto: int, flags: int
                  ) -> list[tuple[int, int, int]]:
    """(type, proto, port) per result, as glibc picks them."""
    numeric = port is None or re.fullmatch(r"\s*\+?[0-9]+", port) is not None
    number = int(port) & 0xFFFF if port is not None and numeric else 0
    if not numeric and flags & _socket.AI_NUMERICSERV:
        raise _gaierror(_socket.EAI_NONAME)
    chosen = None
    if type or proto:
        for entry in _TYPEPROTO:
            t, p, _name, _default, anyproto = entry
            if (type and type != t) or (proto and not anyproto and proto != p):
                continue
            chosen = entry
            break
        if chosen is None:
            raise _gaierror(_socket.EAI_SOCKTYPE if type else _socket.EAI_SERVICE)
        if chosen[2] is None and port is not None:
            raise _gaierror(_socket.EAI_SERVICE)  # raw sockets have no ports
    if numeric:
        if chosen is not None:
            t, p, _name, _default, anyproto = chosen
            return [(t, proto if anyproto else p, number)]
        return [(t, p, number) for t, p, _n, default, _a in _TYPEPROTO if default]
    assert port is not None
    entries = [chosen] if chosen is not None else list(_TYPEPROTO)
    kinds = []
    for t, p, name, _default, anyproto in entries:
        if name is None:
            continue
        if chosen is None and ((type and type != t) or (proto and not anyproto and proto != p)):
            continue
        try:
            # The host's services(5) database: a local file, no network.
            number = _socket.getservbyname(port, name)
        except OSError:
            continue
        kinds.append((t, proto if anyproto else p, number))
    if not kinds:
        raise _gaierror(_socket.EAI_SERVICE)
    return kinds


def getaddrinfo(kernel: Any, host: Any, port: Any, family: int = 0, type: int = 0,
                proto: int = 0, flags: int = 0) -> list[tuple[Any, ...]]:
    """socket.getaddrinfo, resolved through ``kernel`` (None: the running one).

    Returns ``[(family, type, proto, canonname, sockaddr), ...]`` with the
    standard library's enum types; raises socket.gaierror.
    """
    host_s = _host_arg(host)
    port_s = _port_arg(port)
    for value, what in ((family, "family"), (type, "type"), (proto, "proto"), (flags, "flags")):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"'{_type_name(value)}' object cannot be interpreted as an "
                            f"integer ({what})")
    if host_s is None and port_s is None:
        raise _gaierror(_socket.EAI_NONAME)
    if flags & ~_AI_ALL_FLAGS:
        raise _gaierror(_socket.EAI_BADFLAGS)
    if flags & _socket.AI_CANONNAME and host_s is None:
        raise _gaierror(_socket.EAI_BADFLAGS)
    if family not in (_socket.AF_UNSPEC, AF_INET, AF_INET6):
        raise _gaierror(_socket.EAI_FAMILY)
    kinds = _socket_kinds(port_s, type, proto, flags)
    k = _kernel_of(kernel)
    mapped = family == AF_INET6 and flags & _socket.AI_V4MAPPED
    if host_s is None:
        passive = flags & _socket.AI_PASSIVE
        both = [(AF_INET, "0.0.0.0"), (AF_INET6, "::")] if passive else \
            [(AF_INET6, "::1"), (AF_INET, "127.0.0.1")]
        found = _Found([a for a in both if family in (0, a[0])], "", [])
    else:
        families: tuple[int, ...] = (AF_INET, AF_INET6) if family == 0 or mapped else (family,)
        if flags & _socket.AI_ADDRCONFIG and family == 0:
            v4, v6 = _configured_families(k)
            if v4 != v6:
                families = (AF_INET,) if v4 else (AF_INET6,)
        found = _lookup(k, host_s, families, flags)
        if mapped:
            native = [a for a in found.addresses if a[0] == AF_INET6]
            as_v6 = [(AF_INET6, f"::ffff:{a}") for f, a in found.addresses if f == AF_INET]
            found.addresses = native + as_v6 if flags & _socket.AI_ALL or not native else native
        found.addresses = _sorted(k, found.addresses)
    results: list[tuple[Any, ...]] = []
    for fam, address in found.addresses:
        for t, p, number in kinds:
            canon = found.canonical if (flags & _socket.AI_CANONNAME and not results) else ""
            results.append((_socket.AddressFamily(fam), _socket.SocketKind(t), p, canon,
                            _sockaddr(k, fam, address, number)))
    return results


def _type_name(value: object) -> str:
    """The type name the standard library's errors quote."""
    return type(value).__name__


def gethostbyname(kernel: Any, name: str) -> str:
    """socket.gethostbyname through ``kernel``: one IPv4 address, as a str."""
    if not isinstance(name, str):
        raise TypeError(f"gethostbyname() argument 1 must be str, not {_type_name(name)}")
    special = _special_ipv4(name)
    if special is not None:
        return special
    return str(getaddrinfo(kernel, name, None, AF_INET)[0][4][0])


def _special_ipv4(name: str) -> str | None:
    # The stdlib's setipaddr(): "" is INADDR_ANY, "<broadcast>" INADDR_BROADCAST.
    if name == "":
        return "0.0.0.0"
    if name == "<broadcast>":
        return "255.255.255.255"
    return None


def gethostbyname_ex(kernel: Any, name: str) -> tuple[str, list[str], list[str]]:
    """socket.gethostbyname_ex through ``kernel``: (name, aliases, IPv4 addresses)."""
    if not isinstance(name, str):
        raise TypeError(f"gethostbyname_ex() argument 1 must be str, not {_type_name(name)}")
    special = _special_ipv4(name)
    if special is not None:
        return special, [], [special]
    host = _host_arg(name)
    assert host is not None
    found = _lookup(_kernel_of(kernel), host, (AF_INET,), 0)
    addresses = [a for f, a in found.addresses if f == AF_INET]
    if _numeric(host) is not None:
        return addresses[0], [], addresses
    canonical = found.canonical or host
    aliases = list(found.aliases)
    if host.rstrip(".").lower() != canonical.lower() and host not in aliases:
        aliases.append(host)
    return canonical, aliases, addresses


def _reverse(kernel: Any, cfg: Config, address: str) -> str | None:
    """The name of ``address``: the hosts file, then a DNS PTR query."""
    want = ipaddress.ip_address(address.partition("%")[0])
    for addr, names in _hosts(cfg.hosts_file):
        try:
            if ipaddress.ip_address(addr.partition("%")[0]) == want:
                return names[0]
        except ValueError:
            continue
    ptr = dns.reversename.from_address(str(want)).to_text()
    outcome = _ask(kernel, cfg, ptr, (dns.rdatatype.PTR,))
    if outcome.failed and not outcome.answers:
        raise _gaierror(_socket.EAI_AGAIN)
    names = outcome.answers.get(dns.rdatatype.PTR, [])
    return names[0].rstrip(".") if names else None


def gethostbyaddr(kernel: Any, ip_address: str) -> tuple[str, list[str], list[str]]:
    """socket.gethostbyaddr through ``kernel``: (name, aliases, [address]).

    ``ip_address`` may be a name too (it is resolved first, as the stdlib
    does); an address without a name raises socket.herror(1, "Unknown host").
    """
    if not isinstance(ip_address, str):
        raise TypeError(f"gethostbyaddr() argument 1 must be str, not {_type_name(ip_address)}")
    k = _kernel_of(kernel)
    address = str(getaddrinfo(k, ip_address, None, 0, _socket.SOCK_STREAM)[0][4][0])
    cfg = config(k)
    name = _reverse(k, cfg, address)
    if name is None:
        raise _socket.herror(1, "Unknown host")
    aliases: list[str] = []
    want = ipaddress.ip_address(address)
    for addr, names in _hosts(cfg.hosts_file):
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(addr.partition("%")[0]) == want and names[0] == name:
                aliases = names[1:]
                break
    return name, aliases, [address]


def _scope_name(kernel: Any, address: str, scope_id: int, flags: int) -> str:
    """The %scope of a numeric IPv6 address, as glibc writes it.

    The kernel's interface name for link-local ones (unless NI_NUMERICSCOPE).
    """
    ip = ipaddress.IPv6Address(address.partition("%")[0])
    link_local = ip.is_link_local or (ip.is_multicast and (ip.packed[1] & 0x0F) == 2)
    if link_local and not flags & getattr(_socket, "NI_NUMERICSCOPE", 0x100):
        from lkl.net import rtnl

        with contextlib.suppress(OSError):
            return rtnl.ifname(kernel, scope_id)
    return str(scope_id)


def _sockaddr_problem(sockaddr: Any, flags: Any) -> Exception | None:
    """What is wrong with getnameinfo's arguments, as the stdlib says it."""
    if not isinstance(sockaddr, tuple):
        return TypeError("getnameinfo() argument 1 must be a tuple")
    if isinstance(flags, bool) or not isinstance(flags, int):
        return TypeError(f"'{_type_name(flags)}' object cannot be interpreted as an integer")
    if not 2 <= len(sockaddr) <= 4 or not isinstance(sockaddr[0], str) or \
            isinstance(sockaddr[1], bool) or not isinstance(sockaddr[1], int) or \
            not all(isinstance(x, int) for x in sockaddr[2:]):
        return TypeError("getnameinfo(): illegal sockaddr argument")
    if len(sockaddr) > 2 and not 0 <= sockaddr[2] <= 0xFFFFF:
        return OverflowError("getnameinfo(): flowinfo must be 0-1048575.")
    return None


def getnameinfo(kernel: Any, sockaddr: Any, flags: int) -> tuple[str, str]:
    """socket.getnameinfo through ``kernel``: ``(host, port)`` strings."""
    problem = _sockaddr_problem(sockaddr, flags)
    if problem is not None:
        # Raised with no reference to the arguments left in this frame
        # (the stdlib's test counts references to them).
        del sockaddr, flags, kernel
        raise problem
    host, port = sockaddr[0], sockaddr[1]
    scope_id = sockaddr[3] if len(sockaddr) > 3 else 0
    k = _kernel_of(kernel)
    infos = getaddrinfo(k, host, port, 0, _socket.SOCK_DGRAM, 0, _socket.AI_NUMERICHOST)
    if len(infos) > 1:
        raise OSError("sockaddr resolved to multiple addresses")
    family, address = infos[0][0], infos[0][4][0]
    if family == AF_INET and len(sockaddr) != 2:
        raise OSError("IPv4 sockaddr must be 2 tuple")
    if family == AF_INET6 and not scope_id:
        scope_id = infos[0][4][3]
    name: str | None = None
    if not flags & _socket.NI_NUMERICHOST:
        cfg = config(k)
        name = _reverse(k, cfg, address)
        if name is not None and flags & _socket.NI_NOFQDN:
            for domain in cfg.search[:1]:
                if name.lower().endswith("." + domain.lower()):
                    name = name[:-len(domain) - 1]
    if name is None:
        if flags & _socket.NI_NAMEREQD:
            raise _gaierror(_socket.EAI_NONAME)
        name = address
        if family == AF_INET6 and scope_id:
            name = f"{address}%{_scope_name(k, address, scope_id, flags)}"
    service = str(port & 0xFFFF)
    if not flags & _socket.NI_NUMERICSERV:
        with contextlib.suppress(OSError):
            service = _socket.getservbyport(port & 0xFFFF,
                                            "udp" if flags & _socket.NI_DGRAM else "tcp")
    return name, service


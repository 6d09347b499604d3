"""Name resolution through the kernel (lkl.resolver).

DNS answers come from a small responder (tests/python/dnsresponder.py)
served on the session kernel's own loopback, or, for the TAP test, on a
host socket inside a network namespace the test makes.  No test reads the
host's resolv.conf or sends a packet outside its kernel or namespace.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dnsresponder import Responder
from helpers import in_netns, run_ok

import lkl
from harness.netns import Netns
from lkl import resolver

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, TAP)")

RECORDS = {
    ("www.corp.test.", "A"): ["10.77.0.1", "10.77.0.2"],
    ("www.corp.test.", "AAAA"): ["fd00:77::1"],
    ("v4only.corp.test.", "A"): ["10.77.0.4"],
    ("alias.corp.test.", "CNAME"): ["www.corp.test."],
    ("big.corp.test.", "A"): [f"10.77.1.{i}" for i in range(1, 60)],
    ("mx-only.corp.test.", "MX"): ["10 mail.corp.test."],
    ("4.0.77.10.in-addr.arpa.", "PTR"): ["v4only.corp.test."],
    ("broken.corp.test.", "A"): ["10.77.0.9"],
    ("slow.corp.test.", "A"): ["10.77.0.10"],
    ("a.b.c.", "A"): ["10.77.0.11"],
}
HOSTS = """\
# a hosts file of the test
10.66.0.1   files.test  files  ftp.files.test
fd00:66::1  files.test
127.0.0.1   localhost
::1         localhost ip6-localhost
"""


@pytest.fixture
def dns_on_loopback(kernel: Any, tmp_path: Path) -> Iterator[Responder]:
    """A responder on the session kernel's 127.0.0.1:53 (UDP and TCP), and
    the kernel's resolver pointed at it; undone afterwards."""
    udp = kernel.socket(lkl.AF_INET, lkl.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 53))
    tcp = kernel.socket()
    tcp.setsockopt(lkl.SOL_SOCKET, lkl.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", 53))
    tcp.listen()
    hosts = tmp_path / "hosts"
    hosts.write_text(HOSTS)
    responder = Responder(RECORDS, truncate=("big.corp.test.",),
                          servfail=("broken.corp.test.",), silent=("slow.corp.test.",))
    responder.serve(udp, tcp)
    resolver.configure(kernel, nameservers=["127.0.0.1"], search=["corp.test"], ndots=1,
                       timeout=0.5, attempts=2, hosts_file=str(hosts), resolv_conf=None)
    yield responder
    responder.close()
    udp.close()
    tcp.close()
    resolver._configs.pop(kernel, None)


def addresses(infos: list[tuple[Any, ...]]) -> list[str]:
    out: list[str] = []
    for info in infos:
        if info[4][0] not in out:
            out.append(info[4][0])
    return out


NUMERIC_CASES = [
    ("127.0.0.1", 80, 0, 0, 0, 0),
    ("127.0.0.1", "80", socket.AF_INET, socket.SOCK_STREAM, 0, 0),
    ("127.1", 8080, 0, 0, 0, 0),
    ("::1", "http", 0, 0, 0, 0),
    ("fe80::1%3", 443, socket.AF_INET6, 0, 0, 0),
    ("10.0.0.1", "domain", 0, 0, 0, 0),
    ("10.0.0.1", 70000, 0, 0, 0, 0),
    ("10.0.0.1", None, 0, 0, 0, socket.AI_CANONNAME),
    ("10.0.0.1", 0, 0, 0, 132, 0),
    ("10.0.0.1", 0, 0, socket.SOCK_SEQPACKET, 0, 0),
    ("10.0.0.1", 0, 0, socket.SOCK_RAW, 99, 0),
    ("10.0.0.1", None, 0, socket.SOCK_RAW, 99, 0),
    (None, 80, 0, 0, 0, 0),
    (None, 80, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE),
    (None, "80", socket.AF_INET6, 0, 0, socket.AI_PASSIVE),
    (b"127.0.0.1", b"81", 0, socket.SOCK_DGRAM, 0, 0),
    # errors
    ("10.0.0.1", -1, 0, 0, 0, 0),
    ("10.0.0.1", "no-such-service", 0, 0, 0, 0),
    ("10.0.0.1", "http", 0, socket.SOCK_RAW, 0, 0),
    ("10.0.0.1", 80, socket.AF_UNIX, 0, 0, 0),
    ("10.0.0.1", 80, socket.AF_INET6, 0, 0, 0),
    ("10.0.0.1", 80, 0, 0, 0, 0x40000),
    ("", 80, 0, 0, 0, 0),
    (None, None, 0, 0, 0, 0),
    ("not numeric", 80, 0, 0, 0, socket.AI_NUMERICHOST),
    ("10.0.0.1", "http", 0, 0, 0, socket.AI_NUMERICSERV),
]


def _outcome(call: Any) -> Any:
    try:
        return call()
    except socket.gaierror as e:
        return ("gaierror", e.errno, e.strerror)


@pytest.mark.parametrize("case", NUMERIC_CASES, ids=repr)
def test_numeric_like_the_host(kernel: Any, case: tuple[Any, ...]) -> None:
    """Numeric hosts and service names give what the host's libc gives
    (asked with AI_NUMERICHOST: the host resolves no name)."""
    host, port, family, type_, proto, flags = case
    ours = _outcome(lambda: resolver.getaddrinfo(kernel, host, port, family, type_, proto,
                                                 flags))
    theirs = _outcome(lambda: socket.getaddrinfo(host, port, family, type_, proto,
                                                 flags | socket.AI_NUMERICHOST))
    if host == "not numeric":
        assert ours == theirs == ("gaierror", socket.EAI_NONAME, "Name or service not known")
    else:
        assert ours == theirs


def test_getnameinfo_keeps_no_reference_to_bad_arguments(kernel: Any) -> None:
    bad = "a string that is not a sockaddr"
    before = sys.getrefcount(bad)
    try:
        resolver.getnameinfo(kernel, bad, 0)
    except TypeError:
        assert sys.getrefcount(bad) == before


def test_argument_errors(kernel: Any) -> None:
    with pytest.raises(TypeError, match="must be string or None"):
        resolver.getaddrinfo(kernel, 12, 80)
    with pytest.raises(OSError, match="Int or String expected"):
        resolver.getaddrinfo(kernel, "127.0.0.1", 1.5)
    with pytest.raises(TypeError):
        resolver.getaddrinfo(kernel, "127.0.0.1", 80, "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a tuple"):
        resolver.getnameinfo(kernel, "127.0.0.1", 0)
    with pytest.raises(TypeError, match="illegal sockaddr"):
        resolver.getnameinfo(kernel, ("127.0.0.1",), 0)
    with pytest.raises(OSError, match="IPv4 sockaddr must be 2 tuple"):
        resolver.getnameinfo(kernel, ("127.0.0.1", 80, 0), 0)
    with pytest.raises(TypeError):
        resolver.gethostbyname(kernel, b"x")  # type: ignore[arg-type]


def test_boot_nameservers_checked(kernel: Any) -> None:
    assert kernel.nameservers is None      # the session kernel: from resolv.conf
    with pytest.raises(TypeError, match="not one string"):
        lkl.boot(nameservers="10.0.0.1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not an IP address"):
        lkl.boot(nameservers=["dns.example"])
    with pytest.raises(TypeError):
        lkl.boot(nameservers=[53])  # type: ignore[list-item]


def test_read_resolv_conf(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nnameserver 10.1.1.1\nnameserver fd00::53\n"
                    "nameserver bogus\ndomain old.test\nsearch a.test b.test.\n"
                    "options ndots:2 timeout:3 attempts:4 rotate edns0\n")
    cfg = resolver.read_resolv_conf(str(conf))
    assert cfg.nameservers == ("10.1.1.1", "fd00::53")
    assert cfg.search == ("a.test", "b.test")
    assert (cfg.ndots, cfg.timeout, cfg.attempts, cfg.rotate) == (2, 3.0, 4, True)
    empty = resolver.read_resolv_conf(str(tmp_path / "missing"))
    assert empty.nameservers == ("127.0.0.1",) and empty.search == ()


def test_hosts_file(kernel: Any, dns_on_loopback: Responder) -> None:
    infos = resolver.getaddrinfo(kernel, "FILES.test", 80, 0, socket.SOCK_STREAM, 0,
                                 socket.AI_CANONNAME)
    # No route to either: the IPv4 address first (RFC 6724 precedence).
    assert addresses(infos) == ["10.66.0.1", "fd00:66::1"]
    assert infos[0][3] == "files.test" and infos[1][3] == ""
    assert infos[1][4] == ("fd00:66::1", 80, 0, 0)
    assert resolver.gethostbyname(kernel, "files") == "10.66.0.1"
    assert resolver.gethostbyname_ex(kernel, "ftp.files.test") == (
        "files.test", ["files", "ftp.files.test"], ["10.66.0.1"])
    # localhost: both loopbacks are reachable, ::1 ranks first as in glibc.
    assert addresses(resolver.getaddrinfo(kernel, "localhost", 80)) == ["::1", "127.0.0.1"]
    assert resolver.getnameinfo(kernel, ("10.66.0.1", 80), 0) == ("files.test", "http")
    assert resolver.gethostbyaddr(kernel, "10.66.0.1") == (
        "files.test", ["files", "ftp.files.test"], ["10.66.0.1"])
    # Not in the hosts file: still the loopback (RFC 6761), without DNS.
    assert addresses(resolver.getaddrinfo(kernel, "app.localhost", 80, socket.AF_INET)) == [
        "127.0.0.1"]
    assert not dns_on_loopback.served, "the hosts file answered without DNS"


def test_own_host_name(kernel: Any, dns_on_loopback: Responder) -> None:
    """The kernel's host name starts as the host's and resolves without DNS,
    as nss-myhostname answers on the host (loopback when it has no other)."""
    assert kernel.uname().nodename == os.uname().nodename
    before = kernel.uname().nodename.encode()
    name = b"lkl-own-name.test"
    kernel.syscall("sethostname", name, len(name))
    try:
        assert socket.gethostname() == os.uname().nodename, "the host's is untouched"
        others = [a for fam, a, _ in lkl.net.rtnl.addresses(kernel)
                  if not a.startswith(("127.", "::1", "fe80:"))]
        want = sorted(others) or ["127.0.0.2", "::1"]
        got = resolver.getaddrinfo(kernel, "LKL-own-name.test.", 80, 0, socket.SOCK_STREAM)
        assert sorted(addresses(got)) == want
        assert resolver.gethostbyname_ex(kernel, "lkl-own-name.test")[0] == "lkl-own-name.test"
        assert not dns_on_loopback.served
    finally:
        kernel.syscall("sethostname", before, len(before))


def test_dns_through_the_kernel(kernel: Any, dns_on_loopback: Responder) -> None:
    before = kernel.snmp()["Udp"]["OutDatagrams"]
    infos = resolver.getaddrinfo(kernel, "www.corp.test", 443, type=socket.SOCK_STREAM)
    assert sorted(addresses(infos)) == ["10.77.0.1", "10.77.0.2", "fd00:77::1"]
    assert all(i[1] == socket.SOCK_STREAM and i[2] == socket.IPPROTO_TCP for i in infos)
    assert kernel.snmp()["Udp"]["OutDatagrams"] > before   # the queries were the kernel's
    assert dns_on_loopback.served["udp A www.corp.test."] == 1
    assert dns_on_loopback.served["udp AAAA www.corp.test."] == 1
    # AF_INET asks for A records only.
    v4 = resolver.getaddrinfo(kernel, "www.corp.test", 80, socket.AF_INET, socket.SOCK_DGRAM)
    assert sorted(addresses(v4)) == ["10.77.0.1", "10.77.0.2"]
    assert dns_on_loopback.served["udp AAAA www.corp.test."] == 1


def test_search_domains_and_cname(kernel: Any, dns_on_loopback: Responder) -> None:
    # "alias" has fewer dots than ndots: the search domain comes first.
    infos = resolver.getaddrinfo(kernel, "alias", 80, socket.AF_INET, socket.SOCK_STREAM, 0,
                                 socket.AI_CANONNAME)
    assert sorted(addresses(infos)) == ["10.77.0.1", "10.77.0.2"]
    assert infos[0][3] == "www.corp.test"
    name, aliases, addrs = resolver.gethostbyname_ex(kernel, "alias.corp.test")
    assert (name, aliases, sorted(addrs)) == (
        "www.corp.test", ["alias.corp.test"], ["10.77.0.1", "10.77.0.2"])
    # "a.b.c" has enough dots: tried as it is first (then the search list).
    assert resolver.gethostbyname(kernel, "a.b.c") == "10.77.0.11"
    assert dns_on_loopback.served["udp A a.b.c."] == 1
    assert dns_on_loopback.served["udp A a.b.c.corp.test."] == 0
    # An absolute name is never searched.
    with pytest.raises(socket.gaierror) as e:
        resolver.gethostbyname(kernel, "v4only.")
    assert e.value.errno == socket.EAI_NONAME
    assert dns_on_loopback.served["udp A v4only.corp.test."] == 0


def test_truncated_answer_goes_over_tcp(kernel: Any, dns_on_loopback: Responder) -> None:
    infos = resolver.getaddrinfo(kernel, "big.corp.test", 80, socket.AF_INET,
                                 socket.SOCK_STREAM)
    assert sorted(addresses(infos)) == sorted(f"10.77.1.{i}" for i in range(1, 60))
    assert dns_on_loopback.served["udp A big.corp.test."] == 1
    assert dns_on_loopback.served["tcp A big.corp.test."] == 1


def test_dns_errors(kernel: Any, dns_on_loopback: Responder) -> None:
    def code(name: str, family: int = 0) -> int:
        with pytest.raises(socket.gaierror) as e:
            resolver.getaddrinfo(kernel, name, 80, family)
        assert e.value.strerror == resolver._MESSAGES[e.value.errno]
        return int(e.value.errno or 0)

    assert code("nowhere.corp.test") == socket.EAI_NONAME
    assert code("mx-only.corp.test") == socket.EAI_NODATA
    assert code("v4only.corp.test", socket.AF_INET6) == socket.EAI_NODATA
    assert code("broken.corp.test", socket.AF_INET) == socket.EAI_AGAIN
    # No answer at all: attempts x servers x timeout, then EAI_AGAIN.
    t0 = time.monotonic()
    assert code("slow.corp.test", socket.AF_INET) == socket.EAI_AGAIN
    assert 0.9 < time.monotonic() - t0 < 5
    assert dns_on_loopback.served["udp A slow.corp.test."] == 2


def test_unreachable_nameserver_is_eai_again(kernel: Any, tmp_path: Path) -> None:
    # A kernel loopback address where nothing listens: ICMP port unreachable.
    resolver.configure(kernel, nameservers=["127.0.0.9"], timeout=0.5, attempts=1,
                       hosts_file=None, resolv_conf=None)
    try:
        t0 = time.monotonic()
        with pytest.raises(socket.gaierror) as e:
            resolver.getaddrinfo(kernel, "www.corp.test", 80)
        assert e.value.errno == socket.EAI_AGAIN
        assert time.monotonic() - t0 < 3
    finally:
        resolver._configs.pop(kernel, None)


def test_getnameinfo(kernel: Any, dns_on_loopback: Responder) -> None:
    assert resolver.getnameinfo(kernel, ("10.77.0.4", 53), socket.NI_DGRAM) == (
        "v4only.corp.test", "domain")
    assert dns_on_loopback.served["udp PTR 4.0.77.10.in-addr.arpa."] == 1
    assert resolver.getnameinfo(kernel, ("10.77.0.4", 80), socket.NI_NOFQDN) == ("v4only",
                                                                                 "http")
    assert resolver.getnameinfo(kernel, ("10.77.0.5", 80), 0) == ("10.77.0.5", "http")
    with pytest.raises(socket.gaierror) as e:
        resolver.getnameinfo(kernel, ("10.77.0.5", 80), socket.NI_NAMEREQD)
    assert e.value.errno == socket.EAI_NONAME
    assert resolver.gethostbyaddr(kernel, "10.77.0.4") == ("v4only.corp.test", [],
                                                          ["10.77.0.4"])
    with pytest.raises(socket.herror, match="Unknown host"):
        resolver.gethostbyaddr(kernel, "10.77.0.5")
    numeric = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
    # Link-local scopes are the kernel's interface names, as glibc writes them.
    assert resolver.getnameinfo(kernel, ("fe80::1", 8080, 0, 1), numeric) == ("fe80::1%lo",
                                                                             "8080")
    assert resolver.getnameinfo(kernel, ("ff02::1de:c0:face:8D", 1, 0, 1), numeric) == (
        "ff02::1de:c0:face:8d%lo", "1")
    assert resolver.getnameinfo(kernel, ("fd00::1", 1, 0, 7), numeric) == ("fd00::1%7", "1")


@needs_root
@pytest.mark.watchdog(120)
def test_dns_over_a_tap_with_tcp_fallback() -> None:
    """The kernel asks a responder on the far side of its TAP, inside a
    namespace; a truncated UDP answer is fetched again over TCP."""
    here = Path(__file__).resolve().parent
    with Netns() as ns:
        ns.add_tap("tdns", "10.200.53.1/24")
        out = in_netns(ns.name, f"""
            import socket, sys
            sys.path.insert(0, {str(here)!r})
            import lkl
            from lkl import resolver
            from dnsresponder import Responder
            from test_resolver import RECORDS

            # The responder: host sockets, inside this namespace only.
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("10.200.53.1", 53))
            tcp = socket.socket()
            tcp.bind(("10.200.53.1", 53)); tcp.listen()
            dns_server = Responder(RECORDS, truncate=("big.corp.test.",)).serve(udp, tcp)

            nic = lkl.Nic(lkl.Tap("tdns"))
            k = lkl.boot(nics=[nic], nameservers=["10.200.53.1"])
            nic.up(); nic.add_address("10.200.53.2/24")
            assert k.nameservers == ("10.200.53.1",)
            resolver.configure(k, search=["corp.test"], timeout=2, attempts=2,
                               hosts_file=None, resolv_conf=None)
            print("A", sorted(i[4][0] for i in resolver.getaddrinfo(
                k, "www", 80, socket.AF_INET, socket.SOCK_STREAM)))
            big = resolver.getaddrinfo(k, "big.corp.test", 80, socket.AF_INET,
                                       socket.SOCK_STREAM)
            print("BIG", len(big))
            try:
                resolver.getaddrinfo(k, "nowhere.corp.test", 80)
            except socket.gaierror as e:
                print("NONAME", e.errno == socket.EAI_NONAME)
            print("SERVED", dns_server.served["udp A big.corp.test."],
                  dns_server.served["tcp A big.corp.test."])
            st = nic.stats()
            print("NIC", st["kernel"]["tx_packets"] > 0 and st["kernel"]["rx_packets"] > 0)
            dns_server.close()
            k.halt()
        """)
    lines = dict(line.split(" ", 1) for line in out.splitlines())
    assert lines["A"] == "['10.77.0.1', '10.77.0.2']"
    assert lines["BIG"] == "59"
    assert lines["NONAME"] == "True"
    assert lines["SERVED"] == "1 1"
    assert lines["NIC"] == "True"


def test_no_kernel_is_a_kernel_error_not_a_dns_failure() -> None:
    out = run_ok("""
        import lkl
        from lkl import resolver
        k = lkl.boot()
        resolver.configure(k, nameservers=["127.0.0.1"], hosts_file=None, resolv_conf=None,
                           timeout=0.5, attempts=1)
        k.halt()
        try:
            resolver.getaddrinfo(k, "www.corp.test", 80)
        except lkl.KernelError as e:
            print("KernelError", e.errno)
    """)
    assert out.split() == ["KernelError", "19"]  # ENODEV

"""``python -m lkl proxy``: guests on the kernel's TCP relayed to host backends.

The proxy runs as a subprocess in a namespace of the test (see
proxyrig.py): the guest is the namespace's kernel on the TAP, the
backends listen on the namespace's loopback.  Addresses 10.200.17.0/24.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest
from helpers import in_threads
from proxyrig import (
    PROXY_IP,
    ROOT,
    Backend,
    Netns,
    ProxyProcess,
    guest_connect,
    guest_socket,
    rig,
    round_trip,
    stats,
    wait_until,
)

from lkl.proxy.limits import Limits
from lkl.proxy.relay import proxy_header

IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="TAP devices and namespaces need root")
PORT = 8017


def _cli(*args: str, config: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("LKL_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "lkl", "proxy", *args], capture_output=True,
                          text=True, timeout=60, env=env, cwd=ROOT)


BASE = ["--nic", "tap:g0", "--address", "10.0.0.2/24", "--listen", "10.0.0.2:443"]


# ---- configuration (no kernel) --------------------------------------------------


def test_check_prints_the_configuration():
    out = _cli(*BASE, "--backend", "127.0.0.1:8443", "--backend", "[::1]:8444",
               "--max-per-source", "5", "--proxy-protocol", "v2", "--check")
    assert out.returncode == 0, out.stderr
    cfg = json.loads(out.stdout)
    assert cfg["backends"] == ["127.0.0.1:8443", "::1:8444"]
    assert cfg["listen"] == ["10.0.0.2:443"]
    assert cfg["max_per_source"] == 5 and cfg["proxy_protocol"] == "v2"
    assert cfg["sandbox"] is True and cfg["kernel"]["nics"][0]["backend"] == "tap:g0"


@pytest.mark.parametrize("args, message", [
    (BASE, "--backend"),
    (["--nic", "tap:g0", "--backend", "127.0.0.1:1"], "--listen"),
    ([*BASE, "--backend", "localhost:80"], "not an IP address"),
    ([*BASE, "--backend", "127.0.0.1:70000"], "port out of range"),
    ([*BASE, "--backend", "127.0.0.1:1", "--tls-cert", "/nonexistent"], "go together"),
    ([*BASE, "--backend", "127.0.0.1:1", "--tls-cert", "/nonexistent", "--tls-key", "/x"],
     "--tls-cert"),
    ([*BASE, "--backend", "127.0.0.1:1", "--idle-timeout", "-1"], "positive"),
    ([*BASE, "--backend", "127.0.0.1:1", "--stats", "10.0.0.1:80"], "loopback"),
    ([*BASE, "--backend", "127.0.0.1:1", "--user", "no-such-user-lkl"], "no such user"),
])
def test_bad_options_exit_2(args, message):
    out = _cli(*args, "--check")
    assert out.returncode == 2
    assert message in out.stderr, out.stderr


def test_toml_config_and_command_line_override(tmp_path):
    path = tmp_path / "proxy.toml"
    path.write_text('memory = "96M"\n'
                    '[[nic]]\nbackend = "tap:g1"\naddress = ["10.0.0.2/24"]\n'
                    'offload = "CHECKSUM"\n'
                    '[proxy]\nlisten = ["10.0.0.2:80"]\nbackend = ["127.0.0.1:8080"]\n'
                    'idle_timeout = 7\nmax_connections = 9\n')
    out = _cli("--config", str(path), "--max-connections", "3", "--check")
    assert out.returncode == 0, out.stderr
    cfg = json.loads(out.stdout)
    assert cfg["kernel"]["memory"] == "96M"
    assert cfg["kernel"]["nics"][0]["offload"] == "CHECKSUM"
    assert cfg["idle_timeout"] == 7 and cfg["max_connections"] == 3
    assert cfg["max_per_source"] == 3   # never above the total
    path.write_text('[proxy]\nlisten = ["10.0.0.2:80"]\nbakend = ["127.0.0.1:1"]\n')
    out = _cli("--config", str(path), "--nic", "tap:g1", "--check")
    assert out.returncode == 2 and "unknown proxy setting 'bakend'" in out.stderr


def test_proxy_protocol_headers():
    assert proxy_header("v1", ("10.0.0.1", 40000), ("10.0.0.2", 443)) == \
        b"PROXY TCP4 10.0.0.1 10.0.0.2 40000 443\r\n"
    assert proxy_header("v1", ("fd00::1", 1), ("fd00::2", 2)) == \
        b"PROXY TCP6 fd00::1 fd00::2 1 2\r\n"
    v2 = proxy_header("v2", ("10.0.0.1", 40000), ("10.0.0.2", 443))
    assert v2[:12] == b"\r\n\r\n\x00\r\nQUIT\n" and v2[12:14] == b"\x21\x11"
    assert struct.unpack("!H", v2[14:16])[0] == 12 == len(v2) - 16
    assert v2[16:20] == ipaddress.ip_address("10.0.0.1").packed
    assert struct.unpack("!HH", v2[24:28]) == (40000, 443)
    with pytest.raises(ValueError):
        proxy_header("v3", ("10.0.0.1", 1), ("10.0.0.2", 2))


def test_limits_total_and_per_source():
    lim = Limits(3, 2)
    assert lim.acquire("a") is None and lim.acquire("a") is None
    assert lim.acquire("a") == "max_per_source"
    assert lim.acquire("b") is None
    assert lim.acquire("c") == "max_connections"
    lim.release("a")
    assert lim.acquire("c") is None and lim.open == 3 and lim.sources() == 3
    with pytest.raises(ValueError):
        Limits(0, 1)


# ---- the proxy on a TAP -----------------------------------------------------------


def dispatch(conn: socket.socket) -> None:
    """The backends' behaviours, chosen by the connection's first byte."""
    cmd = conn.recv(1)
    if cmd == b"E":                       # echo to EOF
        while data := conn.recv(65536):
            conn.sendall(data)
    elif cmd == b"F":                     # FIN first, then count what still comes
        conn.sendall(b"bye")
        conn.shutdown(socket.SHUT_WR)
        total = 0
        while data := conn.recv(65536):
            total += len(data)
        RESULTS["fin_first"] = total
    elif cmd == b"R":                     # reset once the guest said something
        conn.recv(1)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    elif cmd == b"W":                     # see a reset coming from the guest
        conn.sendall(b"ready")
        try:
            while conn.recv(65536):
                pass
            RESULTS["guest_reset"] = "eof"
        except ConnectionResetError:
            RESULTS["guest_reset"] = "reset"
    elif cmd == b"H":                     # hold: read nothing until told (backpressure)
        HOLD.wait(30)
        while conn.recv(65536):
            pass


RESULTS: dict[str, object] = {}
HOLD = threading.Event()


def _echo_trip(ns, size, seed):
    """A round trip through dispatch's echo ("E")."""
    return round_trip(ns, PORT, size, seed, prefix=b"E")


@pytest.fixture(scope="module")
def proxy_rig():
    if not IS_ROOT:
        pytest.skip("needs root")
    with rig(backends=2, handler=dispatch, env={"LKL_PROXY_TEST_HOOKS": "1"},
             port=PORT) as r:
        yield r


@needs_root
@pytest.mark.watchdog(180)
def test_many_concurrent_connections_byte_exact(proxy_rig):
    ns, proxy, backends, sp = proxy_rig
    results = in_threads(lambda i: _echo_trip(ns, (1 << 20) + i * 4097, i), 24, 120)
    assert results == [True] * 24
    st = wait_until(lambda: (s := stats(sp))["open"] == 0 and s, 10, "connections closed")
    assert st["totals"]["accepted"] >= 24
    assert st["totals"]["bytes_up"] >= 24 << 20 and st["totals"]["backend_errors"] == 0
    assert all(be.accepted >= 10 for be in backends), [be.accepted for be in backends]
    assert st["kernel_tcp"]["PassiveOpens"] >= 24
    assert any(e["event"] == "close" and e["guest"].startswith("10.200.17.1:")
               for e in proxy.events("close"))


@needs_root
@pytest.mark.watchdog(60)
def test_half_close_from_the_backend(proxy_rig):
    ns, proxy, _, _ = proxy_rig
    RESULTS.pop("fin_first", None)
    with guest_connect(ns, PORT, b"F") as s:
        data = b""
        while chunk := s.recv(100):
            data += chunk
        assert data == b"bye"             # the backend's FIN arrived as a FIN
        s.sendall(b"x" * 300000)         # and the guest may still send
        s.shutdown(socket.SHUT_WR)
        wait_until(lambda: "fin_first" in RESULTS, 10, "backend saw the guest's FIN")
    assert RESULTS["fin_first"] == 300000


@needs_root
@pytest.mark.watchdog(60)
def test_reset_from_the_backend_reaches_the_guest(proxy_rig):
    ns, _, _, sp = proxy_rig
    before = stats(sp)["totals"]["resets_from_backend"]
    with guest_connect(ns, PORT, b"Rx") as s, pytest.raises(ConnectionResetError):
        while s.recv(100):
            pass
    wait_until(lambda: stats(sp)["totals"]["resets_from_backend"] == before + 1, 10,
               "the reset counted")


@needs_root
@pytest.mark.watchdog(60)
def test_reset_from_the_guest_reaches_the_backend(proxy_rig):
    ns, _, _, sp = proxy_rig
    RESULTS.pop("guest_reset", None)
    s = guest_connect(ns, PORT, b"W")
    assert s.recv(5) == b"ready"
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    wait_until(lambda: "guest_reset" in RESULTS, 10, "the backend's end")
    assert RESULTS["guest_reset"] == "reset"


@needs_root
@pytest.mark.watchdog(90)
def test_slow_backend_backpressure_bounds_the_proxy(proxy_rig):
    """A backend that reads nothing: the guest's sends stall instead of the
    proxy buffering; the proxy holds a bounded amount, then all of it flows."""
    ns, _, _, sp = proxy_rig
    HOLD.clear()
    s = guest_connect(ns, PORT, b"H", timeout=None)
    s.setblocking(False)
    sent = 0
    chunk = b"z" * 65536
    deadline = time.monotonic() + 10
    stalled_since = None
    while time.monotonic() < deadline and sent < (256 << 20):
        try:
            sent += s.send(chunk)
            stalled_since = None
        except BlockingIOError:
            stalled_since = stalled_since or time.monotonic()
            if time.monotonic() - stalled_since > 1.0:
                break
            time.sleep(0.01)
    assert stalled_since is not None, f"never stalled after {sent} bytes"
    assert sent < (64 << 20), sent        # buffers on the way are bounded
    conn = [c for c in stats(sp)["connections"] if c["bytes_up"] > 0]
    HOLD.set()
    s.setblocking(True)
    s.close()
    assert conn and conn[0]["bytes_up"] <= sent


@needs_root
@pytest.mark.watchdog(60)
def test_sandbox_refuses_escapes_while_traffic_flows(proxy_rig):
    ns, proxy, _, sp = proxy_rig
    st = stats(sp)
    assert st["sandboxed"] is True
    assert st["capabilities"]["CapEff"] == 0 and st["capabilities"]["CapBnd"] == 0
    tried = stats(sp, "/test/escape")
    assert tried == {"open_read": 1, "open_write": 1, "host_listen": 1, "unix_socket": 1,
                     "fork": 1, "execve": 1}    # EPERM each, and the proxy lives on
    assert _echo_trip(ns, 1 << 20, 99)
    assert proxy.proc.poll() is None


# ---- proxies of their own --------------------------------------------------------


@needs_root
@pytest.mark.watchdog(90)
def test_limits_refuse_and_count():
    held = threading.Event()

    def hold(conn):
        conn.sendall(b"hi")
        held.wait(20)

    with rig(["--max-per-source", "2", "--max-connections", "3"], handler=hold) as (
            ns, _, bes, sp):
        socks = []
        try:
            for _ in range(2):
                s = guest_connect(ns, 8017)
                assert s.recv(2) == b"hi"
                socks.append(s)
            s = guest_socket(ns, timeout=10)
            socks.append(s)
            # The kernel accepts, the proxy resets (maybe before connect returned).
            with pytest.raises(ConnectionResetError):
                s.connect((PROXY_IP, 8017))
                s.recv(10)
            st = stats(sp)
            assert st["totals"]["refused_max_per_source"] == 1 and st["open"] == 2
            assert bes[0].accepted == 2
        finally:
            held.set()
            for s in socks:
                s.close()


@needs_root
@pytest.mark.watchdog(60)
def test_idle_timeout_resets_both_sides():
    with rig(["--idle-timeout", "1", "--no-sandbox"]) as (ns, _, bes, sp):
        assert stats(sp)["sandboxed"] is False and stats(sp)["capabilities"] is None
        with guest_connect(ns, 8017, b"ping") as s:
            assert s.recv(4) == b"ping"
            start = time.monotonic()
            with pytest.raises(ConnectionResetError):
                s.recv(10)
            assert 0.9 < time.monotonic() - start < 5
        assert wait_until(lambda: stats(sp)["totals"]["idle_timeouts"] == 1, 5, "counted")


@needs_root
@pytest.mark.watchdog(90)
def test_sigterm_drains():
    with rig(["--drain-timeout", "20"]) as (ns, proxy, _, sp):
        s = guest_connect(ns, 8017, b"before ")
        assert s.recv(7) == b"before "
        proxy.signal(signal.SIGTERM)
        wait_until(lambda: proxy.events("draining"), 10, "draining")
        late = guest_socket(ns, timeout=5)
        with late, pytest.raises(ConnectionRefusedError):
            late.connect((PROXY_IP, 8017))   # no more accepting
        s.sendall(b"after")                  # the open one goes on
        assert s.recv(5) == b"after"
        assert proxy.proc.poll() is None
        s.close()
        assert proxy.wait(15) == 0, proxy.stderr()[-3000:]
        assert proxy.events("stopped")[0]["totals"]["drain_aborts"] == 0


@needs_root
@pytest.mark.watchdog(90)
def test_drain_deadline_resets_what_is_left():
    with rig(["--drain-timeout", "1"]) as (ns, proxy, _, _):
        with guest_connect(ns, 8017, b"x") as s:
            assert s.recv(1) == b"x"
            proxy.signal(signal.SIGTERM)
            with pytest.raises(ConnectionResetError):
                s.recv(1)
        assert proxy.wait(15) == 0, proxy.stderr()[-3000:]
        assert proxy.events("stopped")[0]["totals"]["drain_aborts"] == 1


@needs_root
@pytest.mark.watchdog(90)
def test_proxy_protocol_v2_and_sighup_reload(tmp_path):
    headers: list[bytes] = []

    def record(conn):
        headers.append(conn.recv(28))
        conn.sendall(b"ok")

    with Netns("lklproxy") as ns:
        ns.add_tap("pxy0", "10.200.17.1/24")
        first, second = Backend(ns, record), Backend(ns, record)
        cfg = tmp_path / "p.toml"
        cfg.write_text(f'[proxy]\nbackend = ["{first.addr}"]\n')
        proxy = ProxyProcess(ns, ["--config", str(cfg), "--nic", "tap:pxy0", "--address",
                                  f"{PROXY_IP}/24", "--listen", f"{PROXY_IP}:8017",
                                  "--proxy-protocol", "v2"])
        try:
            def ask() -> bytes:
                with guest_connect(ns, 8017) as s:
                    local = s.getsockname()
                    assert s.recv(2) == b"ok"
                return local

            local = ask()
            h = headers[0]
            assert h[:12] == b"\r\n\r\n\x00\r\nQUIT\n" and h[12:14] == b"\x21\x11"
            assert socket.inet_ntoa(h[16:20]) == local[0] == "10.200.17.1"
            assert socket.inet_ntoa(h[20:24]) == PROXY_IP
            assert struct.unpack("!HH", h[24:28]) == (local[1], 8017)
            assert first.accepted == 1 and second.accepted == 0
            cfg.write_text(f'[proxy]\nbackend = ["{second.addr}"]\n')
            proxy.signal(signal.SIGHUP)
            wait_until(lambda: proxy.events("reloaded"), 10, "the reload")
            ask()
            assert first.accepted == 1 and second.accepted == 1
        finally:
            proxy.stop()
            first.close()
            second.close()


@needs_root
@pytest.mark.watchdog(120)
def test_tls_termination_with_curl(tmp_path):
    from harness.tlscerts import make_pki

    pki = make_pki(tmp_path)

    def http(conn):
        request = b""
        while b"\r\n\r\n" not in request:
            data = conn.recv(4096)
            if not data:
                return
            request += data
        body = b"hello from the backend, you asked " + request.split(b"\r\n")[0]
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                     % (len(body), body))

    with rig(["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)],
             handler=http, port=8443) as (ns, proxy, _, sp):
        out = ns.run(["curl", "-sS", "--max-time", "20", "--cacert", str(pki.ca),
                      "--resolve", f"server.test:8443:{PROXY_IP}",
                      "https://server.test:8443/lkl"], timeout=30)
        assert out.returncode == 0, out.stderr
        assert out.stdout == "hello from the backend, you asked GET /lkl HTTP/1.1"
        bad = ns.run(["curl", "-sS", "--max-time", "20", "--resolve",
                      f"server.test:8443:{PROXY_IP}", "https://server.test:8443/"],
                     timeout=30)
        assert bad.returncode != 0     # curl does not trust our CA without --cacert
        st = wait_until(lambda: (s := stats(sp))["totals"]["tls_failures"] == 1 and s, 10,
                        "the failed handshake counted")
        assert st["totals"]["tls_handshakes"] == 1


@needs_root
@pytest.mark.watchdog(180)
def test_two_workers_share_one_address_over_a_multi_queue_tap():
    with rig(["--workers", "2"], multi_queue=True) as (ns, proxy, _, sp):
        results = in_threads(lambda i: round_trip(ns, 8017, 256 << 10, i), 32, 120)
        assert results == [True] * 32
        per_worker = [stats(f"{sp}.{i}")["totals"]["accepted"] for i in range(2)]
        assert sum(per_worker) == 32 and min(per_worker) > 0, per_worker
    assert proxy.proc.returncode == 0


@needs_root
@pytest.mark.watchdog(90)
def test_runs_as_the_given_user_without_capabilities():
    import pwd

    nobody = pwd.getpwnam("nobody")
    with rig(["--user", "nobody"]) as (ns, proxy, _, sp):
        with open(f"/proc/{proxy.pid}/status") as f:
            status = dict(line.split(":", 1) for line in f)
        assert status["Uid"].split() == [str(nobody.pw_uid)] * 4
        assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0
        assert int(status["NoNewPrivs"]) == 1 and int(status["Seccomp"]) == 2
        assert round_trip(ns, 8017, 1 << 20, 5)


@needs_root
@pytest.mark.watchdog(90)
def test_a_dead_backend_is_skipped_and_counted():
    with rig(backends=2) as (ns, _, bes, sp):
        bes[0].close()                      # refuses connections from now on
        assert all(round_trip(ns, 8017, 64 << 10, i) for i in range(4))
        st = stats(sp)
        assert st["totals"]["backend_errors"] >= 1 and bes[1].accepted == 4
        bes[1].close()                      # none left: the guest is reset
        s = guest_socket(ns, timeout=10)
        with s, pytest.raises(ConnectionResetError):
            s.connect((PROXY_IP, 8017))
            s.recv(1)


@needs_root
@pytest.mark.watchdog(90)
def test_direct_syscall_mode_relays_concurrently():
    with rig(["--syscall-mode", "direct"]) as (ns, _, _, sp):
        results = in_threads(lambda i: round_trip(ns, 8017, 1 << 20, i), 8, 60)
        assert results == [True] * 8
        # A connection is counted when its relay ends, which can come just
        # after the guest has read the echo's EOF.
        wait_until(lambda: stats(sp)["totals"]["closed"] == 8, 10, "8 relays ended")
        assert stats(sp)["totals"]["bytes_down"] == 8 << 20


@needs_root
@pytest.mark.watchdog(90)
def test_stats_over_loopback_http_and_periodic_log_lines():
    with rig(["--stats", "127.0.0.1:9117", "--stats-interval", "0.2"]) as (ns, proxy, _, _):
        assert round_trip(ns, 8017, 64 << 10, 1)
        def fetch() -> dict:
            s = guest_socket(ns)             # the namespace's loopback is the proxy's host
            s.settimeout(10)
            with s:
                s.connect(("127.0.0.1", 9117))
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.0 200") and b"application/json" in head
            return json.loads(body)
        # The relay counts a connection's bytes when its direction ends.
        wait_until(lambda: fetch()["totals"]["bytes_up"] == 64 << 10, 10, "the bytes counted")
        logged = wait_until(lambda: [e for e in proxy.events("stats")
                                     if e["totals"]["closed"] == 1], 10, "a stats log line")
        assert logged[0]["kernel_tcp"]["PassiveOpens"] == 1


@needs_root
@pytest.mark.watchdog(90)
def test_ipv6_guest_with_a_proxy_v1_header():
    heads: list[bytes] = []

    def record(conn):
        heads.append(conn.recv(200))
        conn.sendall(b"ok")

    with Netns("lklproxy") as ns:
        ns.add_tap("pxy0", "10.200.17.1/24", "fd00:200:17::1/64")
        backend = Backend(ns, record)
        proxy = ProxyProcess(ns, ["--nic", "tap:pxy0", "--address", "fd00:200:17::2/64",
                                  "--listen", "[fd00:200:17::2]:8017", "--backend",
                                  backend.addr, "--proxy-protocol", "v1"])
        try:
            def attempt():   # the kernel's address is usable once its DAD is over
                with ns.entered():
                    s = socket.socket(socket.AF_INET6)
                s.settimeout(2)
                try:
                    s.connect(("fd00:200:17::2", 8017))
                except OSError:
                    s.close()
                    return None
                return s

            s = wait_until(attempt, 20, "the IPv6 listener")
            with s:
                assert s.recv(2) == b"ok"
                port = s.getsockname()[1]
            assert heads == [f"PROXY TCP6 fd00:200:17::1 fd00:200:17::2 {port} 8017\r\n"
                             .encode()]
        finally:
            proxy.stop()
            backend.close()


@needs_root
@pytest.mark.watchdog(90)
def test_control_lets_attach_see_the_sandboxed_proxys_kernel():
    """--control NAME: python -m lkl attach NAME -- ss shows the proxy's
    kernel (the guest's connection), sandbox and all."""
    name = f"proxy-ctl-{os.getpid()}"
    with rig(["--control", name]) as (ns, _, _bes, sp):
        assert stats(sp)["sandboxed"] is True
        with guest_connect(ns, 8017, b"ping") as s:
            assert s.recv(4) == b"ping"
            ss = subprocess.run([sys.executable, "-m", "lkl", "attach", name, "--", "ss",
                                 "-tn"], capture_output=True, text=True, timeout=30)
            assert ss.returncode == 0, ss.stderr
            assert "ESTAB" in ss.stdout and ":8017" in ss.stdout, ss.stdout
    bad = subprocess.run([sys.executable, "-m", "lkl", "proxy", "--control", "no spaces",
                          "--listen", "127.0.0.1:1", "--backend", "127.0.0.1:2"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "--control" in bad.stderr

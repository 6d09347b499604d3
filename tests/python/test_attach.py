"""The control endpoint: unmodified host tools attached to a live kernel.

A child process (attach_agent.py) boots a kernel that serves a control
socket and holds a TCP connection over its loopback; the tests run ip,
ss, tc, sysctl, nstat, ethtool and cat through ``python -m lkl.cli.attach``
and check what they print against what the kernel itself reports.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lkl import control

ROOT = Path(__file__).resolve().parents[2]
AGENT = Path(__file__).with_name("attach_agent.py")
pytestmark = pytest.mark.isolated


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


class Agent:
    """The serving child: send a command, read its JSON answer."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.proc = subprocess.Popen([sys.executable, str(AGENT), name], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=ROOT, env=_env())
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip() == "READY", line

    def ask(self, *cmd: object, timeout: float = 60) -> object:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(list(cmd)) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, f"the agent did not answer {cmd} in {timeout} s"
        line = self.proc.stdout.readline()
        assert line, "the agent died"
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.ask("exit")
            except (AssertionError, BrokenPipeError, json.JSONDecodeError):
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    a = Agent(f"test-attach-{os.getpid()}")
    try:
        yield a
    finally:
        a.close()


def attach(name: str, *argv: str, timeout: float = 30, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lkl.cli.attach", name, "--", *argv],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=env or _env())


def ok(name: str, *argv: str) -> str:
    p = attach(name, *argv)
    assert p.returncode == 0, (argv, p.stdout, p.stderr)
    return p.stdout


@pytest.mark.watchdog(60)
def test_ip_addr_shows_the_kernels_interfaces(agent: Agent) -> None:
    out = ok(agent.name, "ip", "addr")
    assert "inet 10.209.0.1/24" in out, out
    assert "eth0" in out and "lo" in out
    # Exactly the kernel's interfaces, not the host's.
    shown = sorted(re.findall(r"^\d+: ([\w.-]+)[:@]", out, re.M))
    assert shown == agent.ask("ifnames"), (shown, out)
    host = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    assert "10.209.0.1" not in host
    # A dump's datagrams cross in one reply (CTL_RECVBATCH): ip addr's whole
    # session (socket, options, bind, two dumps) is a dozen round trips.
    before = agent.ask("stats")
    ok(agent.name, "ip", "addr")
    after = agent.ask("stats")
    assert isinstance(before, dict) and isinstance(after, dict)
    assert after["requests"] - before["requests"] <= 20, (before, after)
    stats = ok(agent.name, "ip", "-s", "link", "show", "lo")
    assert "RX:" in stats and "TX:" in stats


@pytest.mark.watchdog(60)
def test_ss_lists_the_connection_with_cwnd_and_rtt(agent: Agent) -> None:
    out = ok(agent.name, "ss", "-tni")
    assert "127.0.0.1:7001" in out, out
    m = re.search(r"rtt:([\d.]+)/([\d.]+)", out)
    assert m, out
    assert re.search(r"cwnd:(\d+)", out), out
    conns = agent.ask("connections")
    assert isinstance(conns, list)
    est = [c for c in conns if c["state"] == "ESTABLISHED" and c["proto"] == "tcp"]
    assert len(est) == 2, conns
    assert all(c["cwnd"] and c["rtt_us"] is not None for c in est), est
    listening = ok(agent.name, "ss", "-tln")
    assert "127.0.0.1:7001" in listening


@pytest.mark.watchdog(90)
def test_tc_netem_on_lo_changes_the_round_trip(agent: Agent) -> None:
    before = agent.ask("rtt")
    assert isinstance(before, float) and before < 5.0, before
    ok(agent.name, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "5ms")
    try:
        shown = ok(agent.name, "tc", "-s", "qdisc", "show", "dev", "lo")
        assert "netem" in shown and "delay 5ms" in shown, shown
        after = agent.ask("rtt")
        assert isinstance(after, float)
        # Both directions leave through lo's root qdisc: at least 2 x 5 ms.
        assert after >= 9.5, (before, after)
        conns = agent.ask("connections")
        assert isinstance(conns, list)
        rtts = [c["rtt_us"] for c in conns if c["state"] == "ESTABLISHED"]
        assert max(rtts) > 5000, rtts
    finally:
        ok(agent.name, "tc", "qdisc", "del", "dev", "lo", "root")
    assert "netem" not in ok(agent.name, "tc", "qdisc", "show", "dev", "lo")


@pytest.mark.watchdog(60)
def test_sysctl_write_is_what_the_kernel_reads(agent: Agent) -> None:
    old = agent.ask("sysctl", "net.ipv4.tcp_congestion_control")
    host_old = Path("/proc/sys/net/ipv4/tcp_congestion_control").read_text().strip()
    new = "bbr" if old != "bbr" else "cubic"
    out = ok(agent.name, "sysctl", "-w", f"net.ipv4.tcp_congestion_control={new}")
    assert f"= {new}" in out, out
    try:
        assert agent.ask("sysctl", "net.ipv4.tcp_congestion_control") == new
        assert ok(agent.name, "sysctl", "-n", "net.ipv4.tcp_congestion_control").strip() == new
        # The host's own setting is untouched.
        assert Path("/proc/sys/net/ipv4/tcp_congestion_control").read_text().strip() == host_old
    finally:
        ok(agent.name, "sysctl", "-w", f"net.ipv4.tcp_congestion_control={old}")
    assert "net.ipv4.tcp_rmem" in ok(agent.name, "sysctl", "-a")


@pytest.mark.watchdog(60)
def test_nstat_shows_the_kernels_counters(agent: Agent, tmp_path: Path) -> None:
    # nstat keeps its history in a local file: the test's own.
    p = attach(agent.name, "nstat", "-az",
               env=dict(_env(), NSTAT_HISTORY=str(tmp_path / "nstat.history")))
    assert p.returncode == 0, p.stderr
    counters = dict(line.split()[:2] for line in p.stdout.splitlines()[1:] if line.strip())
    want = agent.ask("snmp", "Tcp", "ActiveOpens")
    assert int(counters["TcpActiveOpens"]) == want, (counters.get("TcpActiveOpens"), want)
    assert want >= 1
    cat = ok(agent.name, "cat", "/proc/net/snmp")
    tcp = [line.split() for line in cat.splitlines() if line.startswith("Tcp:")]
    assert int(tcp[1][tcp[0].index("ActiveOpens")]) == want


@pytest.mark.watchdog(60)
def test_ethtool_features_match_the_negotiated_offloads(agent: Agent) -> None:
    import lkl
    ifname, bits = agent.ask("features")  # type: ignore[misc]
    out = ok(agent.name, "ethtool", "-k", ifname)
    feats = dict(re.findall(r"^\s*([\w-]+): (on|off)", out, re.M))
    negotiated = lkl.Offload(bits)
    # CHECKSUM: the driver may send partial checksums (tx), no TSO.
    assert feats["tx-checksumming"] == ("on" if negotiated & lkl.Offload.CSUM else "off"), out
    assert feats["tcp-segmentation-offload"] == (
        "on" if negotiated & lkl.Offload.HOST_TSO4 else "off"), out
    assert feats["rx-checksumming"] == (
        "on" if negotiated & lkl.Offload.GUEST_CSUM else "off"), out
    # ethtool -i is an SIOCETHTOOL ioctl (ETHTOOL_GDRVINFO), not netlink.
    info = ok(agent.name, "ethtool", "-i", ifname)
    assert "driver: virtio_net" in info and "bus-info: virtio-mmio" in info, info


PY_UNDER_ATTACH = """
import socket
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
s.setblocking(False)  # ioctl(FIONBIO): kept by the attach library
try:
    s.recv(10)
except BlockingIOError:
    print("EAGAIN")
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(0.3)  # poll() on a forwarded socket, then a non-blocking receive
try:
    u.recvfrom(10)
except TimeoutError:
    print("TIMEOUT")
t = socket.create_connection(("127.0.0.1", 7001), timeout=5)
print("CONNECTED")
"""


@pytest.mark.watchdog(60)
def test_python_sockets_under_attach_are_the_kernels(agent: Agent) -> None:
    opens = agent.ask("snmp", "Tcp", "PassiveOpens")
    out = ok(agent.name, sys.executable, "-c", PY_UNDER_ATTACH)
    assert out.split() == ["EAGAIN", "TIMEOUT", "CONNECTED"], out
    assert agent.ask("snmp", "Tcp", "PassiveOpens") == opens + 1  # the kernel's listener


@pytest.mark.watchdog(60)
def test_ls_lists_the_instance_and_cleans_stale_sockets(agent: Agent) -> None:
    stale = os.path.join(control.control_dir(), f"stale-{os.getpid()}.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(stale)
    s.close()  # bound, never listening: a dead process's socket
    p = subprocess.run([sys.executable, "-m", "lkl.cli.ls"], capture_output=True, text=True,
                       timeout=30, cwd=ROOT, env=_env())
    assert p.returncode == 0, p.stderr
    row = [line for line in p.stdout.splitlines() if line.startswith(agent.name)]
    assert row, p.stdout
    assert str(agent.proc.pid) in row[0] and "eth0" in row[0] and "lo" in row[0], row
    assert not os.path.exists(stale)


@pytest.mark.watchdog(60)
def test_console_script(agent: Agent) -> None:
    script = ("cd /proc/sys/net/ipv4\npwd\ncat tcp_syn_retries\necho 5 > tcp_syn_retries\n"
              "cat tcp_syn_retries\nls /sys/class/net\ncat /nonexistent\nexit\n")
    old = agent.ask("sysctl", "net.ipv4.tcp_syn_retries")
    try:
        p = subprocess.run([sys.executable, "-m", "lkl.cli.attach", agent.name], input=script,
                           capture_output=True, text=True, timeout=30, cwd=ROOT, env=_env())
        assert p.returncode == 0, p.stderr
        out = p.stdout
        assert "/proc/sys/net/ipv4\n" in out
        assert f"{old}\n" in out and "5\n" in out, out
        assert "eth0\n" in out and "lo\n" in out
        assert "No such file or directory" in out
        assert agent.ask("sysctl", "net.ipv4.tcp_syn_retries") == "5"
    finally:
        subprocess.run([sys.executable, "-m", "lkl.cli.attach", agent.name], text=True,
                       input=f"echo {old} > /proc/sys/net/ipv4/tcp_syn_retries\nexit\n",
                       capture_output=True, timeout=30, cwd=ROOT, env=_env())


def _attach_as_nobody(path: str) -> str:
    """Fork, become nobody, try to attach; what the child saw."""
    nobody = pwd.getpwnam("nobody")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no kernel runs in this (pytest) process
        os.close(r)
        try:
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            try:
                control.Client(path, timeout=5).close()
                msg = "ATTACHED"
            except control.ControlError as e:
                msg = f"REFUSED {e.errno} {e.strerror}"
            os.write(w, msg.encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    os.waitpid(pid, 0)
    return out


@pytest.mark.watchdog(60)
def test_another_user_is_refused(agent: Agent) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to another user")
    path = control.socket_path(agent.name)
    # The directory (0700) keeps the socket out of reach...
    out = _attach_as_nobody(path)
    assert out.startswith("REFUSED 13") and "Permission denied" in out, out
    # ...and with the directory and socket opened up, SO_PEERCRED refuses.
    d = os.path.dirname(path)
    old_d, old_s = os.stat(d).st_mode & 0o777, os.stat(path).st_mode & 0o777
    stats = agent.ask("stats")
    assert isinstance(stats, dict)
    os.chmod(d, 0o711)
    os.chmod(path, 0o666)
    try:
        out = _attach_as_nobody(path)
    finally:
        os.chmod(d, old_d)
        os.chmod(path, old_s)
    assert out.startswith("REFUSED 13") and "refused by" in out, out
    after = agent.ask("stats")
    assert isinstance(after, dict) and after["refused"] == stats["refused"] + 1


@pytest.mark.watchdog(60)
def test_capture_through_the_control_socket(agent: Agent, tmp_path: Path) -> None:
    dpkt = pytest.importorskip("dpkt")
    pcap = tmp_path / "eth0.pcap"
    proc = subprocess.Popen([sys.executable, "-m", "lkl.cli.attach", agent.name, "capture",
                             "eth0", "-w", str(pcap), "-c", "5", "-t", "30"],
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env=_env())
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        agent.ask("udp", 2)  # until the capture has its 5 frames (it may start late)
        try:
            proc.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            pass
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "5 frames captured" in err, err
    with open(pcap, "rb") as f:
        frames = [dpkt.ethernet.Ethernet(buf) for _ts, buf in dpkt.pcap.Reader(f)]
    assert len(frames) == 5
    udp = [eth.data.data for eth in frames if isinstance(eth.data, dpkt.ip.IP)
           and isinstance(eth.data.data, dpkt.udp.UDP)]
    assert udp, frames  # the rest: the kernel's own IPv6 multicast listener reports
    assert all(u.dport == 9 and u.data == b"u" * 200 for u in udp), udp
    # The server closed the capture's fd and kept no kernel fd.
    assert _idle(agent)["open_fds"] == 0
    bad = subprocess.run([sys.executable, "-m", "lkl.cli.attach", agent.name, "capture",
                          "nosuch0", "-w", str(tmp_path / "x.pcap"), "-c", "1"],
                         capture_output=True, text=True, timeout=30, cwd=ROOT, env=_env())
    assert bad.returncode == 2 and "No such device" in bad.stderr, bad.stderr


SIGNAL_CHILD = """
import os, signal, sys, lkl
mode = sys.argv[1]
k = lkl.boot(console_signal=signal.SIGUSR2) if mode == "on" else lkl.boot()
print(os.getpid(), signal.getsignal(signal.SIGUSR2) is signal.SIG_DFL, flush=True)
sys.stdin.readline()
k.halt()
"""


@pytest.mark.watchdog(60)
def test_signal_starts_a_console_socket_named_after_the_pid() -> None:
    off = subprocess.run([sys.executable, "-c", SIGNAL_CHILD, "off"], input="\n",
                         capture_output=True, text=True, timeout=30, cwd=ROOT, env=_env())
    assert off.stdout.split()[1] == "True", off.stdout  # nothing installed by default
    proc = subprocess.Popen([sys.executable, "-c", SIGNAL_CHILD, "on"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=ROOT, env=_env())
    try:
        assert proc.stdout is not None and proc.stdin is not None
        pid, default = proc.stdout.readline().split()
        assert default == "False"
        assert not os.path.exists(control.socket_path(pid))
        os.kill(int(pid), signal.SIGUSR2)
        deadline = time.monotonic() + 10
        while not os.path.exists(control.socket_path(pid)):
            assert time.monotonic() < deadline, "no control socket after the signal"
            time.sleep(0.02)  # the handler runs on the child's main thread
        with control.Client(pid) as c:
            assert c.pid == int(pid) and c.name == pid
            assert "lo" in c.interfaces()
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(timeout=30) == 0
        assert not os.path.exists(control.socket_path(pid))  # halt unlinked it
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


NAMES_CHILD = """
import errno, os, sys, lkl
from lkl import control
name = sys.argv[1]
try:
    lkl.boot(control="bad/name")
except ValueError as e:
    print("VALUE", e)
k = lkl.boot()
path = k.serve_control(name)
assert path == control.socket_path(name) and os.stat(path).st_mode & 0o777 == 0o600
assert os.stat(os.path.dirname(path)).st_mode & 0o777 == 0o700
try:
    k.serve_control(name + "-2")
except OSError as e:
    print("BUSY", e.errno == errno.EBUSY)
k.stop_control()
assert not os.path.exists(path)
k.serve_control(name)  # again, after a stop
with control.Client(name) as c:
    print("AGAIN", c.pid == os.getpid())
k.halt()
"""


def test_names_busy_and_serving_again() -> None:
    name = f"names-{os.getpid()}"
    p = subprocess.run([sys.executable, "-c", NAMES_CHILD, name], capture_output=True,
                       text=True, timeout=60, cwd=ROOT, env=_env())
    assert p.returncode == 0, p.stderr
    assert "VALUE a control name" in p.stdout and "BUSY True" in p.stdout, p.stdout
    assert "AGAIN True" in p.stdout


def test_a_name_in_use_is_refused(agent: Agent) -> None:
    p = subprocess.run([sys.executable, "-c", "import sys, lkl\n"
                        "try:\n    lkl.boot(control=sys.argv[1])\n"
                        "except FileExistsError as e:\n    print('EXISTS', e)\n", agent.name],
                       capture_output=True, text=True, timeout=60, cwd=ROOT, env=_env())
    assert p.stdout.startswith("EXISTS"), (p.stdout, p.stderr)
    assert os.path.exists(control.socket_path(agent.name))  # the live one is kept


def test_attach_to_nothing_is_a_clear_error() -> None:
    p = subprocess.run([sys.executable, "-m", "lkl.cli.attach", f"absent-{os.getpid()}", "--",
                        "ip", "addr"], capture_output=True, text=True, timeout=30, cwd=ROOT,
                       env=_env())
    assert p.returncode == 2 and "cannot attach" in p.stderr, p.stderr


# ---- robustness -----------------------------------------------------------------------


def _raw(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    return s


# A client whose call blocks in the serving kernel: recvfrom on a UDP socket
# nobody sends to.  argv: the socket path.
BLOCKED_CLIENT = """
import socket, struct, sys, threading
from lkl import control
c = control.Client(sys.argv[1], timeout=60)
fd = c.call(control.SOCKET, 2, 2, 0).result  # AF_INET, SOCK_DGRAM
addr = struct.pack("=H", 2) + struct.pack(">H", 0) + socket.inet_aton("127.0.0.1") + bytes(8)
c.call(control.BIND, fd, data=addr)
threading.Timer(0.3, lambda: print("BLOCKING", flush=True)).start()
c.call(control.RECVFROM, fd, 0, 100, 0)
"""


SERVE_AND_HALT = """
import subprocess, sys, time, lkl
from lkl import control
k = lkl.boot(control=sys.argv[1])
p = subprocess.Popen([sys.executable, "-c", sys.argv[2], control.socket_path(sys.argv[1])],
                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
assert p.stdout.readline().strip() == "BLOCKING"
t0 = time.monotonic()
k.halt()
print("HALTED", round(time.monotonic() - t0, 3), flush=True)
p.wait(timeout=30)
"""


@pytest.mark.watchdog(60)
def test_halt_while_a_client_blocks_in_the_kernel() -> None:
    p = subprocess.run([sys.executable, "-c", SERVE_AND_HALT, f"halt-{os.getpid()}",
                        BLOCKED_CLIENT], capture_output=True, text=True, timeout=60,
                       cwd=ROOT, env=_env())
    assert p.returncode == 0, p.stderr
    word, secs = p.stdout.split()
    assert word == "HALTED" and float(secs) < 5, p.stdout


def _idle(agent: Agent) -> dict[str, int]:
    """The server's counters once no client is connected and no kernel fd is held."""
    deadline = time.monotonic() + 10
    while True:
        st = agent.ask("stats")
        assert isinstance(st, dict)
        if st["clients"] == 0 and st["open_fds"] == 0:
            return st
        assert time.monotonic() < deadline, st
        time.sleep(0.05)  # polling the server's own counters, with a deadline


@pytest.mark.watchdog(120)
def test_malformed_truncated_killed_and_concurrent_clients(agent: Agent) -> None:
    path = control.socket_path(agent.name)
    # A warm-up client, so threads the server made once are counted in the baseline.
    with control.Client(path) as c:
        c.read_bytes("/proc/net/snmp")
    before = _idle(agent)
    base_fds, base_kfds = agent.ask("fds"), agent.ask("kfds")

    # Bad magic, bad version, oversized length: the server hangs up.
    for head in (struct.pack("<IHHII4q", 0xDEADBEEF, 1, 1, 0, 1, 0, 0, 0, 0),
                 struct.pack("<IHHII4q", control.MAGIC, 99, 1, 0, 1, 0, 0, 0, 0),
                 struct.pack("<IHHII4q", control.MAGIC, 1, 1, 1 << 30, 1, 0, 0, 0, 0),
                 b"\x01\x02\x03"):
        s = _raw(path)
        s.sendall(head)
        if len(head) < control.REQUEST.size:
            s.shutdown(socket.SHUT_WR)  # truncated: end of file mid-header
        assert s.recv(100) == b""
        s.close()
    # Well-framed but invalid requests get error replies on a live connection.
    with control.Client(path) as c:
        assert c.call(999, check=False).result == -22  # unknown op
        assert c.call(control.OPEN, data=b"relative\0", check=False).result == -22
        assert c.call(control.OPEN, data=b"/proc/net/snmp", check=False).result == -22  # no NUL
        assert c.call(control.READ, 1, 10, check=False).result == -9  # not its fd: EBADF
        assert c.call(control.IOCTL, 0, 0x8946, check=False).result == -9
        fd = c.open("/proc/net/snmp")
        assert c.call(control.IOCTL, fd, 0x8946, check=False).result == -25  # ENOTTY
        assert c.call(control.READ, fd, 1 << 30, check=False).result == -22
        with pytest.raises(FileNotFoundError):
            c.open("/proc/net/absent")
    # A client killed in the middle of a message, and one with fds left open.
    s = _raw(path)
    s.sendall(struct.pack("<IHHII4q", control.MAGIC, 1, control.WRITE, 1000, 1, 0, 0, 0, 0)
              + b"x" * 10)
    s.close()
    killer = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom lkl import control\n"
         "c = control.Client(sys.argv[1])\n"
         "fds = [c.open('/proc/net/snmp') for _ in range(20)]\n"
         "print('OPEN', flush=True)\ntime.sleep(60)\n", path],
        stdout=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
    assert killer.stdout is not None and killer.stdout.readline().strip() == "OPEN"
    killer.kill()
    killer.wait()
    # A client killed while its call blocks in the kernel (a UDP receive).
    blocked = subprocess.Popen([sys.executable, "-c", BLOCKED_CLIENT, path],
                               stdout=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
    assert blocked.stdout is not None and blocked.stdout.readline().strip() == "BLOCKING"
    blocked.kill()
    blocked.wait()
    _idle(agent)  # its thread noticed, closed its socket and left

    # Two clients at once, 5 000 calls each, while the process serves its own traffic.
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            with control.Client(path) as c:
                fd = c.open("/proc/sys/net/ipv4/tcp_syn_retries")
                for _ in range(5000):
                    c.call(control.LSEEK, fd, 0, 0)
                    assert c.read(fd, 64).strip().isdigit()
                c.close_fd(fd)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for t in threads:
        t.start()
    last = agent.ask("traffic", 200)  # the serving process's own TCP, meanwhile
    assert isinstance(last, float)
    for t in threads:
        t.join(120)
    assert not errors, errors

    after = _idle(agent)
    assert after["malformed"] - before["malformed"] >= 9, (before, after)
    assert after["requests"] - before["requests"] >= 20000
    assert agent.ask("fds") == base_fds
    assert agent.ask("kfds") == base_kfds


@pytest.mark.watchdog(120)
def test_random_requests_never_break_the_server(agent: Agent) -> None:
    import random
    rng = random.Random(14)
    path = control.socket_path(agent.name)
    before = _idle(agent)
    base_fds, base_kfds = agent.ask("fds"), agent.ask("kfds")
    ints = [-1, 0, 1, 2, 3, 7, 64, 4096, 1 << 20, (1 << 20) + 1, 1 << 31, -(1 << 63),
            (1 << 63) - 1]
    sent = 0
    for _round in range(20):
        # Some random calls block (a read of a netlink socket): a short timeout.
        with control.Client(path, timeout=1.0) as c:
            own = [c.open("/proc/net/snmp"), c.call(control.SOCKET, 16, 3, 0).result]
            for _ in range(100):
                op = rng.randrange(0, control.STATS + 4)
                if op in (control.CAPTURE_START,):
                    continue  # needs an fd passed along; tested elsewhere
                args = [rng.choice(ints + own) for _ in range(4)]
                data = rng.randbytes(rng.choice([0, 1, 4, 16, 40, 60, 200, 5000]))
                try:
                    c.call(op, *args, data=data, check=False)
                except control.ControlError:
                    break  # hung up on (malformed), or still blocked: a new client
                sent += 1
    assert sent > 1000
    after = _idle(agent)
    assert after["requests"] > before["requests"]
    assert agent.ask("fds") == base_fds and agent.ask("kfds") == base_kfds
    assert isinstance(agent.ask("traffic", 20), float)  # and it still serves its own TCP
    assert "127.0.0.1:7001" in ok(agent.name, "ss", "-tn")


def test_tools_are_present() -> None:
    for tool in ("ip", "ss", "tc", "sysctl", "nstat", "ethtool"):
        assert shutil.which(tool), f"{tool} is missing: native/scripts/setup.sh installs it"

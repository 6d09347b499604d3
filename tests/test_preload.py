"""Unmodified programs on the kernel's stack: the LD_PRELOAD library.

``build/lib/liblkl-preload.so`` boots a kernel inside the program before
its ``main`` runs and gives the program's network sockets to it.  The C
programs ``tests/native/preload_*.c`` check the fd API and readiness
(host fds and kernel sockets in one epoll, poll and select) and fork;
Debian's ``iperf3``, ``curl`` and ``nginx`` run unmodified over a TAP
device into a network namespace the test creates and deletes (10.200.x
addresses there only).  Name lookups use numeric addresses or a DNS
server on the preloaded program's own kernel: never the host's resolver.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from native_programs import build

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from harness.lines import LineProcess  # noqa: E402
from harness.netns import Netns  # noqa: E402

BUILD = ROOT / "build"
PRELOAD = BUILD / "lib" / "liblkl-preload.so"
NATIVE = BUILD / "tests" / "native"
IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="TAP devices need root")
# The interpreter itself, not a shim script that would exec it without
# the preload.
PYTHON = os.path.realpath(sys.executable)

HOST_IP, LKL_IP = "10.200.13.1", "10.200.13.2"
HOST_IP6, LKL_IP6 = "fd00:200:13::1", "fd00:200:13::2"
# On the namespace's lo: reachable from lkl only through its gateway.
FAR_IP = "10.200.14.1"
TAP = "lkltap13"


@pytest.fixture(scope="module", autouse=True)
def programs() -> None:
    subprocess.run(["make", "-s", "-C", str(ROOT / "native"), f"BUILD={BUILD}",
                    str(PRELOAD)], check=True, timeout=900)
    build(NATIVE / "preload_mix", NATIVE / "preload_fork")


def preload_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LKL_")}
    env["LD_PRELOAD"] = str(PRELOAD)
    env.update(settings)
    return env


def launcher_env() -> dict[str, str]:
    """For ``python -m lkl exec``: no preload of its own, the package importable."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LKL_") and k != "LD_PRELOAD"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def env_argv(settings: dict[str, str], argv: list[str]) -> list[str]:
    """argv under the preload, through env(1) (for ``ip netns exec``)."""
    return ["env", f"LD_PRELOAD={PRELOAD}",
            *(f"{k}={v}" for k, v in settings.items()), *argv]


def wait_until(what: str, check: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)  # polling a condition, with a deadline
    pytest.fail(f"timed out waiting for {what}")


# ---- the library itself -------------------------------------------------------

def test_exports_only_interposed_names_and_lkl() -> None:
    out = subprocess.run(["nm", "-D", "--defined-only", str(PRELOAD)], check=True,
                         capture_output=True, text=True).stdout
    names = {line.split()[-1] for line in out.splitlines() if line.strip()}
    others = {n for n in names if not n.startswith("lkl_")}
    assert {"socket", "connect", "read", "close", "getaddrinfo", "sendfile",
            "__read_chk"} <= others
    libc = ctypes_libc_names()
    assert others <= libc, f"not libc names: {sorted(others - libc)}"
    # The kernel library inside must call none of them (its copy has them
    # renamed, native/preload/host-syms.txt): its TAP reads and backend
    # sockets would land in the wrappers.
    copy = BUILD / "obj" / "preload" / "liblkl.a"
    out = subprocess.run(["nm", "-u", str(copy)], check=True, capture_output=True,
                         text=True).stdout
    undefined = {line.split()[-1] for line in out.splitlines() if line.strip()}
    assert not undefined & others, f"add to host-syms.txt: {sorted(undefined & others)}"


def ctypes_libc_names() -> set[str]:
    out = subprocess.run(["nm", "-D", "--defined-only", "/lib/x86_64-linux-gnu/libc.so.6"],
                         check=True, capture_output=True, text=True).stdout
    return {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}


@pytest.mark.parametrize("settings, message", [
    ({"LKL_NIC": "vde:x"}, "LKL_NIC"),
    ({"LKL_NIC": "tap:lkltapbad", "LKL_ADDRESS": "10.200.13.2"}, "LKL_ADDRESS"),
    ({"LKL_ADDRESS": "10.200.13.2/24"}, "need a NIC"),
    ({"LKL_OFFLOAD": "FAST", "LKL_NIC": "tap:x"}, "LKL_OFFLOAD"),
    ({"LKL_MEMORY": "lots"}, "LKL_MEMORY"),
    ({"LKL_SYSCALL_MODE": "fast"}, "LKL_SYSCALL_MODE"),
    ({"LKL_SYSCTL": "net.ipv4.no_such_knob=1"}, "no_such_knob"),
    ({"LKL_SYSCTL": "novalue"}, "LKL_SYSCTL"),
    ({"LKL_CONFIG": "/nonexistent/lkl.json"}, "LKL_CONFIG"),
    ({"LKL_HIJACK_NET_IFTYPE": "macvtap"}, "LKL_HIJACK_NET_IFTYPE"),
    ({"LKL_HIJACK_NET_QDISC": "root|fq"}, "LKL_HIJACK_NET_QDISC: not supported"),
])
def test_bad_configuration_exits_2_before_main(settings: dict[str, str],
                                               message: str) -> None:
    res = subprocess.run(["/bin/echo", "main ran"], env=preload_env(**settings),
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res
    assert res.stdout == ""
    assert "lkl-preload:" in res.stderr and message in res.stderr, res.stderr


def test_bad_json_configuration(tmp_path: Path) -> None:
    for text, message in [('{"memory": "64M", "bogus": 1}', "unknown key"),
                          ('{"memory": ', "expected"),
                          ('{"nic": "tap:x", "offload": "NOPE"}', "LKL_OFFLOAD")]:
        path = tmp_path / "lkl.json"
        path.write_text(text)
        res = subprocess.run(["/bin/echo", "main ran"],
                             env=preload_env(LKL_CONFIG=str(path)),
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 2 and res.stdout == "", res
        assert message in res.stderr, res.stderr


def test_json_configuration_sets_the_kernel(tmp_path: Path) -> None:
    path = tmp_path / "lkl.json"
    path.write_text(json.dumps({"memory": "64M", "syscall_mode": "direct",
                                "sysctl": {"net.ipv4.tcp_congestion_control": "reno",
                                           "net.core.somaxconn": 77}}))
    code = ("import socket; s = socket.socket(); "
            "print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16)"
            ".rstrip(b'\\0').decode())")
    # JSON overrides the environment.
    res = subprocess.run([PYTHON, "-c", code],
                         env=preload_env(LKL_CONFIG=str(path),
                                         LKL_SYSCTL="net.ipv4.tcp_congestion_control=cubic"),
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "reno"


@pytest.mark.parametrize("mode", ["shadow", "direct"])
def test_host_fds_and_kernel_sockets_in_epoll_poll_select(mode: str) -> None:
    proc = LineProcess(env_argv({"LKL_SYSCALL_MODE": mode}, [str(NATIVE / "preload_mix")]))
    try:
        port = int(proc.expect("listening", 60).split()[1])
        # The listener is the kernel's: the host's stack has no such port.
        with socket.socket() as s, pytest.raises(ConnectionRefusedError):
            s.connect(("127.0.0.1", port))
        assert proc.proc.stdin is not None
        proc.proc.stdin.write("go\n")
        proc.proc.stdin.flush()
        for step in ("epoll", "poll", "select", "fd_api", "threads", "refused_connect",
                     "sigpipe"):
            proc.expect(f"ok {step}", 60)
        proc.expect("done", 60)
        assert proc.proc.wait(timeout=30) == 0
    finally:
        proc.kill()


def test_fork_child_gets_enetdown_parent_keeps_working() -> None:
    # Once a hang in a few hundred runs: the child took a socket's lock
    # that the parent's poller held at fork (fixed in fdmap.c).
    res = subprocess.run([str(NATIVE / "preload_fork")], env=preload_env(),
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert "child ok" in res.stdout and "done" in res.stdout


def test_python_stdlib_and_resolver_on_the_kernel() -> None:
    """An unmodified interpreter: a DNS server and an HTTP exchange on its
    kernel's lo, getaddrinfo asking that server (LKL_NAMESERVER)."""
    script = textwrap.dedent("""
        import socket, struct, threading
        dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dns.bind(("127.0.0.1", 53))
        def serve():
            for _ in range(4):
                q, peer = dns.recvfrom(512)
                qid, qtype = q[:2], q[-3]
                end = q.index(b"\\0", 12) + 5
                name = q[12:end - 4]
                found = name == b"\\x04test\\x03lkl\\x00"
                rcode = 0 if found else 3
                head = qid + struct.pack("!HHHHH", 0x8180 | rcode, 1,
                                         1 if found and qtype == 1 else 0, 0, 0)
                ans = b""
                if found and qtype == 1:
                    ans = b"\\xc0\\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([10, 9, 8, 7])
                dns.sendto(head + q[12:end] + ans, peer)
        threading.Thread(target=serve, daemon=True).start()
        print(socket.getaddrinfo("test.lkl", 80, socket.AF_INET, socket.SOCK_STREAM)[0][4])
        try:
            socket.getaddrinfo("missing.lkl", 80, socket.AF_INET)
        except socket.gaierror as e:
            print("gaierror", e.errno == socket.EAI_NONAME)
        import http.server, urllib.request
        srv = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
        threading.Thread(target=srv.handle_request, daemon=True).start()
        body = urllib.request.urlopen(f"http://localhost:{srv.server_port}/", timeout=10).read()
        print("http", len(body) > 0)
        # Interfaces are the kernel's (its lo is index 1).
        print(socket.if_nametoindex("lo"), socket.if_indextoname(1))
    """)
    res = subprocess.run([PYTHON, "-c", script], env=preload_env(LKL_NAMESERVER="127.0.0.1"),
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split("\n")[:4] == ["('10.9.8.7', 80)", "gaierror True", "http True",
                                          "1 lo"], res.stdout


def test_subprocess_leaves_the_parents_sockets_alone() -> None:
    """CPython's subprocess sets a child up with vfork (the parent's memory
    until exec): its close_range and dup2 must not close or remap the
    parent's kernel sockets."""
    script = textwrap.dedent("""
        import socket, subprocess
        l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
        c = socket.create_connection(l.getsockname()); a, _ = l.accept()
        for _ in range(5):
            out = subprocess.run(["echo", "child"], stdin=a, capture_output=True, text=True)
            assert out.stdout.strip() == "child", out
        c.send(b"parent")
        c2 = socket.create_connection(l.getsockname())
        print(a.recv(10), l.accept()[0].getpeername() == c2.getsockname())
    """)
    res = subprocess.run([PYTHON, "-c", script], env=preload_env(), capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "b'parent' True"


def test_control_serves_the_programs_kernel_to_attach() -> None:
    """LKL_CONTROL=NAME (python -m lkl exec --control NAME): the tools of
    python -m lkl attach see the program's kernel, not the host's."""
    name = f"preload-ctl-{os.getpid()}"
    script = ("import socket, sys, time\n"
              "s = socket.socket(); s.bind(('127.0.0.1', 47213)); s.listen()\n"
              "print('ready', flush=True); sys.stdin.read()\n")
    prog = subprocess.Popen([sys.executable, "-m", "lkl", "exec", "--control", name, "--",
                             PYTHON, "-c", script], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=launcher_env())
    try:
        assert prog.stdout is not None and prog.stdout.readline().strip() == "ready"
        attach = [sys.executable, "-m", "lkl", "attach", name, "--"]
        ss = subprocess.run([*attach, "ss", "-tln"], cwd=ROOT, capture_output=True,
                            text=True, timeout=30)
        assert ss.returncode == 0, ss.stderr
        assert "127.0.0.1:47213" in ss.stdout, ss.stdout
        host = subprocess.run(["ss", "-tln"], capture_output=True, text=True, timeout=30)
        assert "127.0.0.1:47213" not in host.stdout
    finally:
        if prog.stdin:
            prog.stdin.close()
        assert prog.wait(timeout=30) == 0
    gone = subprocess.run([sys.executable, "-m", "lkl", "attach", name, "--", "ss", "-tln"],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert gone.returncode != 0, "the control socket ends with the program"
    bad = subprocess.run([PYTHON, "-c", "print('ran')"], capture_output=True, text=True,
                         env=preload_env(LKL_CONTROL="no spaces"), timeout=30)
    assert bad.returncode == 2 and "ran" not in bad.stdout
    assert "LKL_CONTROL" in bad.stderr


def test_library_fds_survive_the_programs_close_loops() -> None:
    """close(), close_range() and closefrom() leave the library's own fds
    (each socket's far end of its pair) alone."""
    script = textwrap.dedent("""
        import os, select, socket
        l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
        c = socket.create_connection(l.getsockname()); a, _ = l.accept()
        mine = {0, 1, 2, l.fileno(), c.fileno(), a.fileno()}
        fds = [int(x) for x in os.listdir("/proc/self/fd")]
        others = [fd for fd in fds if fd not in mine and fd > 2]
        refused = 0
        for fd in others:
            try:
                os.close(fd)
            except OSError:
                refused += 1
        os.closerange(max(mine) + 1, 65536)      # close_range(2) in CPython
        c.send(b"still")
        print(refused >= 3, select.select([a], [], [], 5)[0] == [a], a.recv(10))
    """)
    res = subprocess.run([PYTHON, "-c", script], env=preload_env(), capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "True True b'still'"


def test_children_run_without_the_preload_unless_kept() -> None:
    """A program's children would boot a second kernel on the same NIC:
    the library removes LD_PRELOAD from the environment unless asked."""
    script = 'echo "${LD_PRELOAD:-none}"'
    res = subprocess.run(["/bin/sh", "-c", script], env=preload_env(),
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == "none", res
    res = subprocess.run(["/bin/sh", "-c", script], env=preload_env(LKL_KEEP_PRELOAD="1"),
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == str(PRELOAD), res


# ---- the launcher (lkl/cli/exec.py) ----------------------------------------------

def exec_parser() -> argparse.ArgumentParser:
    from lkl.cli import exec as lkl_exec

    parser = argparse.ArgumentParser(prog="lkl")
    lkl_exec.add_parser(parser.add_subparsers(dest="command"))
    return parser


def test_exec_environment_from_options() -> None:
    from lkl.cli import exec as lkl_exec

    args = exec_parser().parse_args([
        "exec", "--tap", "tap7", "--address", "10.200.13.2/24", "--address", "fd00:200:13::2/64",
        "--gateway", "10.200.13.1", "--offload", "large_segments", "--sysctl", "a.b=1",
        "--sysctl", "c.d=x y", "--nameserver", "10.200.13.1", "--", "curl", "-s", "http://x"])
    env = lkl_exec.environment(args, base={"PATH": "/bin", "LKL_NIC": "tap:stale"})
    assert env["LD_PRELOAD"] == str(PRELOAD)
    assert env["LKL_NIC"] == "tap:tap7"
    assert env["LKL_ADDRESS"] == "10.200.13.2/24,fd00:200:13::2/64"
    assert env["LKL_OFFLOAD"] == "LARGE_SEGMENTS"
    assert env["LKL_SYSCTL"] == "a.b=1;c.d=x y"
    assert env["PATH"] == "/bin" and "LKL_MEMORY" not in env
    assert (args.program, args.args) == ("curl", ["-s", "http://x"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        lkl_exec.environment(exec_parser().parse_args(["exec", "--sysctl", "x", "true"]))


def test_exec_runs_the_program_on_a_configured_kernel() -> None:
    code = ("import socket; s = socket.socket(); "
            "print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16)"
            ".rstrip(b'\\0').decode())")
    res = subprocess.run([sys.executable, "-m", "lkl.cli.exec", "--memory", "64M",
                          "--sysctl", "net.ipv4.tcp_congestion_control=reno",
                          "--", PYTHON, "-c", code],
                         env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    # The host's default is cubic: this socket is the kernel's.
    assert res.stdout.strip() == "reno"
    bad = subprocess.run([sys.executable, "-m", "lkl.cli.exec", "--offload", "FAST", "--tap",
                          "x", "--", "/bin/echo", "main ran"],
                         env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stdout == "" and "LKL_OFFLOAD" in bad.stderr


# ---- real programs over a TAP into a namespace ------------------------------------

@pytest.fixture
def ns() -> Iterator[Netns]:
    with Netns("lklpre") as n:
        index = n.add_tap(TAP, f"{HOST_IP}/24")
        with n.ipr() as ipr:
            # IFA_F_NODAD (0x02): usable at once, no duplicate detection.
            ipr.addr("add", index=index, address=HOST_IP6, prefixlen=64, flags=0x02)
            ipr.addr("add", index=ipr.link_lookup(ifname="lo")[0], address=FAR_IP,
                     prefixlen=32)
        yield n


def lkl_settings(offload: str = "LARGE_SEGMENTS") -> dict[str, str]:
    return {"LKL_NIC": f"tap:{TAP}", "LKL_ADDRESS": f"{LKL_IP}/24,{LKL_IP6}/64",
            "LKL_OFFLOAD": offload}


def need(tool: str) -> str:
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if os.path.exists(f"/usr/sbin/{tool}")
                                  else None)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is not installed (native/scripts/setup.sh installs it)")
        pytest.skip(f"{tool} is not installed")
    return path


def listening(ns: Netns, port: int) -> bool:
    return bool(ns.run(["ss", "-Hltn", f"sport = :{port}"]).stdout.strip())


@contextlib.contextmanager
def http_server(ns: Netns, addr: str, root: Path) -> Iterator[None]:
    """``python -m http.server`` on ``addr``:8000 in the namespace, serving
    ``root``, listening within the block."""
    server = subprocess.Popen(ns.exec_argv([PYTHON, "-m", "http.server", "8000",
                                            "--bind", addr, "-d", str(root)]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until("the namespace's HTTP server", lambda: listening(ns, 8000))
        yield
    finally:
        server.kill()
        server.wait()


def curl_on_lkl(ns: Netns, settings: dict[str, str], url: str, digest: str) -> None:
    """curl under the preload (``settings``) in the namespace fetches
    ``url``: what it gets hashes to ``digest``."""
    res = subprocess.run(ns.exec_argv(env_argv(settings, [
        need("curl"), "-sS", "--fail", "-m", "60", url])), capture_output=True, timeout=90)
    assert res.returncode == 0, res.stderr
    assert hashlib.sha256(res.stdout).hexdigest() == digest


def iperf3_json(text: str) -> dict:
    data = json.loads(text)
    assert "error" not in data, data.get("error")
    return data


@needs_root
@pytest.mark.parametrize("reverse", [False, True], ids=["lkl-sends", "lkl-receives"])
def test_iperf3_client_on_lkl(ns: Netns, reverse: bool) -> None:
    iperf3 = need("iperf3")
    server = subprocess.Popen(ns.exec_argv([iperf3, "-s", "-1", "-p", "5201"]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until("the namespace's iperf3 server", lambda: listening(ns, 5201))
        argv = [iperf3, "-c", HOST_IP, "-p", "5201", "-n", "64M", "-J",
                *(["-R"] if reverse else [])]
        settings = {**lkl_settings(), "LKL_SYSCALL_MODE": "direct"}
        res = subprocess.run(ns.exec_argv(env_argv(settings, argv)),
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr
        data = iperf3_json(res.stdout)
        assert data["end"]["sum_sent"]["bytes"] >= 64 << 20
        # The receiver's figure ends when the test does: it may miss the tail.
        assert data["end"]["sum_received"]["bytes"] >= 0.9 * (64 << 20)
        server.wait(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


@needs_root
@pytest.mark.parametrize("extra", [[], ["-R"], ["-P", "4"]],
                         ids=["to-lkl", "from-lkl", "4-streams"])
def test_iperf3_server_on_lkl(ns: Netns, extra: list[str]) -> None:
    iperf3 = need("iperf3")
    # Upstream's hijack spellings for the NIC, as its users write them.
    settings = {"LKL_HIJACK_NET_IFTYPE": "tap", "LKL_HIJACK_NET_IFPARAMS": TAP,
                "LKL_HIJACK_NET_IP": LKL_IP, "LKL_HIJACK_NET_NETMASK_LEN": "24",
                "LKL_HIJACK_OFFLOAD": "0x9983"}
    server = subprocess.Popen(ns.exec_argv(env_argv(settings, [iperf3, "-s", "-1", "-J"])),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            res = ns.run([iperf3, "-c", LKL_IP, "-t", "2", "-J", *extra], timeout=60)
            if res.returncode == 0 or time.monotonic() > deadline:
                break
            assert server.poll() is None, server.communicate()
            time.sleep(0.1)  # the server is still booting its kernel: retry
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr
        data = iperf3_json(res.stdout)
        assert data["end"]["sum_received"]["bytes"] > 1 << 20
        if extra == ["-P", "4"]:
            assert len(data["end"]["streams"]) == 4
        out, err = server.communicate(timeout=30)
        assert server.returncode == 0, err
        # The server's own record: it sent (-R) or received the bytes.
        end = iperf3_json(out)["end"]
        side = "sum_sent" if "-R" in extra else "sum_received"
        assert end[side]["bytes"] > 1 << 20
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, str]:
    root = tmp_path / "site"
    root.mkdir()
    blob = os.urandom(3 << 20)
    (root / "blob.bin").write_bytes(blob)
    return root, hashlib.sha256(blob).hexdigest()


@needs_root
def test_curl_on_lkl_fetches_from_the_namespace(ns: Netns, site: tuple[Path, str],
                                                tmp_path: Path) -> None:
    need("curl")
    root, digest = site
    with http_server(ns, FAR_IP, root):
        # The NIC from a JSON file in upstream's layout; the server is
        # beyond the gateway.
        config = tmp_path / "lkl.json"
        config.write_text(json.dumps({"interfaces": [{"type": "tap", "param": TAP,
                                                      "ip": LKL_IP, "masklen": 24,
                                                      "offload": "CHECKSUM"}],
                                      "gateway": HOST_IP}))
        curl_on_lkl(ns, {"LKL_CONFIG": str(config)}, f"http://{FAR_IP}:8000/blob.bin",
                    digest)


@needs_root
def test_namespace_curl_fetches_from_nginx_on_lkl(ns: Netns, site: tuple[Path, str],
                                                  tmp_path: Path) -> None:
    curl, nginx = need("curl"), need("nginx")
    root, digest = site
    conf = tmp_path / "nginx.conf"
    temp = tmp_path / "temp"
    temp.mkdir()
    conf.write_text(textwrap.dedent(f"""
        worker_processes 1;
        pid {tmp_path}/nginx.pid;
        error_log {tmp_path}/error.log info;
        events {{ worker_connections 64; }}
        http {{
            access_log off;
            sendfile on;
            client_body_temp_path {temp}; proxy_temp_path {temp};
            fastcgi_temp_path {temp}; uwsgi_temp_path {temp}; scgi_temp_path {temp};
            server {{ listen {LKL_IP}:8080; listen [{LKL_IP6}]:8080; root {root}; }}
        }}
    """))
    server = subprocess.Popen(ns.exec_argv(env_argv(lkl_settings(), [
        nginx, "-p", str(tmp_path), "-c", str(conf),
        "-g", "daemon off; master_process off;"])),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            res = ns.run([curl, "-sS", "--fail", "-m", "60", "-o", str(tmp_path / "got"),
                          f"http://{LKL_IP}:8080/blob.bin"], timeout=90)
            if res.returncode == 0 or time.monotonic() > deadline:
                break
            assert server.poll() is None, server.communicate()
            time.sleep(0.1)  # nginx's kernel is still booting: retry
        assert res.returncode == 0, res.stderr + (tmp_path / "error.log").read_text()
        assert hashlib.sha256((tmp_path / "got").read_bytes()).hexdigest() == digest
        res = ns.run([curl, "-sS", "--fail", "-m", "60", "-g", "-o", str(tmp_path / "got6"),
                      f"http://[{LKL_IP6}]:8080/blob.bin"], timeout=90)
        assert res.returncode == 0, res.stderr
        assert hashlib.sha256((tmp_path / "got6").read_bytes()).hexdigest() == digest
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@needs_root
def test_curl_on_lkl_over_a_raw_interface(site: tuple[Path, str]) -> None:
    """LKL_NIC=raw:IFNAME: the kernel on an existing interface (one end of
    a veth pair inside the namespace) through an AF_PACKET socket."""
    need("curl")
    root, digest = site
    with Netns("lklraw") as ns:
        ns.add_veth("lklraw0", "lklraw1", "10.200.15.1/24")
        with http_server(ns, "10.200.15.1", root):
            curl_on_lkl(ns, {"LKL_NIC": "raw:lklraw0", "LKL_ADDRESS": "10.200.15.2/24"},
                        "http://10.200.15.1:8000/blob.bin", digest)


@needs_root
def test_iproute2_on_lkl_sees_the_kernels_interfaces(ns: Netns) -> None:
    """iproute2's netlink sockets are the kernel's too: `ip addr` shows the
    kernel's NIC with its addresses, not the namespace's TAP."""
    ip = need("ip")
    res = subprocess.run(ns.exec_argv(env_argv(lkl_settings(), [ip, "-o", "addr"])),
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert f"inet {LKL_IP}/24" in res.stdout and f"inet6 {LKL_IP6}/64" in res.stdout
    assert TAP not in res.stdout and HOST_IP not in res.stdout
    host = ns.run([ip, "-o", "addr"]).stdout
    assert TAP in host and LKL_IP not in host

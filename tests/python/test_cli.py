"""The command line: ``python -m lkl``, ``python -m lkl run``, the shared options."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import ROOT, _env

from harness.netns import Netns
from lkl.cli import options, parser
from lkl.cli import run as cli_run

HAVE_PATCH = importlib.util.find_spec("lkl.patch") is not None
needs_patch = pytest.mark.skipif(not HAVE_PATCH, reason="needs lkl.patch (issue 11, the "
                                 "other half): remove this skip once it is merged")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, TAP)")


def lkl_cli(*args: str, cwd: Path | None = None, timeout: float = 60,
            env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "lkl", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd or ROOT, env=_env(**(env or {})))


# ---- parsing (no kernel) ---------------------------------------------------------


def run_parser() -> object:
    p = parser()
    return p._subparsers._group_actions[0].choices["run"]  # type: ignore[union-attr]


def test_split_program() -> None:
    rp = run_parser()
    split = cli_run.split_program
    assert split(rp, ["--memory", "128M", "s.py", "-v", "--memory", "x"]) == (  # type: ignore[arg-type]
        ["--memory", "128M"], ("script", "s.py"), ["-v", "--memory", "x"])
    assert split(rp, ["--no-patch", "-m", "test", "-v", "-i", "*VSOCK*"]) == (  # type: ignore[arg-type]
        ["--no-patch"], ("module", "test"), ["-v", "-i", "*VSOCK*"])
    assert split(rp, ["--sysctl=a=b", "-c", "print(1)", "x"]) == (  # type: ignore[arg-type]
        ["--sysctl=a=b"], ("code", "print(1)"), ["x"])
    assert split(rp, ["--", "-odd-name.py", "a"]) == ([], ("script", "-odd-name.py"), ["a"])  # type: ignore[arg-type]
    assert split(rp, ["--memory", "64M"]) == (["--memory", "64M"], None, [])  # type: ignore[arg-type]


def parse(*argv: str) -> options.KernelOptions:
    rp = run_parser()
    own, _program, _args = cli_run.split_program(rp, [*argv, "x.py"])  # type: ignore[arg-type]
    return options.kernel_options(rp.parse_args(own))  # type: ignore[attr-defined]


def test_nic_options_belong_to_the_nic_before_them() -> None:
    opts = parse("--offload", "CHECKSUM", "--nic", "tap:t0", "--address", "10.0.0.2/24",
                 "--address", "fd00::2/64", "--nic", "raw:eth1", "--offload",
                 "LARGE_SEGMENTS", "--address", "10.1.0.2/16", "--gateway", "10.0.0.1",
                 "--sysctl", "net.ipv4.ip_forward=1", "--nameserver", "10.0.0.53")
    assert opts.offload == "CHECKSUM"
    assert opts.nics == [
        options.NicSpec("tap:t0", ["10.0.0.2/24", "fd00::2/64"], None),
        options.NicSpec("raw:eth1", ["10.1.0.2/16"], "LARGE_SEGMENTS")]
    assert opts.gateways == ["10.0.0.1"]
    assert opts.sysctls == {"net.ipv4.ip_forward": "1"}
    assert opts.nameservers == ["10.0.0.53"]
    assert options.parse_offload("csum|guest_csum") == options.parse_offload("CHECKSUM")


def test_config_files_and_the_command_line_over_them(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "k.toml"
    toml.write_text(textwrap.dedent("""
        memory = "96M"
        syscall_mode = "direct"
        nameserver = ["10.9.0.53", "fd00::53"]
        gateway = "10.9.0.1"
        sysctl = { "net.ipv4.tcp_congestion_control" = "reno", "net.core.somaxconn" = 64 }

        [[nic]]
        backend = "tap:tk0"
        address = ["10.9.0.2/24"]
        offload = "BIG_PACKETS"
    """))
    opts = parse("--config", str(toml), "--memory", "128M", "--sysctl",
                 "net.core.somaxconn=128")
    assert (opts.memory, opts.syscall_mode) == ("128M", "direct")
    assert opts.nameservers == ["10.9.0.53", "fd00::53"] and opts.gateways == ["10.9.0.1"]
    assert opts.sysctls == {"net.ipv4.tcp_congestion_control": "reno",
                            "net.core.somaxconn": "128"}
    assert opts.nics == [options.NicSpec("tap:tk0", ["10.9.0.2/24"], "BIG_PACKETS")]
    js = tmp_path / "k.json"
    js.write_text(json.dumps({"memory": "80M", "nics": ["tap:tj0"], "pin-cpu": 0}))
    monkeypatch.setenv(options.CONFIG_ENV, str(js))
    opts = parse()
    assert (opts.memory, opts.pin_cpu, opts.nics) == ("80M", 0, [options.NicSpec("tap:tj0")])


@pytest.mark.parametrize(("content", "message"), [
    ('{"memroy": "64M"}', "unknown setting 'memroy'"),
    ('{"syscall_mode": "fast"}', "shadow or direct"),
    ('{"nic": [{"backend": "vde:x"}]}', "tap:NAME or raw:IFNAME"),
    ('{"nic": [{"backend": "tap:t", "adress": []}]}', "unknown nic setting 'adress'"),
    ('{"offload": "TURBO"}', "unknown offload 'TURBO'"),
    ('{"gateway": "router"}', "wants an IP address"),
    ("[1, 2]", "top level"),
    ("{not json", "config file"),
])
def test_bad_config_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(options.OptionsError, match=message):
        options.load_config(str(path))
    with pytest.raises(options.OptionsError, match="cannot read config file"):
        options.load_config(str(tmp_path / "missing.json"))


# ---- the command line (fresh interpreters) ---------------------------------------


def test_help_everywhere() -> None:
    top = lkl_cli("--help")
    assert top.returncode == 0 and "run" in top.stdout and "demo" in top.stdout
    run = lkl_cli("run", "--help")
    assert run.returncode == 0
    for flag in ("--memory", "--syscall-mode", "--pin-cpu", "--nic", "--address", "--gateway",
                 "--offload", "--sysctl", "--nameserver", "--control", "--config",
                 "--no-patch"):
        assert flag in run.stdout, flag
    demo = lkl_cli("demo", "--help")
    assert demo.returncode == 0 and "make demo" in demo.stdout


@pytest.mark.parametrize(("argv", "message"), [
    (["frobnicate"], "invalid choice"),
    (["run"], "give a script"),
    (["run", "--memory", "lots", "x.py"], "--memory wants a size"),
    (["run", "--nic", "vde:sw0", "x.py"], "tap:NAME or raw:IFNAME"),
    (["run", "--address", "10.0.0.2/24", "x.py"], "give the --nic it belongs to first"),
    (["run", "--nic", "tap:t0", "--address", "10.0.0.2", "x.py"], "give the prefix length"),
    (["run", "--sysctl", "novalue", "x.py"], "key=value"),
    (["run", "--syscall-mode", "fast", "x.py"], "invalid choice"),
    (["run", "--offload", "TURBO", "x.py"], "unknown offload"),
    (["run", "--control", ".bad", "-c", "pass"], "control name"),
    (["run", "--no-patch", "--memory", "1M", "-c", "pass"], "at least 16M"),
    (["run", "--bogus", "x.py"], "unrecognized arguments: --bogus"),
])
def test_bad_options_exit_2(argv: list[str], message: str) -> None:
    proc = lkl_cli(*argv)
    assert proc.returncode == 2, proc
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


SCRIPT = """\
import os, sys, threading
import lkl

k = lkl.kernel()
assert k is not None, "no kernel"
print("name", __name__)
print("argv", sys.argv)
print("path0", sys.path[0] == os.path.dirname(os.path.abspath(__file__)))
print("cc", k.sysctl("net.ipv4.tcp_congestion_control"))
print("memory", k.read_text("/proc/meminfo").split()[1])

def late():
    # Runs after the main module ended: the kernel halts only after it.
    s = k.socket(); s.bind(("127.0.0.1", 0)); print("late", s.getsockname()[0]); s.close()

t = threading.Timer(0.2, late)
t.start()
code = os.environ.get("EXIT")
if code == "raise":
    def inner():
        raise RuntimeError("boom")
    inner()
if code == "message":
    sys.exit("goodbye")
if code:
    sys.exit(int(code))
"""


def test_run_script(tmp_path: Path) -> None:
    script = tmp_path / "prog.py"
    script.write_text(SCRIPT)
    proc = lkl_cli("run", "--no-patch", "--memory", "96M", "--sysctl",
                   "net.ipv4.tcp_congestion_control=reno", str(script), "a", "--b")
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert lines["name"] == "__main__"
    assert lines["argv"] == repr([str(script), "a", "--b"])
    assert lines["path0"] == "True"
    assert lines["cc"] == "reno"
    assert 80 * 1024 < int(lines["memory"]) <= 96 * 1024   # kB of the kernel's RAM
    assert lines["late"] == "127.0.0.1"


@pytest.mark.parametrize(("exit", "code", "stderr"), [
    ("3", 3, ""), ("message", 1, "goodbye\n"), ("raise", 1, "RuntimeError: boom")])
def test_run_exit_codes_and_tracebacks(tmp_path: Path, exit: str, code: int,
                                       stderr: str) -> None:
    script = tmp_path / "prog.py"
    script.write_text(SCRIPT)
    proc = lkl_cli("run", "--no-patch", str(script), env={"EXIT": exit})
    assert proc.returncode == code, proc.stderr
    assert stderr in proc.stderr
    if exit == "raise":
        # Like python prog.py: the program's frames only.
        assert proc.stderr.startswith("Traceback (most recent call last):\n"
                                      f'  File "{script}", line ')
        assert "lkl/cli" not in proc.stderr and "runpy" not in proc.stderr
        assert "in inner" in proc.stderr


def test_run_module_and_code(tmp_path: Path) -> None:
    (tmp_path / "hello_lkl.py").write_text(
        "import sys, lkl\nprint(__name__, sys.argv[1:], lkl.kernel() is not None)\n")
    proc = lkl_cli("run", "--no-patch", "-m", "hello_lkl", "-x", "y", cwd=tmp_path,
                   env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "__main__ ['-x', 'y'] True\n"
    proc = lkl_cli("run", "--no-patch", "-m", "no_such_module_lkl")
    assert proc.returncode == 1 and "No module named no_such_module_lkl" in proc.stderr
    proc = lkl_cli("run", "--no-patch", "-c",
                   "import sys, lkl; print(__name__, sys.argv, lkl.kernel().version[:2])", "q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "__main__ ['-c', 'q'] 6.\n"
    proc = lkl_cli("run", "--no-patch", str(tmp_path / "missing.py"))
    assert proc.returncode == 2 and "can't open file" in proc.stderr


def test_run_with_a_device_that_cannot_open() -> None:
    proc = lkl_cli("run", "--no-patch", "--nic", "raw:nosuchif0", "-c", "pass")
    assert proc.returncode == 1, proc
    assert "cannot boot the kernel" in proc.stderr and "Traceback" not in proc.stderr


def test_run_without_patch_available_says_so() -> None:
    if HAVE_PATCH:
        pytest.skip("lkl.patch exists")
    proc = lkl_cli("run", "-c", "pass")
    assert proc.returncode == 2 and "--no-patch" in proc.stderr


@needs_patch
def test_run_patches_the_standard_library() -> None:
    proc = lkl_cli("run", "-c", textwrap.dedent("""
        import socket, lkl
        k = lkl.kernel()
        srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
        print(hasattr(srv, "kfd"), k.snmp()["Tcp"]["CurrEstab"] >= 0)
        c = socket.create_connection(srv.getsockname(), timeout=5)
        a, _ = srv.accept(); c.sendall(b"hi"); print(a.recv(2).decode())
    """))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True", "hi"]


def test_demo_without_arguments() -> None:
    proc = lkl_cli(timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "booted Linux" in proc.stdout and "SHA-256 intact" in proc.stdout


@needs_root
@pytest.mark.watchdog(120)
def test_run_with_a_tap_nic(tmp_path: Path) -> None:
    script = tmp_path / "net.py"
    script.write_text(textwrap.dedent("""
        import lkl
        k = lkl.kernel()
        nic = k.nics[0]
        print("nic", nic.name, nic.features_negotiated == lkl.Offload.CHECKSUM)
        default = [line.split() for line in k.read_text("/proc/net/route").splitlines()
                   if line.split()[1:2] == ["00000000"]]
        print("route", default[0][0], default[0][2])   # 10.200.71.1, little-endian
        print("ns", k.nameservers)
        s = k.socket(); s.settimeout(10)
        s.connect(("10.200.71.1", PORT)); s.sendall(b"over the tap"); s.close()
    """).replace("PORT", "7071"))
    with Netns() as ns:
        ns.add_tap("tcli", "10.200.71.1/24")
        listener = subprocess.Popen(
            ns.exec_argv([sys.executable, "-c", textwrap.dedent("""
                import socket
                s = socket.socket(); s.bind(("10.200.71.1", 7071)); s.listen()
                print("ready", flush=True)
                s.settimeout(30); c, _ = s.accept(); c.settimeout(30)
                print(c.recv(100).decode())
            """)]), stdout=subprocess.PIPE, text=True)
        try:
            assert listener.stdout is not None
            assert listener.stdout.readline() == "ready\n"
            proc = lkl_cli("run", "--no-patch", "--nic", "tap:tcli", "--offload", "CHECKSUM",
                           "--address", "10.200.71.2/24", "--gateway", "10.200.71.1",
                           "--nameserver", "10.200.71.53", str(script),
                           prefix=tuple(ns.exec_argv([])))
            got, _ = listener.communicate(timeout=30)
        finally:
            if listener.poll() is None:
                listener.kill()
                listener.wait()
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert lines["nic"] == "eth0 True"
    assert lines["route"] == "eth0 0147C80A"
    assert lines["ns"] == "('10.200.71.53',)"
    assert got.strip() == "over the tap"

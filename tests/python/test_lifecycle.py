"""Boot, halt and their refusals: each test runs its own interpreter."""

import pytest
from helpers import KERNEL_SLEEPERS, run_ok, run_python

import lkl._kernel

pytestmark = pytest.mark.isolated


def test_boot_halt_and_calls_after_halt():
    out = run_ok("""
        import lkl
        assert lkl.kernel() is None
        k = lkl.boot()
        assert lkl.kernel() is k
        assert k.version.startswith("6.12"), k.version
        assert k.getpid() == 1
        assert k.syscall_mode == "direct"        # the fast default
        assert "nohz=off" in k.read_text("/proc/cmdline").split()
        s = k.socket()
        k.halt()
        assert k.halted and lkl.kernel() is None
        k.halt()                                  # idempotent
        for call in (k.getpid, k.uname, lambda: k.read_text("/proc/version"),
                     lambda: k.sysctl("net.core.somaxconn"), k.snmp, k.socket,
                     lambda: k.syscall("getpid"), lambda: k.listdir("/")):
            try:
                call()
            except lkl.KernelError:
                pass
            else:
                raise AssertionError(f"{call} worked after halt")
        try:
            s.bind(("127.0.0.1", 0))
        except lkl.KernelError as e:
            print("socket:", e)
        else:
            raise AssertionError("socket call worked after halt")
        s.close()                                 # harmless after halt
        s.close()
        print("log has", len(k.log), "chars; version", k.version)
    """)
    assert "socket: [Errno 19] the kernel is not running" in out


def test_boot_defaults_fd_limit_and_the_paper_baseline_one_argument_away():
    out = run_ok("""
        import lkl
        from helpers import assert_refuses
        k = lkl.boot(syscall_mode="shadow", max_fds=50000)
        assert k.syscall_mode == "shadow"
        assert "nohz=off" not in k.read_text("/proc/cmdline").split()
        limits = [l for l in k.read_text("/proc/self/limits").splitlines()
                  if l.startswith("Max open files")][0].split()
        assert limits[3:5] == ["50000", "50000"], limits
        assert int(k.sysctl("fs.epoll.max_user_watches")) >= 50000
        # More sockets than the kernel's old default limit of 1024.
        socks = [k.socket() for _ in range(3000)]
        for s in socks:
            s.close()
        k.halt()
        assert_refuses(lambda bad: lkl.boot(**bad),
                       (({"max_fds": 10}, ValueError), ({"max_fds": "many"}, TypeError)))
        print("ok")
    """)
    assert out.strip() == "ok"


def test_default_boot_has_a_million_fds_and_direct_mode():
    out = run_ok("""
        import lkl
        with lkl.boot() as k:
            limits = [l for l in k.read_text("/proc/self/limits").splitlines()
                      if l.startswith("Max open files")][0].split()
            print(k.syscall_mode, limits[3], k.read_text("/proc/meminfo").split()[1])
    """)
    mode, fds, mem_kib = out.split()
    assert mode == "direct" and int(fds) == lkl._kernel.DEFAULT_MAX_FDS
    assert int(mem_kib) > 200 * 1024     # the 256M default


def test_context_manager_halts():
    run_ok("""
        import lkl
        with lkl.boot(memory=32 << 20) as k:
            assert "Linux version 6.12" in k.read_text("/proc/version")
            assert lkl.kernel() is k
        assert k.halted and lkl.kernel() is None
        try:
            with k:
                pass
        except lkl.KernelError:
            pass
        else:
            raise AssertionError("entered a halted kernel")
    """)


def test_second_boot_refused_while_running_and_after_halt():
    out = run_ok("""
        import lkl
        k = lkl.boot()
        try:
            lkl.boot()
        except lkl.KernelError as e:
            print("running:", e)
        assert lkl.kernel() is k and k.getpid() == 1     # still fine
        k.halt()
        try:
            lkl.boot()
        except lkl.KernelError as e:
            print("halted:", e)
    """)
    assert "running: [Errno 16] a kernel is already running" in out
    assert "halted: [Errno 114] a kernel already ran and halted in this process" in out


def test_a_refused_boot_leaves_its_nics_unattached():
    # Refusals come before the devices' boot fragments: the Nic is not
    # marked attached on the C side by a boot that could never happen.
    out = run_ok("""
        import errno, lkl
        lkl.boot().halt()
        a, b = lkl.Pipe.pair()
        nic = lkl.Nic(a)
        try:
            lkl.boot(nics=[nic])
        except lkl.KernelError as e:
            assert e.errno == errno.EALREADY, e
        try:
            nic._dev.attach()        # no kernel: refused, but not as "already attached"
        except OSError as e:
            print(errno.errorcode[e.errno], "not attached" in repr(nic))
    """)
    assert out.strip() == "ENODEV True"


def test_a_fragment_without_a_boot_leaves_the_nic_unattached():
    # The C side counts a device as attached by its boot fragment only once
    # a kernel runs: a boot that failed after making fragments leaves the
    # devices free (EALREADY before the fix).
    out = run_ok("""
        import errno, lkl
        a, b = lkl.Pipe.pair()
        nic = lkl.Nic(a)
        nic._dev.cmdline()
        try:
            nic._dev.attach()        # no kernel: refused, but not as "already attached"
        except OSError as e:
            print(errno.errorcode[e.errno])
    """)
    assert out.strip() == "ENODEV"


def test_console_callback_and_log():
    out = run_ok("""
        import threading, lkl
        chunks = []
        seen = threading.Event()
        def console(text):
            chunks.append(text)
            if "Linux version" in "".join(chunks):
                seen.set()
        k = lkl.boot(console=console)
        assert seen.wait(10), "console callback got no boot text"
        assert "Linux version 6.12" in k.log
        k.halt()
        text = "".join(chunks)
        assert text == k.log, (len(text), len(k.log))
        print("ok", len(text))
    """)
    assert out.startswith("ok")


def test_console_callback_errors_do_not_break_the_kernel():
    proc = run_python("""
        import lkl
        def console(text):
            raise ValueError("console callback failure")
        with lkl.boot(console=console) as k:
            assert k.getpid() == 1
        print("alive")
    """)
    assert proc.returncode == 0, proc.stderr
    assert "alive" in proc.stdout
    assert "console callback failure" in proc.stderr


def test_pin_cpu_and_boot_arguments():
    run_ok("""
        import os, lkl
        from helpers import assert_refuses
        cpu = sorted(os.sched_getaffinity(0))[0]
        assert_refuses(lambda bad: lkl.boot(**bad), (
            (dict(memory="lots"), ValueError), (dict(memory=1024), ValueError),
            (dict(memory=1.5), TypeError), (dict(syscall_mode="fast"), ValueError),
            (dict(pin_cpu=100000), ValueError), (dict(pin_cpu="0"), TypeError),
            (dict(console=42), TypeError), (dict(cmdline=b"x"), TypeError),
            (dict(nics=["tap0"]), TypeError)))
        assert lkl.kernel() is None                  # refusals boot nothing
        with lkl.boot(memory="48M", pin_cpu=cpu, cmdline="loglevel=4") as k:
            assert "loglevel=4" in k.read_text("/proc/cmdline")
            assert "mem=" in k.read_text("/proc/cmdline")
            assert k.uname().release == k.version
    """)


def test_forked_child_gets_kernel_error_not_a_hang():
    out = run_ok("""
        import os, lkl
        k = lkl.boot()
        s = k.socket()
        pid = os.fork()
        if pid == 0:
            code = 0
            for call in (k.getpid, lambda: s.bind(("127.0.0.1", 0)), lambda: lkl.boot()):
                try:
                    call()
                    code = 1
                except lkl.KernelError:
                    pass
            s.close()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status))
        assert k.getpid() == 1                    # the parent's kernel is intact
        s.close()
        k.halt()
    """, timeout=30)
    assert "child 0" in out


def test_exit_with_a_running_kernel_and_blocked_threads():
    # atexit halts the kernel; a daemon thread blocked in accept() is released.
    proc = run_python(KERNEL_SLEEPERS + """
import threading, lkl
k = lkl.boot()
s = k.socket()
s.bind(("127.0.0.1", 0))
s.listen()
asleep = kernel_sleepers(k)
threading.Thread(target=s.accept, daemon=True).start()
wait_kernel_sleepers(k, asleep + 1)      # blocked in the kernel when the process exits
print("exiting")
""", timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "exiting" in proc.stdout


MODES = ["shadow", "direct"]


@pytest.mark.parametrize("mode", MODES)
def test_halt_releases_threads_blocked_in_the_kernel(mode):
    out = run_ok(KERNEL_SLEEPERS + f"""
import threading, lkl
k = lkl.boot(syscall_mode={mode!r})
srv = k.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
cli = k.socket(); cli.connect(srv.getsockname())
conn, _ = srv.accept()
errors = []
def blocked(call):
    try:
        call()
    except lkl.KernelError as e:
        errors.append((type(e).__name__, e.errno))
threads = [threading.Thread(target=blocked, args=(c,))
           for c in (lambda: conn.recv(10), srv.accept,
                     lambda: lkl.select([conn], [], [], None))]
asleep = kernel_sleepers(k)
for t in threads:
    t.start()
wait_kernel_sleepers(k, asleep + len(threads))     # all three blocked in the kernel
k.halt()
for t in threads:
    t.join(10)
assert not any(t.is_alive() for t in threads)
print(sorted(errors))
""", timeout=30)
    assert out.strip() == "[('KernelError', 19), ('KernelError', 19), ('KernelError', 19)]"


@pytest.mark.parametrize("mode", MODES)
def test_halt_ends_oserror_loops_and_socketserver(mode):
    # Code written for the standard library's sockets catches OSError only.
    out = run_ok(KERNEL_SLEEPERS + f"""
import errno, socketserver, threading, lkl
k = lkl.boot(syscall_mode={mode!r})
srv = k.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
ended = []
def accept_loop():
    while True:
        try:
            srv.accept()
        except OSError as e:               # what a plain server loop catches
            ended.append(("loop", e.errno, isinstance(e, lkl.KernelError)))
            return

class Server(socketserver.TCPServer):
    def __init__(self):
        super().__init__(("127.0.0.1", 0), socketserver.BaseRequestHandler,
                         bind_and_activate=False)
        self.socket.close()
        self.socket = k.socket()
        self.server_bind(); self.server_activate()

server = Server()
def serve_one():
    server._handle_request_noblock()       # accept() -> OSError -> return quietly
    ended.append(("socketserver",))

threads = [threading.Thread(target=accept_loop), threading.Thread(target=serve_one)]
asleep = kernel_sleepers(k)
for t in threads:
    t.start()
wait_kernel_sleepers(k, asleep + 2)
k.halt()
for t in threads:
    t.join(10)
assert not any(t.is_alive() for t in threads)
print(sorted(ended))
assert issubclass(lkl.KernelError, OSError)
assert lkl.errno_error(errno.ENODEV).errno == errno.ENODEV
""", timeout=30)
    assert out.strip() == "[('loop', 19, True), ('socketserver',)]"

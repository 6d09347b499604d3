"""Bad user pointers are EFAULT, never a crash (issue 15).

Without an MMU nothing stopped the kernel's user copies from faulting the
whole process; now every copy from or to a syscall's caller runs under a
fault fixup (native/host/fault.c, native/arch/lkl/include/asm/uaccess.h).
The C program tries every syscall family with a pointer to nothing and to
a PROT_NONE page, in both syscall modes; Python's raw Kernel.syscall gets
OSError(EFAULT) too; a fault elsewhere still ends the process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from native_programs import BIN, MODES, ROOT, build, run

PROGRAM = BIN / "efault_syscalls"

FAMILIES = ["write bad buffer", "read bad buffer", "send bad buffer", "recv bad buffer",
            "sendmsg bad msghdr", "sendmsg bad msg_iov", "sendmsg bad iov_base",
            "recvmsg bad msghdr", "recvmsg bad msg_iov", "recvmsg bad iov_base",
            "setsockopt bad optval", "getsockopt bad optval", "getsockopt bad optlen",
            "ioctl FIONREAD bad pointer", "ioctl SIOCGIFFLAGS bad ifreq", "openat bad path",
            "mount bad source (strnlen_user)", "read /dev/zero into a bad buffer (clear_user)",
            "write half-bad buffer returns the good half"]


@pytest.fixture(scope="module", autouse=True)
def program() -> None:
    build()


@pytest.mark.parametrize("mode", MODES)
def test_every_family_gets_efault(mode: str) -> None:
    out = run(PROGRAM.name, mode=mode)
    passed = {line[3:] for line in out.splitlines() if line.startswith("ok ")}
    assert set(FAMILIES) <= passed, set(FAMILIES) - passed
    assert "halt" in passed


def test_other_faults_still_crash() -> None:
    """The handler chains: a fault outside the user copies is the usual SIGSEGV."""
    proc = subprocess.run([str(PROGRAM), "crash"], capture_output=True, text=True, timeout=60)
    assert "crashing" in proc.stdout
    assert proc.returncode == -signal.SIGSEGV


@pytest.mark.parametrize("mode", MODES)
def test_python_syscall_bad_pointer_raises_efault(mode: str) -> None:
    code = textwrap.dedent(f"""
        import errno, struct, lkl
        with lkl.boot(syscall_mode={mode!r}) as k:
            fds = bytearray(8)
            k.syscall("pipe2", fds, 0)
            r, w = struct.unpack("ii", fds)
            assert k.syscall("write", w, b"data", 4) == 4   # so that read copies
            for args in (("write", w, 1, 10), ("read", r, 1, 10),
                         ("openat", -100, 1, 0)):
                try:
                    k.syscall(*args)
                except OSError as e:
                    assert e.errno == errno.EFAULT, (args, e)
                else:
                    raise AssertionError(args)
            buf = bytearray(4)
            assert k.syscall("read", r, buf, 4) == 4 and buf == b"data"
            print("efault ok")
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "efault ok" in proc.stdout

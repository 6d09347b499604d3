"""The proxy confines itself once it is set up (the paper's motivation).

Order: switch to ``--user`` (when root), drop every capability (bounding
set, then the effective/permitted/inheritable sets), set no_new_privs and
load a seccomp filter on every thread of the process (TSYNC: the
kernel's host threads too).

The filter is an allow-list of what the relay, the kernel's host threads
and the interpreter use; anything else fails with EPERM (not a kill, so
a test can observe the refusal).  Notably refused: ``execve``/``execveat``,
``fork`` (``clone`` without ``CLONE_THREAD``), ``ptrace``, ``open``/``openat``
(no new files), ``bind``/``listen`` on the host (the listening sockets and
the TAP fd were opened before), sockets other than IPv4/IPv6 ones (new
backend connections still need ``socket`` + ``connect``), mount, setuid.
``clone3`` answers ENOSYS so that glibc falls back to ``clone``, whose
flags the filter can check.

libseccomp (Debian's ``libseccomp2``) is used through ctypes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import pwd
import socket

__all__ = ["SandboxError", "confine", "ALLOWED"]

SCMP_ACT_ALLOW = 0x7FFF0000


def _act_errno(e: int) -> int:
    return 0x00050000 | (e & 0xFFFF)


SCMP_FLTATR_CTL_NNP = 3
SCMP_FLTATR_CTL_TSYNC = 4
SCMP_CMP_EQ = 4
SCMP_CMP_MASKED_EQ = 7
CLONE_THREAD = 0x00010000

# Syscalls allowed with any arguments.
ALLOWED = (
    # I/O on fds the process already has
    "read", "write", "readv", "writev", "pread64", "pwrite64", "close", "fstat",
    "newfstatat", "lseek", "fcntl", "dup", "dup3", "ioctl",
    # waiting
    "poll", "ppoll", "select", "pselect6", "epoll_wait", "epoll_pwait", "epoll_pwait2",
    "epoll_ctl", "epoll_create1", "eventfd2", "futex", "futex_waitv", "nanosleep",
    "clock_nanosleep", "sched_yield", "restart_syscall",
    # memory
    "mmap", "munmap", "mprotect", "mremap", "madvise", "brk", "membarrier",
    # threads and signals
    "set_robust_list", "get_robust_list", "rseq", "set_tid_address", "exit", "exit_group",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait", "sigaltstack",
    "tgkill", "gettid", "getpid", "getppid", "sched_getaffinity", "sched_setaffinity",
    "prlimit64", "getrlimit",
    # time and identity
    "clock_gettime", "clock_getres", "gettimeofday", "time", "timer_create",
    "timer_settime", "timer_gettime", "timer_delete", "timerfd_create", "timerfd_settime",
    "timerfd_gettime", "getuid", "geteuid", "getgid", "getegid", "getgroups", "getrandom",
    "uname", "sysinfo", "getcwd",
    # sockets: on existing fds, plus connect for new backend connections
    "connect", "accept", "accept4", "getsockname", "getpeername", "setsockopt",
    "getsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
    "shutdown",
)


class SandboxError(OSError):
    """The sandbox could not be set up."""


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


def _libseccomp() -> ctypes.CDLL:
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError:
        raise SandboxError(errno.ENOSYS, "libseccomp is missing (apt-get install "
                           "libseccomp2), or run with --no-sandbox") from None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    return lib


def _rule(lib: ctypes.CDLL, ctx: int, action: int, name: str,
          *cmps: tuple[int, int, int, int]) -> None:
    nr = lib.seccomp_syscall_resolve_name(name.encode())
    if nr < 0:
        return   # not a syscall of this architecture
    array = (_ArgCmp * max(1, len(cmps)))(*[_ArgCmp(*c) for c in cmps])
    err = lib.seccomp_rule_add_array(ctx, action, nr, len(cmps), array)
    if err < 0:
        raise SandboxError(-err, f"seccomp rule for {name}: {os.strerror(-err)}")


def _seccomp() -> None:
    lib = _libseccomp()
    ctx = lib.seccomp_init(_act_errno(errno.EPERM))
    if not ctx:
        raise SandboxError(errno.ENOMEM, "seccomp_init failed")
    try:
        for attr in (SCMP_FLTATR_CTL_NNP, SCMP_FLTATR_CTL_TSYNC):
            err = lib.seccomp_attr_set(ctx, attr, 1)
            if err < 0:
                raise SandboxError(-err, f"seccomp attribute {attr}: {os.strerror(-err)}")
        for name in ALLOWED:
            _rule(lib, ctx, SCMP_ACT_ALLOW, name)
        # New threads only; glibc falls back from clone3 on ENOSYS.
        _rule(lib, ctx, SCMP_ACT_ALLOW, "clone",
              (0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD))
        _rule(lib, ctx, _act_errno(errno.ENOSYS), "clone3")
        # New sockets: IPv4 and IPv6 only (backend connections).
        for family in (socket.AF_INET, socket.AF_INET6):
            _rule(lib, ctx, SCMP_ACT_ALLOW, "socket", (0, SCMP_CMP_EQ, family, 0))
        err = lib.seccomp_load(ctx)
        if err < 0:
            raise SandboxError(-err, f"seccomp_load: {os.strerror(-err)}")
    finally:
        lib.seccomp_release(ctx)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_PR_CAPBSET_DROP = 24
_SYS_CAPSET = 126   # x86-64


def _drop_bounding_set() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in range(64):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 and ctypes.get_errno() == errno.EINVAL:
            break   # past the last capability this kernel knows


def _drop_capabilities() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if libc.syscall(_SYS_CAPSET, ctypes.byref(header), data) < 0:
        e = ctypes.get_errno()
        raise SandboxError(e, f"capset: {os.strerror(e)}")


def _switch_user(name: str) -> None:
    entry = pwd.getpwnam(name)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)


def capabilities() -> dict[str, int]:
    """The process's capability sets (from /proc/self/status)."""
    caps = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Cap"):
                key, value = line.split(":")
                caps[key] = int(value, 16)
    return caps


def confine(user: str | None = None) -> dict[str, int]:
    """Switch user (when root and asked), drop capabilities, load seccomp.

    Call it once everything that needs opening is open.  Irreversible.
    Returns the capability sets as they were just before seccomp.
    """
    if os.uname().machine != "x86_64":
        raise SandboxError(errno.ENOSYS, "the sandbox knows x86-64 only; use --no-sandbox")
    if user is not None and os.geteuid() != 0:
        raise SandboxError(errno.EPERM, f"--user {user} needs the proxy started as root")
    _drop_bounding_set()
    if user is not None:
        _switch_user(user)
    _drop_capabilities()
    caps = capabilities()
    _seccomp()
    return caps

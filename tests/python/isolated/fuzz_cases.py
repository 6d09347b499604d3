"""Hypothesis fuzzing of socket methods, select/poll and Kernel.syscall.

Run in its own interpreter by test_fuzz.py (it boots its own kernel): a
crash here must not take the main test session down.  Every call may
raise an ordinary exception; none may crash the interpreter or raise
anything else (SystemError, KernelError while the kernel runs...).
"""

import errno
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lkl

ALLOWED = (OSError, ValueError, TypeError, OverflowError, MemoryError)
SETTINGS = settings(max_examples=300, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

ints = st.one_of(st.integers(-2**70, 2**70), st.sampled_from(
    [0, 1, -1, 2**31 - 1, 2**31, -2**31, 2**32, 2**63 - 1, 2**63, -2**63, 2**64]))
odd = st.one_of(
    st.none(), st.booleans(), ints, st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.binary(max_size=40), st.builds(bytearray, st.binary(max_size=40)),
    st.builds(object), st.lists(ints, max_size=3), st.tuples(ints, ints))
hosts = st.one_of(st.sampled_from(["127.0.0.1", "::1", "", "localhost", "0.0.0.0", "::",
                                   "<broadcast>", "256.1.1.1", "fe80::1%1", "::1%lo",
                                   "a\0b", "1.2.3.4", "10.0.0.1"]), st.text(max_size=20), odd)
addresses = st.one_of(
    st.tuples(hosts, ints), st.tuples(hosts, st.integers(0, 65535)),
    st.tuples(hosts, st.integers(0, 65535), ints, ints), st.tuples(hosts), st.tuples(),
    st.text(max_size=120), st.binary(max_size=120), odd)
sizes = st.one_of(st.integers(-5, 1 << 16), st.sampled_from([2**31, 2**62, -2**62, 2**64]))
buffers = st.one_of(st.builds(bytearray, st.integers(0, 64)), st.binary(max_size=64),
                    st.builds(lambda n: memoryview(bytearray(n)), st.integers(0, 64)), odd)
KINDS = [("AF_INET", "SOCK_STREAM"), ("AF_INET", "SOCK_DGRAM"), ("AF_INET6", "SOCK_STREAM"),
         ("AF_INET6", "SOCK_DGRAM"), ("AF_UNIX", "SOCK_STREAM"), ("AF_UNIX", "SOCK_DGRAM")]


@pytest.fixture(scope="module")
def kernel():
    k = lkl.boot(memory="64M")
    yield k
    k.halt()


def _socket(kernel, kind):
    family, type_ = (getattr(lkl, n) for n in kind)
    s = kernel.socket(family, type_)
    s.settimeout(0)              # nothing may block
    return s


calls = st.one_of(
    st.tuples(st.sampled_from(["bind", "connect", "connect_ex"]), st.tuples(addresses)),
    st.tuples(st.just("sendto"), st.tuples(buffers, addresses)),
    st.tuples(st.just("sendto"), st.tuples(buffers, odd, addresses)),
    st.tuples(st.sampled_from(["send", "sendall"]), st.tuples(buffers)),
    st.tuples(st.sampled_from(["send", "sendall"]), st.tuples(buffers, odd)),
    st.tuples(st.sampled_from(["recv", "recvfrom"]), st.tuples(sizes)),
    st.tuples(st.sampled_from(["recv", "recvfrom"]), st.tuples(sizes, odd)),
    st.tuples(st.sampled_from(["recv_into", "recvfrom_into"]), st.tuples(buffers, sizes)),
    st.tuples(st.just("recvmsg"), st.tuples(sizes, sizes, odd)),
    st.tuples(st.just("sendmsg"), st.tuples(st.lists(buffers, max_size=3),
                                            st.lists(st.tuples(ints, ints, buffers), max_size=2),
                                            odd, addresses)),
    st.tuples(st.just("setsockopt"), st.tuples(ints, ints, st.one_of(ints, buffers))),
    st.tuples(st.just("setsockopt"), st.tuples(st.sampled_from([1, 0, 6, 41]),
                                               st.integers(0, 80), st.one_of(ints, buffers))),
    st.tuples(st.just("getsockopt"), st.tuples(st.sampled_from([1, 0, 6, 41]),
                                               st.integers(0, 80), sizes)),
    st.tuples(st.just("getsockopt"), st.tuples(ints, ints)),
    st.tuples(st.sampled_from(["shutdown", "listen", "settimeout", "setblocking"]),
              st.tuples(odd)),
    st.tuples(st.sampled_from(["accept", "getsockname", "getpeername", "fileno", "dup",
                               "detach", "close", "gettimeout", "getblocking"]), st.tuples()),
    st.tuples(st.just("makefile"), st.tuples(odd)),
    st.tuples(st.sampled_from(["recv", "bind", "setsockopt", "sendto"]),
              st.lists(odd, max_size=5).map(tuple)),
)


@SETTINGS
@given(kind=st.sampled_from(KINDS), sequence=st.lists(calls, min_size=1, max_size=6))
def test_fuzz_socket_methods(kernel, kind, sequence):
    s = _socket(kernel, kind)
    try:
        for name, args in sequence:
            try:
                result = getattr(s, name)(*args)
            except lkl.KernelError:  # an OSError, but never while the kernel runs
                raise
            except ALLOWED:
                continue
            if name in ("dup", "makefile") and hasattr(result, "close"):
                result.close()
            if name in ("accept",):
                result[0].close()
            if name == "settimeout" or name == "setblocking":
                s.settimeout(0)
    finally:
        s.close()
    assert lkl.kernel() is kernel


# Syscalls whose arguments are all plain numbers: any int is safe to pass.
NUMERIC = ["getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid",
           "sched_yield", "dup", "dup3", "close", "listen", "shutdown", "socket", "umask",
           "lseek", "fsync", "fdatasync", "fchmod", "getpgid", "getsid", "getpriority",
           "flock", "fadvise64", "eventfd2", "epoll_create1", "timerfd_create",
           "inotify_init1", "exit", "exit_group", "clone", "reboot"]
numeric_args = st.lists(st.one_of(st.integers(-2**63, 2**64 - 1), st.integers(-3, 70)),
                        max_size=6)


@SETTINGS
@given(name=st.sampled_from(NUMERIC), args=numeric_args)
def test_fuzz_numeric_syscalls(kernel, name, args):
    if name in ("close", "dup3") and any(a in (0, 1) for a in args[:2]):
        args = [a + 10_000 if a in (0, 1) else a for a in args]   # keep the poller's epoll fd
    try:
        kernel.syscall(name, *args)
    except OSError as e:
        assert e.errno != errno.ENODEV or lkl.kernel() is kernel
    if name in ("exit", "exit_group", "clone", "reboot"):
        assert lkl.kernel() is kernel and kernel.getpid() == 1


@SETTINGS
@given(nr=st.one_of(ints, st.text(max_size=10), odd), args=st.lists(odd, max_size=8))
def test_fuzz_syscall_argument_types(kernel, nr, args):
    # Odd numbers and argument types are refused before any call is made,
    # except plain ints given to a syscall that reads no pointer.
    if isinstance(nr, int) and not isinstance(nr, bool) and 0 <= nr < 2**63:
        nr = nr % 5 + 10_000            # out of the table: -ENOSYS, no argument read
    with pytest.raises(ALLOWED) as info:
        kernel.syscall(nr, *[a for a in args if not isinstance(a, int)] or [1.5])
    assert not isinstance(info.value, lkl.KernelError), info.value


@SETTINGS
@given(size=st.integers(-2, 600), fill=st.binary(max_size=64), n=st.integers(-2, 700))
def test_fuzz_buffer_syscalls(kernel, size, fill, n):
    buf = bytearray(max(size, 0))
    length = min(max(n, 0), len(buf))    # never more than the buffer holds
    for name, args in (("getcwd", (buf, length)), ("uname", (bytearray(390),)),
                       ("write", (10_000, fill, len(fill))), ("read", (10_000, buf, length))):
        try:
            kernel.syscall(name, *args)
        except OSError:
            pass


timeouts = st.one_of(st.none(), st.floats(min_value=-1, max_value=0.01), st.just(math.nan),
                     st.integers(-1, 0), odd)


@SETTINGS
@given(r=st.lists(odd, max_size=3), w=st.lists(odd, max_size=3), x=st.lists(odd, max_size=3),
       timeout=timeouts, data=st.data())
def test_fuzz_select_and_poll(kernel, r, w, x, timeout, data):
    s = _socket(kernel, ("AF_INET", "SOCK_DGRAM"))
    try:
        try:                             # s is writable: select never blocks
            lkl.select([*r, s], [*w, s], x, timeout)
        except lkl.KernelError:  # an OSError, but never while the kernel runs
            raise
        except ALLOWED:
            pass
        p = lkl.poll()
        p.register(s, lkl.POLLOUT)       # ready: poll never blocks
        for obj in data.draw(st.lists(st.one_of(st.just(s), odd), max_size=3)):
            if obj is s:
                continue
            try:
                p.register(obj, data.draw(st.one_of(st.integers(0, 0xffff), ints)))
            except lkl.KernelError:  # an OSError, but never while the kernel runs
                raise
            except ALLOWED:
                pass
        try:
            p.poll(data.draw(st.one_of(st.integers(-1, 5), st.floats(0, 5), odd)))
        except lkl.KernelError:  # an OSError, but never while the kernel runs
            raise
        except ALLOWED:
            pass
    finally:
        s.close()


@SETTINGS
@given(name=st.one_of(st.text(max_size=30), odd), path=st.one_of(st.text(max_size=30), odd))
def test_fuzz_kernel_helpers(kernel, name, path):
    for call in (lambda: kernel.sysctl(name), lambda: kernel.read_text(path),
                 lambda: kernel.listdir(path), lambda: kernel.read_bytes(path)):
        try:
            call()
        except lkl.KernelError:  # an OSError, but never while the kernel runs
            raise
        except ALLOWED:
            pass

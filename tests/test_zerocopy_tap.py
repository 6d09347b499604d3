"""MSG_ZEROCOPY LKL->host over a TAP (issue 16): really not copied.

From Kernel.alloc_buffer the kernel references the buffer's pages and
virtio-net hands them to the TAP's writev: completions arrive without
SO_EE_CODE_ZEROCOPY_COPIED.  From host memory the same sends complete
as COPIED.  The receiver (the host stack, in the namespace the test
makes and deletes; 10.200.40.0/24 only) hashes what it got; the sender
overwrites its buffer after the completions, which must not change what
was sent.
"""

from __future__ import annotations

import hashlib
import os
import textwrap

import pytest

from harness.netns import Netns
from harness.sink import with_sink

PORT = 5410
CHUNK = 64 * 1024
NCHUNKS = 64                                  # 4 MiB, every chunk its own bytes

CLIENT = textwrap.dedent(f"""
    import hashlib, random, sys, lkl
    from lkl import zerocopy
    source = sys.argv[1]
    nic = lkl.Nic(lkl.Tap("zc0"), offload=lkl.Offload.LARGE_SEGMENTS)
    k = lkl.boot(nics=[nic])
    nic.up(); nic.add_address("10.200.40.2/24")
    data = random.Random(16).randbytes({CHUNK * NCHUNKS})
    buf = k.alloc_buffer(len(data)) if source == "kernel" else bytearray(len(data))
    view = memoryview(buf)
    view[:] = data
    s = k.socket(); s.settimeout(30)
    s.connect(("10.200.40.1", {PORT}))
    zerocopy.enable(s)
    sends = 0
    for off in range(0, len(data), {CHUNK}):
        done = 0
        while done < {CHUNK}:
            done += s.send(view[off + done:off + {CHUNK}], lkl.MSG_ZEROCOPY)
            sends += 1
    s.shutdown(1)
    reply = b""
    while part := s.recv(128):
        reply += part
    got = zerocopy.wait_completions(s, sends, 20)
    view[:] = bytes(len(data))               # after the completions
    ids = [i for c in got for i in range(c.first, c.last + 1)]
    assert ids == list(range(sends)), (ids[:5], sends)
    copied = sum(len(c) for c in got if c.copied)
    n, digest = reply.decode().split()
    print(sends, copied, n, digest, hashlib.sha256(data).hexdigest())
    view.release()
    if source == "kernel":
        buf.close()
    k.halt()
""")


@pytest.mark.skipif(os.geteuid() != 0, reason="namespaces and TAP devices need root")
@pytest.mark.parametrize("source", ["kernel", "heap"])
def test_zerocopy_send_over_tap(source: str) -> None:
    with Netns("lklzc", source) as ns:
        ns.add_tap("zc0", "10.200.40.1/24")
        out = with_sink(ns, "10.200.40.1", PORT, ns, CLIENT, source)
    sends, copied, received, digest, expected = out.split()[-5:]
    assert int(received) == CHUNK * NCHUNKS
    assert digest == expected                 # both ends hash the same bytes
    if source == "kernel":
        assert int(copied) == 0, (sends, copied)   # the pages themselves were sent
    else:
        assert int(copied) == int(sends)
    assert hashlib.sha256(b"").hexdigest() != digest

"""A child process for the attach tests: a kernel serving a control socket.

argv: the control name.  It boots a kernel with a NIC on an lkl.Pipe,
holds an established TCP connection over its loopback, prints "READY",
then answers one JSON command per stdin line with one JSON line:
["sysctl", name], ["snmp", group, counter], ["connections"],
["features"], ["rtt"] (median TCP round trip over lo, ms),
["stats"] (control server counters), ["fds"] (host fds of this process), ["kfds"] (the kernel's),
["traffic", n] (n echo round trips over lo), ["udp", n] (n datagrams
out of eth0), ["exit"].
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time

import lkl
from lkl import control

name = sys.argv[1]
a, b = lkl.Pipe.pair()
nic = lkl.Nic(a, offload=lkl.Offload.CHECKSUM)
k = lkl.boot(memory="96M", nics=[nic], control=name)
nic.up()
nic.add_address("10.209.0.1/24")
k.add_neighbor("10.209.0.2", "02:00:00:00:00:02", nic)
udp = k.socket(lkl.AF_INET, lkl.SOCK_DGRAM)

srv = k.socket()
srv.bind(("127.0.0.1", 7001))
srv.listen()
cli = k.socket()
cli.settimeout(10)
cli.connect(("127.0.0.1", 7001))
conn, _ = srv.accept()  # the echo side blocks for as long as the agent lives


def echo() -> None:
    try:
        while data := conn.recv(4096):
            conn.sendall(data)
    except OSError:
        pass


threading.Thread(target=echo, daemon=True).start()


def round_trip() -> float:
    t0 = time.perf_counter()
    cli.sendall(b"x")
    assert cli.recv(1) == b"x"
    return (time.perf_counter() - t0) * 1000


for _ in range(20):
    round_trip()
print("READY", flush=True)

for line in sys.stdin:
    cmd = json.loads(line)
    out: object = None
    if cmd[0] == "sysctl":
        out = k.sysctl(cmd[1])
    elif cmd[0] == "snmp":
        out = k.snmp()[cmd[1]][cmd[2]]
    elif cmd[0] == "connections":
        out = [dict(state=c.state, local=c.local, remote=c.remote, rtt_us=c.rtt_us,
                    cwnd=c.cwnd, proto=c.proto) for c in k.connections()]
    elif cmd[0] == "features":
        out = [nic.name, int(nic.features_negotiated)]
    elif cmd[0] == "rtt":
        out = statistics.median(round_trip() for _ in range(9))
    elif cmd[0] == "stats":
        out = control.server_stats()
    elif cmd[0] == "fds":
        out = len(os.listdir("/proc/self/fd"))
    elif cmd[0] == "ifnames":
        out = sorted(k.listdir("/sys/class/net"))
    elif cmd[0] == "udp":
        for _ in range(cmd[1]):
            udp.sendto(b"u" * 200, ("10.209.0.2", 9))
        out = cmd[1]
    elif cmd[0] == "kfds":
        out = len(k.listdir("/proc/self/fd"))
    elif cmd[0] == "traffic":
        out = [round_trip() for _ in range(cmd[1])][-1]
    elif cmd[0] == "exit":
        break
    print(json.dumps(out), flush=True)

cli.close()
conn.close()
k.halt()

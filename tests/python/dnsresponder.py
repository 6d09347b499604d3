"""A tiny authoritative DNS responder for the resolver tests (dnspython).

It answers from a dict on any socket pair with the stdlib's socket
methods (host sockets inside a test's namespace, or lkl sockets), over UDP
and TCP.  Names listed in ``truncate`` get a TC answer over UDP (the full
one over TCP); ``servfail`` names get SERVFAIL; ``silent`` names no
answer at all.  It counts what it served, and stops when told.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

POLL = 0.2  # seconds a serving loop waits before it checks for the stop


class Responder:
    def __init__(self, records: dict[tuple[str, str], list[str]],
                 truncate: tuple[str, ...] = (), servfail: tuple[str, ...] = (),
                 silent: tuple[str, ...] = ()) -> None:
        # {("www.corp.test.", "A"): ["10.1.2.3"], ("alias.corp.test.", "CNAME"): [...]}
        self.records = {(n.lower(), t): v for (n, t), v in records.items()}
        self.truncate = {n.lower() for n in truncate}
        self.servfail = {n.lower() for n in servfail}
        self.silent = {n.lower() for n in silent}
        self.stop = threading.Event()
        self.served: Counter[str] = Counter()
        self.threads: list[threading.Thread] = []

    def answer(self, wire: bytes, over_tcp: bool) -> bytes | None:
        query = dns.message.from_wire(wire)
        q = query.question[0]
        name = q.name.to_text().lower()
        rdtype = dns.rdatatype.to_text(q.rdtype)
        self.served[("tcp " if over_tcp else "udp ") + rdtype + " " + name] += 1
        if name in self.silent:
            return None
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.AA
        if name in self.servfail:
            reply.set_rcode(dns.rcode.SERVFAIL)
            return reply.to_wire()
        if name in self.truncate and not over_tcp:
            reply.flags |= dns.flags.TC
            return reply.to_wire()
        owner, found = name, False
        for _hop in range(8):
            cname = self.records.get((owner, "CNAME"))
            if cname:
                reply.answer.append(dns.rrset.from_text(owner, 60, "IN", "CNAME", *cname))
                owner, found = cname[0].lower(), True
                continue
            values = self.records.get((owner, rdtype))
            if values:
                reply.answer.append(dns.rrset.from_text(owner, 60, "IN", rdtype, *values))
            found = found or any(n == owner for n, _t in self.records)
            break
        if not found:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        return reply.to_wire()

    def _udp(self, sock: Any) -> None:
        sock.settimeout(POLL)
        while not self.stop.is_set():
            try:
                wire, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            out = self.answer(wire, over_tcp=False)
            if out is not None:
                sock.sendto(out, peer)

    def _tcp(self, listener: Any) -> None:
        listener.settimeout(POLL)
        while not self.stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                head = conn.recv(2)
                size = int.from_bytes(head, "big")
                wire = b""
                while len(wire) < size:
                    chunk = conn.recv(size - len(wire))
                    if not chunk:
                        break
                    wire += chunk
                out = self.answer(wire, over_tcp=True)
                if out is not None:
                    conn.sendall(len(out).to_bytes(2, "big") + out)

    def serve(self, udp: Any, tcp: Any) -> Responder:
        """Serve on a bound UDP socket and a listening TCP socket (threads)."""
        for target, sock in ((self._udp, udp), (self._tcp, tcp)):
            t = threading.Thread(target=target, args=(sock,), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(5)

"""The proxy: guests accepted by the lkl kernel, relayed to host backends.

:class:`Proxy` boots the kernel (the shared options), listens on the
kernel's addresses, opens the stats endpoint, confines itself
(:mod:`lkl.proxy.sandbox`), then accepts.  Each accepted connection gets
a thread that admits it (:mod:`lkl.proxy.limits`), terminates TLS if
asked, connects to the next backend (round robin; the others on failure),
sends the PROXY header and relays (:mod:`lkl.proxy.relay`).

Signals: SIGTERM/SIGINT drain (the listeners close at once, open
connections may go on for ``drain_timeout``, then are reset), SIGHUP
reloads the backends from the config file.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import socket
import ssl
import sys
import threading
import time
from typing import Any

import lkl
import lkl.ssl
from lkl.cli import options as kopts
from lkl.proxy import relay as _relay
from lkl.proxy.config import Address, ProxyConfig, _as_list, _parse_file, parse_hostport
from lkl.proxy.limits import Limits
from lkl.proxy.stats import ConnectionInfo, Counters, StatsServer

__all__ = ["Proxy", "TEST_HOOKS_ENV"]

log = logging.getLogger("lkl.proxy")

# Set to 1 to get the stats endpoint's /test/escape: after the sandbox is
# up, try what it must refuse (execve, open, a host listener) and report.
TEST_HOOKS_ENV = "LKL_PROXY_TEST_HOOKS"
THREAD_STACK = 512 * 1024
_IP_FREEBIND = 15          # linux/in.h (not among lkl's exported constants)
# The kernel's TcpExt counters that tell of hostile guests.
_TCP_EXT = ("SyncookiesSent", "SyncookiesRecv", "SyncookiesFailed", "ListenOverflows",
            "ListenDrops", "TCPReqQFullDoCookies", "TCPReqQFullDrop", "TCPAbortOnTimeout",
            "TCPAbortOnData", "TCPAbortOnClose", "TCPTimeouts", "TCPAbortOnMemory")


def _event(event: str, **fields: Any) -> None:
    """A structured log line (JSON) on the proxy's logger."""
    log.info(json.dumps({"event": event, **fields}, separators=(",", ":")))


def _fmt(addr: tuple[Any, ...]) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


class Proxy:
    """One proxy process: its kernel, listeners, connections and counters."""

    def __init__(self, cfg: ProxyConfig) -> None:
        self.cfg = cfg
        self.counters = Counters()
        self.limits = Limits(cfg.max_connections, cfg.max_per_source)
        self.kernel: Any = None
        self.listeners: list[Any] = []
        self.stats: StatsServer | None = None
        self.tls: ssl.SSLContext | None = None
        self.caps: dict[str, int] | None = None
        self._backends = list(cfg.backends)
        self._rr = itertools.count()
        self._lock = threading.Lock()
        self._draining = threading.Event()
        self._stopped = threading.Event()
        self._ids = itertools.count(1)
        self._stoppers: dict[int, Any] = {}
        self._threads: list[threading.Thread] = []
        self.sandboxed = False
        self._config_fd: int | None = None

    # ---- set-up ------------------------------------------------------------

    def start(self) -> None:
        """Boot, listen, open the stats endpoint, confine, start accepting."""
        cfg = self.cfg
        threading.stack_size(THREAD_STACK)
        if cfg.tls_cert:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(cfg.tls_cert, cfg.tls_key)
        if cfg.config_path:
            # SIGHUP re-reads the file through this fd: the sandbox opens no files.
            self._config_fd = os.open(cfg.config_path, os.O_RDONLY | os.O_CLOEXEC)
        self.kernel = _boot(cfg.kernel, os.environ.get("LKL_PROXY_MAC"))
        try:
            for host, port in cfg.listen:
                family = lkl.AF_INET6 if ":" in host else lkl.AF_INET
                sock = self.kernel.socket(family, lkl.SOCK_STREAM)
                sock.setsockopt(lkl.SOL_SOCKET, lkl.SO_REUSEADDR, 1)
                # An IPv6 address is still tentative (DAD) right after boot.
                sock.setsockopt(lkl.IPPROTO_IP, _IP_FREEBIND, 1)
                sock.bind((host, port))
                sock.listen(cfg.backlog)
                sock.settimeout(0.5)
                self.listeners.append(sock)
            if cfg.stats:
                commands = {}
                if os.environ.get(TEST_HOOKS_ENV) == "1":
                    commands["/test/escape"] = self._test_escape
                self.stats = StatsServer(cfg.stats, self.report, commands)
            if cfg.sandbox:
                from lkl.proxy import sandbox

                self.caps = sandbox.confine(cfg.user)
                self.sandboxed = True
        except BaseException:
            self.kernel.halt()
            raise
        if self.stats:
            self.stats.start()
        for sock in self.listeners:
            t = threading.Thread(target=self._accept_loop, args=(sock,),
                                 name="lkl-proxy-accept", daemon=True)
            t.start()
            self._threads.append(t)
        if cfg.stats_interval > 0:
            threading.Thread(target=self._log_stats, name="lkl-proxy-log", daemon=True).start()
        _event("listening", listen=[_fmt(a) for a in cfg.listen],
               backends=[_fmt(b) for b in self._backends], tls=self.tls is not None,
               sandbox=self.sandboxed, stats=str(self.stats.address) if self.stats else None)

    # ---- accepting -------------------------------------------------------

    def _accept_loop(self, listener: Any) -> None:
        local = listener.getsockname()
        while not self._draining.is_set():
            try:
                sock, addr = listener.accept()
            except TimeoutError:
                continue
            except OSError as e:
                if self._draining.is_set():
                    break
                log.warning("accept on %s: %s", _fmt(local), e)
                time.sleep(0.05)   # e.g. EMFILE: do not spin
                continue
            source = addr[0]
            why = self.limits.acquire(source)
            if why is not None:
                self.counters.add(f"refused_{why}")
                _event("refused", guest=_fmt(addr), reason=why)
                _relay.abort(sock)
                continue
            self.counters.add("accepted")
            ident = next(self._ids)
            t = threading.Thread(target=self._serve, args=(ident, sock, addr, local),
                                 name=f"lkl-proxy-{ident}", daemon=True)
            try:
                t.start()
            except RuntimeError:      # no thread to be had: refuse this one
                self.limits.release(source)
                _relay.abort(sock)

    def _next_backends(self) -> list[Address]:
        with self._lock:
            backends = list(self._backends)
        start = next(self._rr) % len(backends)
        return backends[start:] + backends[:start]

    def _connect_backend(self) -> tuple[socket.socket, Address] | None:
        for host, port in self._next_backends():
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(self.cfg.connect_timeout)
            try:
                sock.connect((host, port))
            except OSError as e:
                sock.close()
                self.counters.add("backend_errors")
                _event("backend_error", backend=_fmt((host, port)), error=str(e))
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock, (host, port)
        return None

    def _serve(self, ident: int, guest: Any, addr: tuple[Any, ...],
               local: tuple[Any, ...]) -> None:
        info = ConnectionInfo(ident, _fmt(addr), _fmt(local))
        self.counters.opened(info)
        try:
            self._serve_one(ident, guest, addr, local, info)
        except Exception as e:       # a bug must not take the proxy down
            log.exception("connection %d from %s: %s", ident, info.guest, e)
            _relay.abort(guest)
        finally:
            with self._lock:
                self._stoppers.pop(ident, None)
            self.counters.closed(ident)
            self.counters.add("closed")
            self.limits.release(addr[0])

    def _serve_one(self, ident: int, guest: Any, addr: tuple[Any, ...],
                   local: tuple[Any, ...], info: ConnectionInfo) -> None:
        if self.tls is not None:
            guest.settimeout(self.cfg.connect_timeout)
            try:
                guest = lkl.ssl.wrap_socket(self.tls, guest, server_side=True)
            except (OSError, ssl.SSLError) as e:
                self.counters.add("tls_failures")
                _event("tls_failure", id=ident, guest=info.guest, error=str(e))
                _relay.abort(guest)
                return
            self.counters.add("tls_handshakes")
        connected = self._connect_backend()
        if connected is None:
            _event("no_backend", id=ident, guest=info.guest)
            _relay.abort(guest)
            return
        backend, where = connected
        info.backend = _fmt(where)
        if self.cfg.proxy_protocol:
            try:
                backend.sendall(_relay.proxy_header(self.cfg.proxy_protocol, addr, local))
            except OSError:
                self.counters.add("backend_errors")
                _relay.abort(backend)
                _relay.abort(guest)
                return
        _event("open", id=ident, guest=info.guest, backend=info.backend)

        def register(bytes_fn: Any, stop_fn: Any) -> None:
            info.bytes = bytes_fn
            with self._lock:
                self._stoppers[ident] = stop_fn
            if self._stopped.is_set():
                stop_fn()

        out = _relay.relay(guest, backend, self.cfg.idle_timeout, register)
        self.counters.add("bytes_up", out.bytes_up)
        self.counters.add("bytes_down", out.bytes_down)
        who = out.reset_by
        name = {"guest": "resets_from_guest", "backend": "resets_from_backend",
                "idle": "idle_timeouts", "stopped": "drain_aborts"}.get(who or "")
        if name:
            self.counters.add(name)
        _event("close", id=ident, guest=info.guest, backend=info.backend,
               bytes_up=out.bytes_up, bytes_down=out.bytes_down, reset=who,
               ends={k: v[0] for k, v in out.ends.items()})

    # ---- control ---------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """The counters, limits and the kernel's TCP counters (JSON-able)."""
        data = self.counters.snapshot()
        data["limits"] = {"max_connections": self.limits.total,
                          "max_per_source": self.limits.per_source,
                          "sources": self.limits.sources()}
        data["draining"] = self._draining.is_set()
        data["sandboxed"] = self.sandboxed
        data["capabilities"] = self.caps
        with self._lock:
            data["backends"] = [_fmt(b) for b in self._backends]
        try:
            snmp = self.kernel.snmp()
            data["kernel_tcp"] = snmp.get("Tcp", {})
            ext = snmp.get("TcpExt", {})
            data["kernel_tcp_ext"] = {k: ext[k] for k in _TCP_EXT if k in ext}
        except Exception as e:   # a halted kernel
            data["kernel_tcp"] = {"error": str(e)}
        return data

    def reload(self) -> None:
        """Read the backends again from the config file (SIGHUP)."""
        if self._config_fd is None or not self.cfg.config_path:
            log.warning("SIGHUP: no config file to reload backends from")
            return
        try:
            if os.fstat(self._config_fd).st_nlink == 0:
                raise kopts.OptionsError("the config file was replaced, not edited in place "
                                         "(the sandboxed proxy reads it through the fd it "
                                         "opened at start)")
            _, table = _parse_file(self.cfg.config_path, _read_fd(self._config_fd))
            backends = [parse_hostport(t, "backend")
                        for t in _as_list(table.get("backend", []), "backend")]
            if not backends:
                raise kopts.OptionsError("no backend in the config file")
        except (kopts.OptionsError, OSError) as e:
            _event("reload_failed", error=str(e))
            return
        with self._lock:
            self._backends = backends
        _event("reloaded", backends=[_fmt(b) for b in backends])

    def drain(self) -> None:
        """Stop accepting; open connections go on (see :meth:`wait`)."""
        if self._draining.is_set():
            return
        self._draining.set()
        for t in self._threads:
            t.join(2)
        for sock in self.listeners:
            sock.close()
        _event("draining", open=self.limits.open, deadline=self.cfg.drain_timeout)

    def wait_drained(self, timeout: float) -> bool:
        """Wait until no connection is open (True) or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        while self.limits.open and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.limits.open == 0

    def stop_all(self) -> None:
        """Reset every open connection (the drain deadline passed)."""
        self._stopped.set()
        with self._lock:
            stoppers = list(self._stoppers.values())
        for stop in stoppers:
            stop()

    def close(self) -> None:
        """After the drain: stats endpoint and kernel go."""
        if self.stats:
            self.stats.close()
        self.kernel.halt()

    def _log_stats(self) -> None:
        while not self._draining.wait(self.cfg.stats_interval):
            _event("stats", **{k: v for k, v in self.report().items()
                               if k in ("totals", "open", "kernel_tcp")})

    def _test_escape(self) -> dict[str, Any]:
        """What the sandbox must refuse, tried for real (test hook)."""
        results: dict[str, Any] = {}

        def attempt(name: str, fn: Any) -> None:
            try:
                fn()
                results[name] = "allowed"
            except OSError as e:
                results[name] = e.errno

        attempt("open_read", lambda: open("/etc/hostname", "rb").close())
        attempt("open_write", lambda: os.close(os.open(f"/tmp/lkl-proxy-escape-{os.getpid()}",
                                                       os.O_WRONLY | os.O_CREAT, 0o600)))

        def host_listen() -> None:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", 0))
                s.listen()
            finally:
                s.close()
        attempt("host_listen", host_listen)
        attempt("unix_socket", lambda: socket.socket(socket.AF_UNIX).close())
        attempt("fork", lambda: os._exit(0) if os.fork() == 0 else None)
        # Last: if the sandbox let it through, the proxy becomes /bin/true.
        attempt("execve", lambda: os.execv("/bin/true", ["true"]))
        return results


def _boot(opts: kopts.KernelOptions, mac: str | None) -> Any:
    """kopts.boot_kernel, with every NIC on ``mac`` if given (the workers share one)."""
    return kopts.boot_kernel(opts, mac=mac)


def _read_fd(fd: int) -> bytes:
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 65536, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def serve(cfg: ProxyConfig) -> int:
    """Run the proxy until SIGTERM/SIGINT and its drain; the exit code."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s lkl-proxy %(message)s")
    proxy = Proxy(cfg)
    proxy.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: proxy.reload())
    print(json.dumps({"event": "ready", "pid": os.getpid()}), flush=True)
    while not stop.wait(0.5):
        pass
    proxy.drain()
    if not proxy.wait_drained(cfg.drain_timeout):
        proxy.stop_all()
        proxy.wait_drained(2.0)
    _event("stopped", totals=proxy.counters.snapshot()["totals"])
    proxy.close()
    return 0

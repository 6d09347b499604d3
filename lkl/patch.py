"""Installing the lkl kernel under the standard library: ``lkl.patch()``.

``lkl.patch(kernel=None)`` replaces, for this process, the standard
library's socket names with ``lkl.socket``'s (one table, ``PATCHES``), so
that every AF_INET, AF_INET6, AF_PACKET and AF_NETLINK socket the stdlib or
a third-party library makes is a socket of the running lkl kernel; AF_UNIX
and ``socketpair`` stay on the host.  Modules that did ``import socket``
see the new attributes; names bound with ``from socket import ...`` in
modules already imported are found and replaced too, and put back on
undo (so are those bound while the patch was on).  ``ssl.SSLContext.
wrap_socket`` sends lkl sockets to ``lkl.ssl.wrap_socket`` (TLS over the
kernel socket) and host sockets to the stdlib.

Patching is idempotent and reversible (gevent's monkey patching is the
model): ``patch()`` while patched returns a handle on the same patch, the
originals are kept (``get_original``), and the last handle's ``undo()``
(or leaving ``with lkl.patched():``) restores every name.
"""

from __future__ import annotations

import importlib
import sys
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from lkl import _kernel

__all__ = ["PATCHES", "PatchHandle", "patch", "patched", "get_original", "is_patched"]


@dataclass(frozen=True)
class Patch:
    """One replaced name.

    ``owner`` is a module name, or "module:Class"; ``replacement`` names
    the object (in ``lkl.socket`` or this module) that takes its place.
    """

    owner: str
    name: str
    replacement: str


#: Everything lkl.patch() replaces.
PATCHES: tuple[Patch, ...] = (
    Patch("socket", "socket", "lkl.socket:socket"),
    Patch("socket", "create_connection", "lkl.socket:create_connection"),
    Patch("socket", "create_server", "lkl.socket:create_server"),
    Patch("socket", "fromfd", "lkl.socket:fromfd"),
    Patch("socket", "close", "lkl.socket:close"),
    Patch("socket", "getaddrinfo", "lkl.socket:getaddrinfo"),
    Patch("socket", "gethostbyname", "lkl.socket:gethostbyname"),
    Patch("socket", "gethostbyname_ex", "lkl.socket:gethostbyname_ex"),
    Patch("socket", "gethostbyaddr", "lkl.socket:gethostbyaddr"),
    Patch("socket", "getnameinfo", "lkl.socket:getnameinfo"),
    Patch("socket", "gethostname", "lkl.socket:gethostname"),
    Patch("socket", "sethostname", "lkl.socket:sethostname"),
    Patch("ssl:SSLContext", "wrap_socket", "lkl.patch:_wrap_socket"),
)

# Modules whose names are never rebound by the walk: ours and the originals.
_SKIP_PREFIXES = ("lkl.", "_socket")
_SKIP = {"lkl", "socket", "_socket"}

_lock = threading.RLock()
_state: _State | None = None


class _State:
    """The patch while it is on: what was replaced and by what."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.handles = 0
        # (owner object, name, original, replacement), in patch order.
        self.done: list[tuple[Any, str, Any, Any]] = []
        self.originals: dict[tuple[str, str], Any] = {}
        # The modules imported before the patch: on undo, only the others
        # (imported while it was on) have bound names rebound.
        self.modules_before = set(sys.modules)


def _resolve(path: str) -> Any:
    """"module:attr.attr" or "module" → the object."""
    module_name, _, attrs = path.partition(":")
    __import__(module_name)
    obj: Any = sys.modules[module_name]
    for attr in filter(None, attrs.split(".")):
        obj = getattr(obj, attr)
    return obj


def _original_wrap_socket() -> Any:
    assert _state is not None
    return _state.originals[("ssl:SSLContext", "wrap_socket")]


def _wrap_socket(self: Any, sock: Any, *args: Any, **kwargs: Any) -> Any:
    """ssl.SSLContext.wrap_socket under the patch.

    An lkl socket goes to lkl.ssl.wrap_socket (TLS over the kernel socket),
    any other to the stdlib.
    """
    state = _state
    original = (state.originals[("ssl:SSLContext", "wrap_socket")] if state is not None
                else _resolve("ssl:SSLContext").wrap_socket)
    if not hasattr(sock, "kfd"):
        return original(self, sock, *args, **kwargs)
    lkl_ssl = _lkl_ssl()
    if lkl_ssl is None:
        raise NotImplementedError(
            "TLS on an lkl socket needs lkl.ssl, which this installation lacks "
            "(the stdlib's SSLSocket would do its I/O on the host readiness fd)")
    return lkl_ssl.wrap_socket(self, sock, *args, **kwargs)


def _aliases(originals: dict[int, tuple[Any, Any]],
             skip: set[str] | frozenset[str] = frozenset()
             ) -> list[tuple[ModuleType, str, Any, Any]]:
    """Module attributes that are one of ``originals``.

    ``originals`` maps id → (original, replacement); the result lists
    (module, name, original, replacement), in modules other than ours and
    ``skip``.
    """
    found = []
    for mod_name, module in list(sys.modules.items()):
        if (module is None or mod_name in skip or mod_name in _SKIP
                or mod_name.startswith(_SKIP_PREFIXES) or not isinstance(module, ModuleType)):
            continue
        try:
            names = list(vars(module).items())
        except TypeError:
            continue
        for name, value in names:
            hit = originals.get(id(value))
            if hit is not None and hit[0] is value:
                found.append((module, name, hit[0], hit[1]))
    return found


def _install(state: _State) -> None:
    by_id: dict[int, tuple[Any, Any]] = {}
    # Import every owner first: a module imported after socket.socket is
    # replaced would subclass lkl's class (ssl.SSLSocket must not).
    owners = [_resolve(p.owner) for p in PATCHES]
    for p, owner in zip(PATCHES, owners, strict=True):
        original = owner.__dict__[p.name] if isinstance(owner, type) else getattr(owner, p.name)
        replacement = _resolve(p.replacement)
        state.originals[(p.owner, p.name)] = original
        setattr(owner, p.name, replacement)
        state.done.append((owner, p.name, original, replacement))
        if p.owner == "socket":
            by_id[id(original)] = (original, replacement)
    for module, name, original, replacement in _aliases(by_id):
        setattr(module, name, replacement)
        state.done.append((module, name, original, replacement))
    hooks = _lkl_ssl()
    if hooks is not None and hasattr(hooks, "install"):
        hooks.install(state.kernel)


def _uninstall(state: _State) -> None:
    hooks = _lkl_ssl()
    if hooks is not None and hasattr(hooks, "uninstall"):
        hooks.uninstall()
    for owner, name, original, _replacement in reversed(state.done):
        setattr(owner, name, original)
    # Names bound from the patched modules while the patch was on.
    by_id = {id(r): (r, o) for _owner, _name, o, r in state.done}
    for module, name, _replacement, original in _aliases(by_id, state.modules_before):
        setattr(module, name, original)


def _lkl_ssl() -> Any:
    try:
        # By sys.modules (import_module), not the package attribute, which a
        # replaced lkl.ssl module would not update.
        return importlib.import_module("lkl.ssl")
    except ImportError:
        return None


class PatchHandle:
    """A hold on the patch.

    ``undo()`` (or leaving its ``with`` block) releases it; the last
    release restores the standard library.
    """

    def __init__(self, state: _State) -> None:
        self._state: _State | None = state
        self.kernel = state.kernel

    @property
    def active(self) -> bool:
        """True until this handle's undo()."""
        return self._state is not None

    def undo(self) -> None:
        """Release this hold (idempotent); the last one restores every replaced name."""
        global _state
        with _lock:
            state, self._state = self._state, None
            if state is None:
                return
            state.handles -= 1
            if state.handles == 0 and _state is state:
                _state = None
                _uninstall(state)

    def __enter__(self) -> PatchHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.undo()

    def __repr__(self) -> str:
        return f"<lkl.PatchHandle {'active' if self.active else 'undone'} {self.kernel!r}>"


def patch(kernel: Any = None) -> PatchHandle:
    """Install the running kernel under the standard library.

    ``kernel`` (default: the running one) must be the running kernel; see
    the module docstring.  Returns a handle whose ``undo()`` restores the
    stdlib.  lkl.KernelError if no kernel runs.
    """
    global _state
    running = _kernel.kernel()
    if kernel is None:
        kernel = running
    if kernel is None or kernel.halted or running is not kernel:
        raise _kernel.KernelError(
            "lkl.patch() needs a running kernel: lkl.boot() first"
            if kernel is None else f"lkl.patch(): {kernel!r} is not the running kernel")
    with _lock:
        if _state is not None and _state.kernel is not kernel:
            raise _kernel.KernelError("lkl.patch(): another kernel is patched in")
        if _state is None:
            state = _State(kernel)
            try:
                _install(state)
            except BaseException:
                _uninstall(state)
                raise
            _state = state
        _state.handles += 1
        return PatchHandle(_state)


def patched(kernel: Any = None) -> PatchHandle:
    """``with lkl.patched(kernel):`` — patch() for the block."""
    return patch(kernel)


def is_patched(module: ModuleType | str | None = None, name: str | None = None) -> bool:
    """Whether the patch is on.

    With ``module`` (and ``name``): whether that module (that name of it)
    is currently replaced.
    """
    state = _state
    if state is None:
        return False
    if module is None:
        return True
    mod = sys.modules.get(module) if isinstance(module, str) else module
    return any(owner is mod and (name is None or n == name) for owner, n, _o, _r in state.done)


def get_original(module: ModuleType | str, name: str) -> Any:
    """The object ``module.name`` had before the patch (its current value when not patched).

    ``module`` may be "ssl:SSLContext" for a class.
    """
    state = _state
    mod = _resolve(module) if isinstance(module, str) else module
    if state is not None:
        for owner, n, original, _r in state.done:
            if owner is mod and n == name:
                return original
    if isinstance(mod, type):
        return mod.__dict__[name]
    return getattr(mod, name)


class _CallableModule(ModuleType):
    """The type of lkl.patch: calling the module calls patch().

    ``lkl.patch.get_original`` and the rest stay module attributes.
    """

    def __call__(self, kernel: Any = None) -> PatchHandle:
        return patch(kernel)


sys.modules[__name__].__class__ = _CallableModule

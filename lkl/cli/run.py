"""``python -m lkl run [options] script.py | -m module | -c code [args...]``.

Boots a kernel (the shared options), patches the standard library onto it
(``lkl.patch``), and runs the program as ``python script.py`` would: its
``sys.argv``, as ``__main__``, its exit code and ``SystemExit``, its
tracebacks without ours.  The kernel halts at exit, after the program's
non-daemon threads have ended (the interpreter's own order: threads, then
atexit).
"""

from __future__ import annotations

import argparse
import importlib
import os
import runpy
import signal
import sys
import types
from typing import Any

from lkl.cli import options

HELP = "run a Python program on the lkl kernel's network stack"
USAGE = ("python -m lkl run [options] (script.py | -m module | -c code) [args ...]")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """The ``run`` subcommand's parser."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "run", help=HELP, usage=USAGE, description=HELP + ": boot a kernel, patch the "
        "standard library's socket, name resolution and TLS onto it (lkl.patch), run the "
        "program as python would, halt at exit.",
        epilog="Everything after the script, -m module or -c code goes to the program.")
    options.add_kernel_options(p)
    p.add_argument("--no-patch", action="store_true",
                   help="boot the kernel but leave the standard library alone (the program "
                   "uses lkl.kernel() itself)")
    return p


def split_program(parser: argparse.ArgumentParser, argv: list[str]
                  ) -> tuple[list[str], tuple[str, str] | None, list[str]]:
    """Cut ``argv`` into our options, the program (kind, target), its args."""
    takes_value = {s for a in parser._actions if a.nargs != 0 for s in a.option_strings}
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in ("-m", "-c"):
            if i + 1 >= len(argv):
                parser.error(f"argument {token}: expected one argument")
            kind = "module" if token == "-m" else "code"
            return argv[:i], (kind, argv[i + 1]), argv[i + 2:]
        if token == "--":
            if i + 1 >= len(argv):
                break
            return argv[:i], ("script", argv[i + 1]), argv[i + 2:]
        if token.startswith("-") and token != "-":
            if token in takes_value:
                i += 1
            i += 1
            continue
        return argv[:i], ("script", token), argv[i + 1:]
    return argv, None, []


def _patch(kernel: Any) -> Any:
    """lkl.patch(kernel), imported only now (it is issue 11's other half)."""
    import lkl

    patch = getattr(lkl, "patch", None)
    if patch is None:
        try:
            patch = importlib.import_module("lkl.patch")
        except ModuleNotFoundError as e:
            if e.name != "lkl.patch":
                raise
            raise options.OptionsError(
                "this build of lkl has no lkl.patch (the standard library cannot be "
                "moved onto the kernel yet): use --no-patch") from None
    if not callable(patch):   # the module, where it is not callable itself
        patch = patch.patch
    return patch(kernel)


def _trimmed(tb: types.TracebackType | None) -> types.TracebackType | None:
    """The traceback from the program's first frame on (ours and runpy's cut)."""
    ours = {os.path.abspath(__file__), os.path.abspath(runpy.__file__)}
    while tb is not None and (os.path.abspath(tb.tb_frame.f_code.co_filename) in ours
                              or tb.tb_frame.f_code.co_filename.startswith("<frozen runpy")):
        tb = tb.tb_next
    return tb


def _show(e: BaseException) -> None:
    """Print ``e`` as python would for the program (sys.excepthook)."""
    tb = _trimmed(e.__traceback__)
    e.__traceback__ = tb   # the default hook prints the exception's own
    sys.excepthook(type(e), e, tb)


def _execute(kind: str, target: str, args: list[str]) -> None:
    if kind == "script":
        sys.argv = [target, *args]
        sys.path[0] = os.path.dirname(os.path.abspath(target))
        runpy.run_path(target, run_name="__main__")
    elif kind == "module":
        sys.argv = [target, *args]
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        sys.argv = ["-c", *args]
        main = types.ModuleType("__main__")
        main.__builtins__ = __builtins__  # type: ignore[attr-defined]
        saved = sys.modules.get("__main__")
        sys.modules["__main__"] = main
        try:
            exec(compile(target, "<string>", "exec"), main.__dict__)
        finally:
            if saved is not None:
                sys.modules["__main__"] = saved


def run(args: argparse.Namespace, program: tuple[str, str], program_args: list[str]) -> int:
    """Boot, patch, run, and return the exit code (SystemExit passes through)."""
    opts = options.kernel_options(args)
    kind, target = program
    if kind == "script" and not os.path.exists(target):
        print(f"{sys.executable}: can't open file {os.path.abspath(target)!r}: "
              f"[Errno 2] No such file or directory", file=sys.stderr)
        return 2
    if kind == "module":
        import importlib.util

        try:
            found = importlib.util.find_spec(target) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            print(f"{sys.executable}: No module named {target}", file=sys.stderr)
            return 1
    try:
        kernel = options.boot_kernel(opts)
    except OSError as e:   # a device that cannot be opened, a kernel that cannot boot
        print(f"python -m lkl run: cannot boot the kernel: {e}", file=sys.stderr)
        return 1
    if not args.no_patch:
        try:
            _patch(kernel)
        except BaseException:
            kernel.halt()
            raise
    try:
        _execute(kind, target, program_args)
    except SystemExit:
        raise
    except KeyboardInterrupt as e:
        _show(e)
        sys.stderr.flush()
        kernel.halt()
        # As python does: die of SIGINT, so the parent sees it.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        return 130
    except BaseException as e:
        _show(e)
        return 1
    # The kernel halts at exit (lkl's atexit hook), after the interpreter
    # has joined the program's remaining non-daemon threads.
    return 0

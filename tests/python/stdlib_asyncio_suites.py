"""CPython's own asyncio suites against lkl.asyncio.EventLoop.

    python3 tests/python/stdlib_asyncio_suites.py [--mode direct|shadow]
        [--json OUT] [--only MODULE ...] [-k PATTERN ...]

Boots a kernel, then runs, for each module, the host's baseline and the
same tests on our loop:

- test_events, test_sock_lowlevel: the stock ``EPollEventLoopTests`` beside
  the same mixins with ``create_event_loop()`` returning our EventLoop,
  plus the module's other tests (handles, policies, servers...) under the
  default policy, then under ours (the Select/Poll/Kqueue flavours of the
  loop classes are left out: they are the same tests on other selectors);
- test_streams, test_ssl: the module under the default policy, then under
  ``lkl.asyncio.EventLoopPolicy`` (they make loops with new_event_loop()).

These tests use host sockets, pipes, subprocesses and signals: they check
that the loop serves host fds exactly as the stock one does while it waits
in the kernel.  No test resource is enabled (no network).  Prints one line
per module and run, and writes the counts as JSON with --json.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import io
import json
import sys
import time
import unittest

import lkl
import lkl.asyncio as lkl_asyncio

MODULES = ("test_events", "test_streams", "test_sock_lowlevel", "test_ssl")


def _loop_classes(module: object) -> tuple[type, type]:
    """(the stock EPoll test class, ours) of a module with loop mixins."""
    stock = module.EPollEventLoopTests  # type: ignore[attr-defined]
    bases = tuple(b for b in stock.__bases__)

    def create_event_loop(self: object) -> asyncio.AbstractEventLoop:
        return lkl_asyncio.EventLoop()

    ours = type("LklEventLoopTests", bases, {"create_event_loop": create_event_loop,
                                              "__module__": stock.__module__})
    return stock, ours


def _loader(patterns: list[str]) -> unittest.TestLoader:
    loader = unittest.TestLoader()
    if patterns:
        loader.testNamePatterns = [f"*{p}*" for p in patterns]
    return loader


def _suite(cls_or_module: object, patterns: list[str]) -> unittest.TestSuite:
    loader = _loader(patterns)
    if isinstance(cls_or_module, type):
        return loader.loadTestsFromTestCase(cls_or_module)
    return loader.loadTestsFromModule(cls_or_module)  # type: ignore[arg-type]


def _flat(suite: unittest.TestSuite) -> list[unittest.TestCase]:
    out: list[unittest.TestCase] = []
    for t in suite:
        out.extend(_flat(t) if isinstance(t, unittest.TestSuite) else [t])
    return out


def _rest(module: object, patterns: list[str]) -> unittest.TestSuite:
    """A module's tests outside its per-selector loop classes."""
    return unittest.TestSuite(t for t in _flat(_suite(module, patterns))
                              if not type(t).__name__.endswith("EventLoopTests"))


def _merge(a: dict[str, object], b: dict[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in a.items():
        out[key] = value + b[key]  # type: ignore[operator]
    out["seconds"] = round(out["seconds"], 1)  # type: ignore[call-overload]
    return out


def _under_policy(policy: object, suite: unittest.TestSuite, verbose: bool) -> dict[str, object]:
    asyncio.set_event_loop_policy(policy)  # type: ignore[arg-type]
    try:
        return _run(suite, verbose)
    finally:
        asyncio.set_event_loop_policy(None)


def _run(suite: unittest.TestSuite, verbose: bool) -> dict[str, object]:
    stream = sys.stderr if verbose else io.StringIO()
    runner = unittest.TextTestRunner(stream=stream, verbosity=2 if verbose else 0)
    start = time.monotonic()
    result = runner.run(suite)
    return {
        "run": result.testsRun,
        "failures": len(result.failures),
        "errors": len(result.errors),
        "skipped": len(result.skipped),
        "passed": result.testsRun - len(result.failures) - len(result.errors)
        - len(result.skipped),
        "seconds": round(time.monotonic() - start, 1),
        "failed_tests": [t.id() for t, _ in result.failures + result.errors],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", default="direct", choices=("direct", "shadow"))
    parser.add_argument("--json")
    parser.add_argument("--only", nargs="*", default=list(MODULES))
    parser.add_argument("-k", dest="patterns", action="append", default=[])
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()

    kernel = lkl.boot(memory="256M", syscall_mode=args.mode)
    report: dict[str, dict[str, object]] = {}
    try:
        for name in args.only:
            module = importlib.import_module(f"test.test_asyncio.{name}")
            if hasattr(module, "EPollEventLoopTests"):
                stock, ours = _loop_classes(module)
                host = _merge(_run(_suite(stock, args.patterns), args.verbose),
                              _under_policy(None, _rest(module, args.patterns), args.verbose))
                lkl_result = _merge(
                    _run(_suite(ours, args.patterns), args.verbose),
                    _under_policy(lkl_asyncio.EventLoopPolicy(), _rest(module, args.patterns),
                                  args.verbose))
            else:
                asyncio.set_event_loop_policy(None)
                host = _run(_suite(module, args.patterns), args.verbose)
                asyncio.set_event_loop_policy(lkl_asyncio.EventLoopPolicy())
                try:
                    lkl_result = _run(_suite(module, args.patterns), args.verbose)
                finally:
                    asyncio.set_event_loop_policy(None)
            report[name] = {"host": host, "lkl": lkl_result}
            for label, r in (("host", host), ("lkl ", lkl_result)):
                print(f"{name:20} {label} run {r['run']:4} passed {r['passed']:4} "
                      f"failed {r['failures']:3} errors {r['errors']:3} "
                      f"skipped {r['skipped']:3} ({r['seconds']} s)", flush=True)
            for test in lkl_result["failed_tests"]:  # type: ignore[attr-defined]
                print(f"    lkl failed: {test}", flush=True)
    finally:
        kernel.halt()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"mode": args.mode, "python": sys.version.split()[0],
                       "modules": report}, f, indent=2)
    ok = all(r["lkl"]["passed"] >= r["host"]["passed"] for r in report.values())  # type: ignore[operator]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

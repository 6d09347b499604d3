#!/usr/bin/env python3
"""CPython's own networking test suites, on the host and on lkl.

For each module, runs ``python -m test -v -i '*VSOCK*' MODULE`` on the
host, and the same program under ``python -m lkl run`` (boot a kernel,
``lkl.patch``, run), then parses the counts unittest prints (run,
failures, errors, skipped, expected failures) and the names of the
failing tests.  Writes bench/results/cpython_suites.json and .md: host
passes, lkl passes, their ratio, and what fails on lkl.

Only ``test_socketserver`` gets a resource (``-u network``, which it
needs although it only uses localhost); no other module gets any, and
never ``-u all``: the suites then stay on localhost.

    python3 bench/cpython_suites.py                      # every module, both sides
    python3 bench/cpython_suites.py --side host test_selectors
    python3 bench/cpython_suites.py --match 'BasicTCPTest*' test_socket
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

MODULES = [
    "test_socket",
    "test_socketserver",
    "test_httplib",
    "test_urllib2_localnet",
    "test_selectors",
    "test_ssl",
    "test_asyncio.test_streams",
    "test_asyncio.test_sock_lowlevel",
    "test_asyncio.test_events",
    "test_asyncio.test_ssl",
]
# The one resource allowed, and only for the module that needs it.
RESOURCES = {"test_socketserver": ["-u", "network"]}
IGNORE = "*VSOCK*"


@dataclass
class SuiteResult:
    """What one run of one module printed."""

    module: str
    side: str                     # "host" or "lkl"
    returncode: int | None = None
    seconds: float = 0.0
    run: int = 0
    passed: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    expected_failures: int = 0
    unexpected_successes: int = 0
    failing: list[str] = field(default_factory=list)
    note: str = ""                # why there are no counts (timeout, crash, not run)


def command(module: str, side: str, match: list[str] | None = None,
            timeout: float | None = None) -> list[str]:
    """The command line for ``module`` on ``side``."""
    test = ["-m", "test", "-v"]
    # Match patterns first: in 3.11 a -m after an -i is not applied.
    for m in match or []:
        test += ["-m", m]
    test += ["-i", IGNORE, *RESOURCES.get(module, [])]
    if timeout:
        test += ["--timeout", str(int(timeout))]   # regrtest's per-test watchdog
    test.append(module)
    if side == "host":
        return [sys.executable, *test]
    return [sys.executable, "-m", "lkl", "run", "--memory", "256M", *test]


_RAN = re.compile(r"^Ran (\d+) tests? in ", re.M)
_VERDICT = re.compile(r"^(OK|FAILED)(?: \((.*)\))?\s*$", re.M)
_FAILED_TEST = re.compile(r"^(FAIL|ERROR): (\S+) \(([\w.]+)\)", re.M)


def parse(output: str, result: SuiteResult) -> SuiteResult:
    """Fill ``result``'s counts from unittest's verbose output."""
    runs = [int(n) for n in _RAN.findall(output)]
    verdicts = _VERDICT.findall(output)
    if not runs or not verdicts:
        result.note = result.note or "no unittest summary (crashed or timed out)"
        return result
    result.run = sum(runs)
    counts = {"failures": 0, "errors": 0, "skipped": 0, "expected failures": 0,
              "unexpected successes": 0}
    for _verdict, detail in verdicts:
        for part in filter(None, (p.strip() for p in detail.split(","))):
            key, _, value = part.partition("=")
            if key in counts and value.isdigit():
                counts[key] += int(value)
    result.failures = counts["failures"]
    result.errors = counts["errors"]
    result.skipped = counts["skipped"]
    result.expected_failures = counts["expected failures"]
    result.unexpected_successes = counts["unexpected successes"]
    result.passed = (result.run - result.failures - result.errors - result.skipped
                     - result.expected_failures - result.unexpected_successes)
    names = []
    for kind, name, where in _FAILED_TEST.findall(output):
        label = f"{kind} {where}" if where.endswith(name) else f"{kind} {where}.{name}"
        if label not in names:
            names.append(label)
    result.failing = names
    return result


def run_suite(module: str, side: str, match: list[str] | None = None,
              timeout: float = 1800, log_dir: Path | None = None) -> SuiteResult:
    """Run ``module`` on ``side`` ("host" or "lkl") and parse what it printed."""
    result = SuiteResult(module, side)
    if side == "lkl" and importlib.util.find_spec("lkl.patch") is None:
        result.note = "not run: this lkl has no lkl.patch"
        return result
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    t0 = time.monotonic()
    try:
        proc = subprocess.run(command(module, side, match, timeout=min(timeout, 300)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace", timeout=timeout, cwd=ROOT, env=env,
                              stdin=subprocess.DEVNULL)
        output, result.returncode = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as e:
        out = e.stdout or ""
        output = out.decode(errors="replace") if isinstance(out, bytes) else out
        result.note = f"timed out after {timeout:.0f} s"
    result.seconds = round(time.monotonic() - t0, 1)
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        (log_dir / f"{module}.{side}.log").write_text(output)
    return parse(output, result)


def markdown(results: dict[str, dict[str, SuiteResult]], meta: dict[str, str]) -> str:
    """The table of a run: host passes, lkl passes, ratio; lkl's failures."""
    lines = [f"# CPython's networking suites on lkl ({meta['date']})", "",
             f"Python {meta['python']} on {meta['machine']}; `python -m test -v -i "
             f"'{IGNORE}' MODULE` on the host and under `python -m lkl run` "
             "(only test_socketserver gets `-u network`).  Passed = run - failures - "
             "errors - skipped - expected failures.", "",
             "| module | host passed / run | lkl passed / run | lkl / host | host s | lkl s |",
             "|---|---|---|---|---|---|"]
    for module, sides in results.items():
        cells = []
        for side in ("host", "lkl"):
            r = sides.get(side)
            if r is None:
                cells.append("—")
            elif r.note and not r.run:
                cells.append(r.note)
            else:
                cells.append(f"{r.passed} / {r.run}")
        host, lkl = sides.get("host"), sides.get("lkl")
        ratio = (f"{lkl.passed / host.passed:.2f}" if host and lkl and host.passed and lkl.run
                 else "—")
        secs = [f"{sides[s].seconds:.0f}" if s in sides and sides[s].seconds else "—"
                for s in ("host", "lkl")]
        lines.append(f"| {module} | {cells[0]} | {cells[1]} | {ratio} | {secs[0]} | "
                     f"{secs[1]} |")
    failing = [(m, sides["lkl"]) for m, sides in results.items()
               if "lkl" in sides and sides["lkl"].failing]
    if failing:
        lines += ["", "## Failing on lkl", ""]
        for module, r in failing:
            host_failing = set(results[module]["host"].failing) if "host" in results[module] \
                else set()
            lines.append(f"### {module}")
            lines += [f"- {name}" + (" (fails on the host too)" if name in host_failing else "")
                      for name in r.failing]
            lines.append("")
    host_failing_any = [(m, sides["host"]) for m, sides in results.items()
                        if "host" in sides and sides["host"].failing]
    if host_failing_any:
        lines += ["", "## Failing on the host (baseline)", ""]
        for module, r in host_failing_any:
            lines += [f"- {module}: {name}" for name in r.failing]
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", help=f"modules (default: {', '.join(MODULES)})")
    ap.add_argument("--side", choices=("host", "lkl", "both"), default="both")
    ap.add_argument("--match", action="append", metavar="PATTERN",
                    help="only tests matching PATTERN (regrtest's -m; repeatable)")
    ap.add_argument("--timeout", type=float, default=1800,
                    help="seconds per module and side (default 1800)")
    ap.add_argument("--output", type=Path, default=RESULTS / "cpython_suites",
                    help="results basename (.json and .md are added)")
    ap.add_argument("--logs", type=Path, default=None,
                    help="keep each run's output in this directory")
    args = ap.parse_args()
    modules = args.modules or MODULES
    for m in modules:
        if m not in MODULES:
            ap.error(f"{m} is not one of the suites this runner knows ({', '.join(MODULES)})")
    sides = ["host", "lkl"] if args.side == "both" else [args.side]
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(), "machine": f"{platform.machine()}, "
            f"{os.cpu_count()} CPUs", "match": " ".join(args.match or [])}
    results: dict[str, dict[str, SuiteResult]] = {}
    for module in modules:
        for side in sides:
            r = run_suite(module, side, args.match, args.timeout, args.logs)
            results.setdefault(module, {})[side] = r
            print(f"{module:34} {side:4} passed {r.passed:4} / run {r.run:4}  "
                  f"fail {r.failures} err {r.errors} skip {r.skipped}  {r.seconds:.0f} s"
                  + (f"  ({r.note})" if r.note else ""), flush=True)
    out: Path = args.output
    out.parent.mkdir(parents=True, exist_ok=True)
    data = {"meta": meta, "modules": {m: {s: asdict(r) for s, r in sides_.items()}
                                      for m, sides_ in results.items()}}
    out.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(results, meta))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CPython's own networking test suites, on the host and on lkl (the runner).

For each module, runs ``python -m test -v -i '*VSOCK*' MODULE`` on the
host, and the same program under ``python -m lkl run`` (boot a kernel,
``lkl.patch``, run), then parses the counts unittest prints (run,
failures, errors, skipped, expected failures) and the names of the
failing tests; markdown() makes the table of host passes, lkl passes,
their ratio, and what fails on lkl.

Only ``test_socketserver`` gets a resource (``-u network``, which it
needs although it only uses localhost); no other module gets any, and
never ``-u all``: the suites then stay on localhost.

bench/cpython_suites.py is its command line; tests/python/test_cpython_suites.py
runs a CI-sized selection.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

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

# Why a test that passes on the host cannot pass on lkl (by design), keyed by
# test id or by "Class.*"; markdown() writes the reason next to the name.
EXPLANATIONS = {
    "test.test_socket.SendfileUsingSendfileTest.*":
        "calls the private os.sendfile() path directly: a host syscall cannot write "
        "into a kernel socket, so lkl.socket's _sendfile_use_sendfile raises "
        "_GiveupOnSendfile after the stdlib's argument checks; socket.sendfile() "
        "falls back to send() on it (SendfileUsingSendTest passes)",
    **dict.fromkeys(
        ["test.test_socketserver.SocketServerTest.test_ForkingTCPServer",
         "test.test_socketserver.SocketServerTest.test_ForkingUDPServer"],
        "the forking servers handle each request in a forked child, which has no "
        "kernel (its threads are not forked), so the child's calls on the kernel "
        "socket fail; the parent's close is then the connection's only one (TCP: the "
        "client sees a reset) or no reply comes (UDP: the client times out). One "
        "kernel per process, by design"),
}


def explanation(name: str) -> str | None:
    """The by-design reason for failing test ``name`` ("FAIL test.x.C.t"), if any."""
    test_id = name.split(" ", 1)[-1]
    cls = test_id.rsplit(".", 1)[0]
    return EXPLANATIONS.get(test_id) or EXPLANATIONS.get(cls + ".*")


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
            timeout: float | None = None, skip: list[str] | None = None) -> list[str]:
    """The command line for ``module`` on ``side`` (``skip``: test ids left out)."""
    test = ["-m", "test", "-v"]
    # Match patterns first: in 3.11 a -m after an -i is not applied.
    for m in match or []:
        test += ["-m", m]
    test += ["-i", IGNORE, *RESOURCES.get(module, [])]
    for test_id in skip or []:
        test += ["-i", test_id]
    if timeout:
        test += ["--timeout", str(int(timeout))]   # regrtest's per-test watchdog
    test.append(module)
    if side == "host":
        return [sys.executable, *test]
    return [sys.executable, "-m", "lkl", "run", "--memory", "256M", *test]


_RAN = re.compile(r"^Ran (\d+) tests? in ", re.M)
_VERDICT = re.compile(r"^(OK|FAILED)(?: \((.*)\))?\s*$", re.M)
_VERBOSE = re.compile(r"^(\w+) \(([\w.]+)\)[^\n]*?\.\.\. (ok|FAIL|ERROR|skipped|expected "
                      r"failure|unexpected success)", re.M)
_STARTED = re.compile(r"^\w+ \(([\w.]+)\)", re.M)
_FAILED_TEST = re.compile(r"^(FAIL|ERROR): (\S+) \(([\w.]+)\)", re.M)


def parse(output: str, result: SuiteResult) -> SuiteResult:
    """Fill ``result``'s counts from unittest's verbose output."""
    runs = [int(n) for n in _RAN.findall(output)]
    verdicts = _VERDICT.findall(output)
    if not runs or not verdicts:
        result.note = result.note or "no unittest summary (crashed or timed out)"
        # What finished before that, from the verbose lines.
        done = _VERBOSE.findall(output)
        result.run = len(done)
        result.passed = sum(1 for *_, verdict in done if verdict == "ok")
        result.failing = [f"{'FAIL' if v == 'FAIL' else 'ERROR'} {where}"
                          for _name, where, v in done if v in ("FAIL", "ERROR")]
        finished = {where for _name, where, _v in done}
        started = _STARTED.findall(output)
        unfinished = [t for t in started if t not in finished]
        # A test whose verdict is out can still hang in its teardown.
        last = unfinished[-1] if unfinished else (started[-1] if started else None)
        if last:
            result.note += f"; last test started: {last}"
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


def _run_once(module: str, side: str, match: list[str] | None, timeout: float,
              test_timeout: float, skip: list[str], log: Path) -> SuiteResult:
    result = SuiteResult(module, side)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"     # the log shows the test running now
    t0 = time.monotonic()
    # The output goes to the log as it comes, so a slow run can be watched.
    with open(log, "w") as out:
        proc = subprocess.Popen(command(module, side, match, test_timeout, skip),
                                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            result.returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)   # the run and what it started
            proc.wait()
            result.note = f"timed out after {timeout:.0f} s"
    result.seconds = round(time.monotonic() - t0, 1)
    return parse(log.read_text(errors="replace"), result)


def run_suite(module: str, side: str, match: list[str] | None = None,
              timeout: float = 1800, log_dir: Path | None = None,
              test_timeout: float = 120, rounds: int = 8) -> SuiteResult:
    """Run ``module`` on ``side`` ("host" or "lkl") and parse what it printed.

    regrtest ends the whole run when one test outlives ``test_timeout``
    (or the interpreter dies), so such a run is repeated without the test
    that was running (without its class after a second one there), up to
    ``rounds`` times; what was left out counts as one failed test each
    ("HANG ...").
    """
    if side == "lkl" and importlib.util.find_spec("lkl.patch") is None:
        return SuiteResult(module, side, note="not run: this lkl has no lkl.patch")
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="cpython_suites."))
    log_dir.mkdir(parents=True, exist_ok=True)
    hung: list[str] = []
    seconds = 0.0
    while True:
        log = log_dir / f"{module}.{side}{'.' + str(len(hung)) if hung else ''}.log"
        result = _run_once(module, side, match, timeout, test_timeout, hung, log)
        seconds += result.seconds
        last = re.search(r"last test started: (\S+)", result.note)
        if not (result.note and last) or len(hung) + 1 >= rounds:
            break
        test_id = last.group(1)
        cls = test_id.rsplit(".", 1)[0]
        if test_id in hung or any(h.rsplit(".", 1)[0] == cls for h in hung):
            # A second hang in one class: leave the whole class out.
            hung = [h for h in hung if h.rsplit(".", 1)[0] != cls] + [cls + ".*"]
        else:
            hung.append(test_id)
    result.seconds = round(seconds, 1)
    if hung:
        result.run += len(hung)
        result.failures += len(hung)
        result.failing += [f"HANG {t}" for t in hung]
        result.note = "; ".join(filter(None, [
            result.note, f"{len(hung)} test(s) hung or crashed the run and were left out "
            "of a rerun"]))
    return result


def markdown(results: dict[str, dict[str, SuiteResult]], meta: dict[str, str]) -> str:
    """The table of a run: host passes, lkl passes, ratio; lkl's failures."""
    lines = [f"# CPython's networking suites on lkl ({meta['date']})", "",
             f"Python {meta['python']} on {meta['machine']}; `python -m test -v -i "
             f"'{IGNORE}' MODULE` on the host and under `python -m lkl run` "
             "(only test_socketserver gets `-u network`).  Passed = run - failures - "
             "errors - skipped - expected failures.",
             *([f"Tree: {meta['note']}"] if meta.get("note") else []), "",
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
            reasons: list[str] = []   # each by-design reason once, numbered
            for name in r.failing:
                why = explanation(name)
                if name in host_failing:
                    lines.append(f"- {name} (fails on the host too)")
                elif why:
                    if why not in reasons:
                        reasons.append(why)
                    lines.append(f"- {name} (by design: [{reasons.index(why) + 1}])")
                else:
                    lines.append(f"- {name}")
            lines += [""] + [f"[{i}] {why}" for i, why in enumerate(reasons, 1)]
            lines.append("")
    host_failing_any = [(m, sides["host"]) for m, sides in results.items()
                        if "host" in sides and sides["host"].failing]
    if host_failing_any:
        lines += ["", "## Failing on the host (baseline)", ""]
        for module, r in host_failing_any:
            lines += [f"- {module}: {name}" for name in r.failing]
    return "\n".join(lines).rstrip() + "\n"

#!/usr/bin/env python3
"""CPython's own networking test suites, on the host and on lkl.

Runs ``python -m test -v -i '*VSOCK*' MODULE`` on the host and under
``python -m lkl run`` for each module of harness.cpython_suites.MODULES
(only test_socketserver gets ``-u network``; never ``-u all``), and writes
bench/results/cpython_suites.json and .md: host passes, lkl passes, their
ratio, and what fails on lkl.

    python3 bench/cpython_suites.py                      # every module, both sides
    python3 bench/cpython_suites.py --side host test_selectors
    python3 bench/cpython_suites.py --match 'BasicTCPTest*' test_socket
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))
from harness.cpython_suites import MODULES, SuiteResult, markdown, run_suite  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", help=f"modules (default: {', '.join(MODULES)})")
    ap.add_argument("--side", choices=("host", "lkl", "both"), default="both")
    ap.add_argument("--match", action="append", metavar="PATTERN",
                    help="only tests matching PATTERN (regrtest's -m; repeatable)")
    ap.add_argument("--timeout", type=float, default=1800,
                    help="seconds per module and side (default 1800)")
    ap.add_argument("--test-timeout", type=float, default=120,
                    help="seconds one test may take before regrtest ends the run (default "
                    "120; the run is then repeated without it)")
    ap.add_argument("--output", type=Path, default=RESULTS / "cpython_suites",
                    help="results basename (.json and .md are added)")
    ap.add_argument("--note", default="",
                    help="what tree this ran on, for the results (e.g. which branches)")
    ap.add_argument("--update", action="store_true",
                    help="keep the other modules' results of the existing JSON (and its "
                    "other side's) and replace only what runs now")
    ap.add_argument("--logs", type=Path, default=None,
                    help="write each run's output in this directory (default: a new "
                    "temporary one)")
    ap.add_argument("--render", action="store_true",
                    help="run nothing: rewrite the .md from the existing .json")
    args = ap.parse_args()
    out: Path = args.output
    if args.render:
        saved = json.loads(out.with_suffix(".json").read_text())
        kept = {m: {s: SuiteResult(**r) for s, r in sides_.items()}
                for m, sides_ in saved["modules"].items()}
        out.with_suffix(".md").write_text(markdown(kept, saved["meta"]))
        print(f"wrote {out.with_suffix('.md')}")
        return 0
    modules = args.modules or MODULES
    for m in modules:
        if m not in MODULES:
            ap.error(f"{m} is not one of the suites this runner knows ({', '.join(MODULES)})")
    sides = ["host", "lkl"] if args.side == "both" else [args.side]
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(), "machine": f"{platform.machine()}, "
            f"{os.cpu_count()} CPUs", "match": " ".join(args.match or []), "note": args.note}
    results: dict[str, dict[str, SuiteResult]] = {}
    if args.update and out.with_suffix(".json").exists():
        old = json.loads(out.with_suffix(".json").read_text())
        for m in MODULES:
            for side_name, r in old.get("modules", {}).get(m, {}).items():
                results.setdefault(m, {})[side_name] = SuiteResult(**r)
    for module in modules:
        for side in sides:
            r = run_suite(module, side, args.match, args.timeout, args.logs, args.test_timeout)
            results.setdefault(module, {})[side] = r
            print(f"{module:34} {side:4} passed {r.passed:4} / run {r.run:4}  "
                  f"fail {r.failures} err {r.errors} skip {r.skipped}  {r.seconds:.0f} s"
                  + (f"  ({r.note})" if r.note else ""), flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    ordered = {m: results[m] for m in MODULES if m in results}
    data = {"meta": meta, "modules": {m: {s: asdict(r) for s, r in sides_.items()}
                                      for m, sides_ in ordered.items()}}
    out.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(ordered, meta))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

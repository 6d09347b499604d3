#!/usr/bin/env python3
"""The Linux kernel's own packetdrill selftests against lkl, and the host.

Runs every script of the kernel source's
tools/testing/selftests/net/packetdrill/ for IPv4 and IPv6 with the
options of its ksft_runner.sh, in packetdrill's shared-object mode
against lkl (build/lib/liblkl-packetdrill.so, also in LD_PRELOAD so that
packetdrill's host-side calls reach lkl), and, in the same run, against
this host's own kernel in a throw-away network namespace (tun mode,
``unshare -n`` as the kernel's runner does), so that every lkl failure
is labelled "lkl only" or "both".  The host kernel is not 6.12.

Our own scripts in tests/packetdrill/ (NAME-ipv4.pkt or NAME-ipv6.pkt,
run in that IP version only, from the selftests folder so that
./defaults.sh is found) run beside them and are counted apart.

Writes bench/results/packetdrill.json and packetdrill.md.

    python bench/packetdrill.py [--build] [--no-host] [--filter SUBSTR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
ADAPTER = BUILD / "lib" / "liblkl-packetdrill.so"
PACKETDRILL_BUILD = BUILD / "packetdrill"
PACKETDRILL = PACKETDRILL_BUILD / "packetdrill"
RESULTS = ROOT / "bench" / "results"
KERNEL_SRC = Path(os.environ.get("LKL_CACHE_DIR", Path.home() / ".cache" / "lkl")) / "src"
SELFTESTS = "tools/testing/selftests/net/packetdrill"
OUR_SCRIPTS = ROOT / "tests" / "packetdrill"

# ksft_runner.sh's options, word for word.
IPV4_ARGS = ["--ip_version=ipv4", "--local_ip=192.168.0.1", "--gateway_ip=192.168.0.1",
             "--netmask_ip=255.255.0.0", "--remote_ip=192.0.2.1",
             "-D", "CMSG_LEVEL_IP=SOL_IP", "-D", "CMSG_TYPE_RECVERR=IP_RECVERR"]
IPV6_ARGS = ["--ip_version=ipv6", "--mtu=1520", "--local_ip=fd3d:0a0b:17d6::1",
             "--gateway_ip=fd3d:0a0b:17d6:8888::1", "--remote_ip=fd3d:fa7b:d17d::1",
             "-D", "CMSG_LEVEL_IP=SOL_IPV6", "-D", "CMSG_TYPE_RECVERR=IPV6_RECVERR"]
# The adapter's view of the same network.
SO_FLAGS = {"ipv4": "ipv4 local=192.168.0.1 prefix=16 remote=192.0.2.1 mtu=1500",
            "ipv6": "ipv6 local=fd3d:a0b:17d6::1 prefix=48 remote=fd3d:fa7b:d17d::1 mtu=1520"}


def packetdrill_source() -> Path:
    """The unmodified packetdrill source beside the repository (shared/vendor)."""
    env = os.environ.get("PACKETDRILL_SRC")
    candidates = [Path(env)] if env else []
    # Beside this checkout, or beside the repository it was cloned from
    # (a CI clone of a local main lives elsewhere).
    homes = [ROOT.parent, ROOT.parent.parent]
    try:
        origin = subprocess.run(["git", "-C", str(ROOT), "config", "--get",
                                 "remote.origin.url"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        origin = ""
    if origin.startswith(("/", "file://")):
        homes.append(Path(origin.removeprefix("file://")).parent)
    homes.append(Path("/work"))     # this workplace's shared folder
    candidates += [h / "shared" / "vendor" / "packetdrill" for h in homes]
    for c in candidates:
        if (c / "packetdrill.h").is_file():
            return c.resolve()
    raise FileNotFoundError("packetdrill source not found (shared/vendor/packetdrill "
                            "beside the repository, or $PACKETDRILL_SRC)")


def selftests_dir() -> Path:
    """The kernel source's packetdrill selftests (unpacked by the kernel build)."""
    found = sorted(KERNEL_SRC.glob(f"linux-*/{SELFTESTS}"))
    if not found:
        raise FileNotFoundError(f"no {SELFTESTS} under {KERNEL_SRC} (run make lib)")
    return found[-1]


def build(timeout: float = 600) -> None:
    """packetdrill from a copy of its source under build/, and the adapter."""
    src = packetdrill_source()
    if not PACKETDRILL.exists():
        shutil.rmtree(PACKETDRILL_BUILD, ignore_errors=True)
        shutil.copytree(src, PACKETDRILL_BUILD)
        subprocess.run(["./configure"], cwd=PACKETDRILL_BUILD, check=True, timeout=timeout,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["make", "-s", "-f", "Makefile.Linux", "packetdrill"],
                       cwd=PACKETDRILL_BUILD, check=True, timeout=timeout,
                       stdout=subprocess.DEVNULL)
    subprocess.run(["make", "-s", "-C", str(ROOT / "native" / "packetdrill"),
                    f"BUILD={BUILD}", f"PACKETDRILL_SRC={src}"], check=True, timeout=timeout)


@dataclass
class Case:
    """One script in one IP version on one stack."""

    script: str
    ip: str
    stack: str
    passed: bool
    seconds: float
    error: str
    suite: str = "kernel"


def is_zerocopy(script: str) -> bool:
    """MSG_ZEROCOPY cases: another issue's work, reported apart."""
    return script.startswith("tcp_zerocopy_")


def first_error(stderr: str) -> str:
    """The line of packetdrill's output that says why a script failed."""
    lines = [ln for ln in stderr.splitlines() if ln.strip() and "reboot:" not in ln]
    for ln in lines:
        if ".pkt:" in ln or "error" in ln.lower() or "lkl-packetdrill" in ln:
            return ln.strip()[:300]
    return (lines[-1].strip()[:300] if lines else "")


def run_case(script: Path, ip: str, stack: str, timeout: float,
             tolerance_usecs: int | None, adapter: Path = ADAPTER) -> Case:
    """Run one script once, from its folder (ours: from the selftests'); a timeout fails."""
    ours = script.parent.resolve() == OUR_SCRIPTS.resolve()
    cwd = selftests_dir() if ours else script.parent
    name = str(script.resolve()) if ours else script.name
    args = list(IPV4_ARGS if ip == "ipv4" else IPV6_ARGS)
    if tolerance_usecs:
        args.append(f"--tolerance_usecs={tolerance_usecs}")
    env = dict(os.environ)
    if stack == "lkl":
        argv = [str(PACKETDRILL), f"--so_filename={adapter}",
                f"--so_flags={SO_FLAGS[ip]}", *args, name]
        env["LD_PRELOAD"] = str(adapter)
    else:
        argv = ["unshare", "-n", str(PACKETDRILL), *args, name]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=timeout)
        passed, err = proc.returncode == 0, ("" if proc.returncode == 0
                                             else first_error(proc.stderr + proc.stdout))
    except subprocess.TimeoutExpired:
        passed, err = False, f"timed out after {timeout:.0f} s"
    return Case(script.name, ip, stack, passed, round(time.monotonic() - t0, 2), err,
                "lkl" if ours else "kernel")


def scripts(filter_: str | None = None, zerocopy: bool = True) -> list[Path]:
    """The selftest scripts, sorted, optionally filtered."""
    found = sorted(selftests_dir().glob("*.pkt"))
    return [s for s in found if (not filter_ or filter_ in s.name)
            and (zerocopy or not is_zerocopy(s.name))]


def our_scripts(filter_: str | None = None) -> list[tuple[Path, str]]:
    """Our scripts with the IP version their name ends in."""
    found = []
    for s in sorted(OUR_SCRIPTS.glob("*.pkt")):
        ip = s.stem.rsplit("-", 1)[-1]
        if ip in ("ipv4", "ipv6") and (not filter_ or filter_ in s.name):
            found.append((s, ip))
    return found


def label(lkl: Case, host: Case | None) -> str:
    """pass, or whose failure it is."""
    if lkl.passed:
        return "pass"
    if host is None:
        return "fail"
    return "fail (both)" if not host.passed else "fail (lkl only)"


def write_report(cases: list[Case], note: str, name: str = "packetdrill") -> dict:
    """bench/results/packetdrill.json and .md."""
    host = {(c.script, c.ip): c for c in cases if c.stack == "host"}
    rows = []
    for c in (c for c in cases if c.stack == "lkl"):
        h = host.get((c.script, c.ip))
        rows.append({"script": c.script, "ip": c.ip, "suite": c.suite,
                     "zerocopy": is_zerocopy(c.script),
                     "lkl": c.passed, "host": None if h is None else h.passed,
                     "verdict": label(c, h), "lkl_error": c.error,
                     "host_error": "" if h is None else h.error, "lkl_seconds": c.seconds})

    def count(zc: bool, stack: str, suite: str = "kernel") -> str:
        sel = [r for r in rows if r["zerocopy"] == zc and r[stack] is not None
               and r["suite"] == suite]
        return f"{sum(1 for r in sel if r[stack])}/{len(sel)}"

    summary = {"non_zerocopy_lkl": count(False, "lkl"), "non_zerocopy_host": count(False, "host"),
               "zerocopy_lkl": count(True, "lkl"), "zerocopy_host": count(True, "host"),
               "ours_lkl": count(False, "lkl", "lkl"), "ours_host": count(False, "host", "lkl")}
    report = {"benchmark": "kernel packetdrill selftests (tools/testing/selftests/net/packetdrill)",
              "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "host_kernel": platform.release(),
              "note": note, "summary": summary, "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    md = ["# Kernel packetdrill selftests: lkl and the host kernel", "",
          f"Run {report['when']}; host kernel {report['host_kernel']} (tun in a throw-away "
          "namespace); lkl is Linux 6.12 through `build/lib/liblkl-packetdrill.so`. "
          "Options as `ksft_runner.sh`. " + note, "",
          f"Non-zero-copy: lkl {summary['non_zerocopy_lkl']}, host "
          f"{summary['non_zerocopy_host']}. MSG_ZEROCOPY: lkl "
          f"{summary['zerocopy_lkl']}, host {summary['zerocopy_host']}. Ours "
          f"(tests/packetdrill/): lkl {summary['ours_lkl']}, host {summary['ours_host']}.", "",
          "| suite | script | ip | lkl | host | verdict | lkl error |",
          "|---|---|---|---|---|---|---|"]
    for r in rows:
        h = "-" if r["host"] is None else ("pass" if r["host"] else "fail")
        md.append(f"| {r['suite']} | {r['script']} | {r['ip']} | {'pass' if r['lkl'] else 'fail'} "
                  f"| {h} | {r['verdict']} | {r['lkl_error'].replace('|', '/')} |")
    (RESULTS / f"{name}.md").write_text("\n".join(md) + "\n")
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="store_true", help="build packetdrill and the adapter")
    parser.add_argument("--no-host", action="store_true", help="skip the host-kernel reference")
    parser.add_argument("--no-zerocopy", action="store_true", help="skip MSG_ZEROCOPY scripts")
    parser.add_argument("--filter", help="only scripts whose name contains this")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per script")
    parser.add_argument("--tolerance-usecs", type=int, default=None)
    parser.add_argument("--note", default="", help="a line for the report")
    parser.add_argument("--adapter", type=Path, default=ADAPTER, help="the adapter .so")
    parser.add_argument("--name", default="packetdrill", help="results file name")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("packetdrill needs root (mlockall, tun, namespaces)", file=sys.stderr)
        return 1
    if args.build:
        build()
    cases: list[Case] = []
    todo = [(s, ip) for s in scripts(args.filter, zerocopy=not args.no_zerocopy)
            for ip in ("ipv4", "ipv6")] + our_scripts(args.filter)
    stacks = ["lkl"] if args.no_host else ["lkl", "host"]
    for script, ip in todo:
        for stack in stacks:
            c = run_case(script, ip, stack, args.timeout, args.tolerance_usecs,
                         args.adapter.resolve())
            cases.append(c)
            print(f"{c.script:60} {ip} {stack:4} {'pass' if c.passed else 'FAIL'} "
                  f"{c.error[:80]}", flush=True)
    report = write_report(cases, args.note, args.name)
    print(json.dumps(report["summary"]))
    ok = all(a == b for a, b in (report["summary"][k].split("/")
                                 for k in ("non_zerocopy_lkl", "zerocopy_lkl", "ours_lkl")))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

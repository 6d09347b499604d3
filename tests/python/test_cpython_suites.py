"""harness/cpython_suites.py, bench/cpython_suites.py's runner.

Its parser, a small host run, and a CI-sized selection of CPython's suites
under ``python -m lkl run``.
"""

from __future__ import annotations

import importlib.util

import pytest

from harness import cpython_suites as suites

HAVE_PATCH = importlib.util.find_spec("lkl.patch") is not None
needs_suites = pytest.mark.skipif(importlib.util.find_spec("test.support") is None,
                                  reason="this Python has no test suite (the 'test' package)")

SAMPLE = """\
test_a (test.test_x.T.test_a) ... ok
test_b (test.test_x.T.test_b) ... FAIL
test_c (test.test_x.T.test_c) ... ERROR
test_d (test.test_x.T.test_d) ... skipped 'no network'
test_e (test.test_x.T.test_e) ... expected failure

======================================================================
ERROR: test_c (test.test_x.T.test_c)
----------------------------------------------------------------------
Traceback (most recent call last):
OSError: boom

======================================================================
FAIL: test_b (test.test_x.T.test_b)
----------------------------------------------------------------------
AssertionError

----------------------------------------------------------------------
Ran 5 tests in 0.010s

FAILED (failures=1, errors=1, skipped=1, expected failures=1)
test test_x failed
"""


def test_parse_counts_and_names() -> None:
    r = suites.parse(SAMPLE, suites.SuiteResult("test_x", "lkl"))
    assert (r.run, r.passed, r.failures, r.errors, r.skipped, r.expected_failures) == (
        5, 1, 1, 1, 1, 1)
    assert r.failing == ["ERROR test.test_x.T.test_c", "FAIL test.test_x.T.test_b"]
    crashed = suites.parse(SAMPLE.split("\n\n")[0] + "\ntest_f (test.test_x.T.test_f) ... "
                           "\nFatal Python error: Segmentation fault\n",
                           suites.SuiteResult("test_x", "lkl"))
    assert "no unittest summary" in crashed.note
    assert "last test started: test.test_x.T.test_f" in crashed.note
    assert (crashed.run, crashed.passed) == (5, 1)
    assert crashed.failing == ["FAIL test.test_x.T.test_b", "ERROR test.test_x.T.test_c"]


def test_commands_allow_only_the_network_resource_for_socketserver() -> None:
    for module in suites.MODULES:
        for side in ("host", "lkl"):
            argv = suites.command(module, side)
            assert "all" not in argv
            assert ("-u" in argv) == (module == "test_socketserver")
            assert argv[-1] == module and "*VSOCK*" in argv
    assert suites.command("test_ssl", "lkl")[1:5] == ["-m", "lkl", "run", "--memory"]


def test_markdown_table() -> None:
    host = suites.parse(SAMPLE.replace("FAILED (failures=1, errors=1,", "FAILED (failures=0, "
                                       "errors=0,"), suites.SuiteResult("test_x", "host"))
    lkl = suites.parse(SAMPLE, suites.SuiteResult("test_x", "lkl"))
    md = suites.markdown({"test_x": {"host": host, "lkl": lkl}},
                         {"date": "now", "python": "3.11", "machine": "x"})
    assert "| test_x | 3 / 5 | 1 / 5 | 0.33 |" in md
    assert "- FAIL test.test_x.T.test_b (fails on the host too)" in md


def test_by_design_failures_carry_their_reason() -> None:
    assert "os.sendfile" in (suites.explanation(
        "ERROR test.test_socket.SendfileUsingSendfileTest.testCount") or "")
    assert "fork" in (suites.explanation(
        "ERROR test.test_socketserver.SocketServerTest.test_ForkingTCPServer") or "")
    assert suites.explanation("FAIL test.test_socket.BasicTCPTest.testRecv") is None
    lkl = suites.parse(SAMPLE, suites.SuiteResult("test_x", "lkl"))
    lkl.failing.append("ERROR test.test_socket.SendfileUsingSendfileTest.testCount")
    md = suites.markdown({"test_x": {"lkl": lkl}}, {"date": "now", "python": "3.11",
                                                   "machine": "x"})
    assert "SendfileUsingSendfileTest.testCount (by design: [1])" in md
    assert "[1] calls the private os.sendfile()" in md
    assert "- FAIL test.test_x.T.test_b\n" in md


@needs_suites
@pytest.mark.watchdog(90)
def test_host_run_of_a_small_selection() -> None:
    r = suites.run_suite("test_selectors", "host", match=["*DefaultSelectorTestCase*"],
                         timeout=60)
    assert r.returncode == 0 and r.note == "", r
    assert r.run > 0 and r.passed > 0 and not r.failing


@needs_suites
@pytest.mark.skipif(not HAVE_PATCH, reason="needs lkl.patch (issue 11, the other half): "
                    "remove this skip once it is merged")
@pytest.mark.watchdog(120)
@pytest.mark.parametrize(("module", "match"), [
    ("test_selectors", ["*DefaultSelectorTestCase*"]),
    ("test_socket", ["BasicTCPTest*"]),
    # getnameinfo's references, socket.close(fd), _sendfile_use_sendfile's errors
    ("test_socket", ["GeneralModuleTests*"]),
])
def test_lkl_run_of_a_ci_selection(module: str, match: list[str]) -> None:
    """A bounded selection (< 60 s) under python -m lkl run: it runs, and
    passes at least 90% of what passes on the host."""
    host = suites.run_suite(module, "host", match=match, timeout=50)
    lkl = suites.run_suite(module, "lkl", match=match, timeout=50)
    assert lkl.note == "" and lkl.run == host.run, (lkl, host)
    assert lkl.passed >= 0.9 * host.passed, lkl.failing
    if match == ["GeneralModuleTests*"]:   # all of it passes on lkl since these fixes
        assert lkl.passed == host.passed, lkl.failing

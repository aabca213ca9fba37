#!/usr/bin/env python3
"""run.py: run the integration tests (tests/integration/test_*.py) with unittest.

Prints one line per test (PASS name / FAIL name / SKIP name: reason), the failures'
details, then exactly one summary line "N passed, N failed, N skipped"; exit 1 on any
failure. Modules run in name order (test_zz_* last: they check the whole run).
The run directory (configs, state dirs, every log) is kept when a test failed or
HEALD_IT_KEEP=1. HEALD_VALGRIND=1 runs every heald under valgrind.
Usage: tests/integration/run.py [-k SUBSTRING] [test_module ...]
"""
import argparse
import glob
import importlib
import os
import shutil
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402


class LineResult(unittest.TestResult):
    def __init__(self, out):
        super().__init__()
        self.out = out
        self.passed = 0
        self.details: list[tuple[str, str]] = []
        self._t0 = 0.0

    def _line(self, text: str) -> None:
        self.out(text)

    def startTest(self, test):  # noqa: N802 - unittest API
        super().startTest(test)
        self._t0 = time.monotonic()

    def _name(self, test) -> str:
        return f"{test.__class__.__module__}.{test._testMethodName}" \
            if isinstance(test, unittest.TestCase) else str(test)

    def addSuccess(self, test):  # noqa: N802
        self.passed += 1
        self._line(f"PASS {self._name(test)} ({time.monotonic() - self._t0:.1f}s)")

    def addFailure(self, test, err):  # noqa: N802
        super().addFailure(test, err)
        self._fail(test, self.failures[-1][1])

    def addError(self, test, err):  # noqa: N802
        super().addError(test, err)
        self._fail(test, self.errors[-1][1])

    def addSubTest(self, test, subtest, err):  # noqa: N802
        super().addSubTest(test, subtest, err)
        if err is not None:  # a failed subtest fails its test: say so, count it
            self._fail(subtest, self._exc_info_to_string(err, test))

    def _fail(self, test, detail: str) -> None:
        self._line(f"FAIL {self._name(test)} ({time.monotonic() - self._t0:.1f}s)")
        self.details.append((self._name(test), detail))

    def addSkip(self, test, reason):  # noqa: N802
        super().addSkip(test, reason)
        self._line(f"SKIP {self._name(test)}: {reason}")

    def addExpectedFailure(self, test, err):  # noqa: N802
        self.addSuccess(test)

    def addUnexpectedSuccess(self, test):  # noqa: N802
        self._fail(test, "unexpected success")


def run_modules(names, pattern, result) -> None:
    """Run the tests of each module (imported by name) that match pattern into result; a
    module that does not import is a failure, not a crash of the run."""
    loader = unittest.TestLoader()
    for name in names:
        try:
            module = importlib.import_module(name)
        except Exception:
            import traceback
            result._fail(name, traceback.format_exc())
            continue
        filter_suite(loader.loadTestsFromModule(module), pattern).run(result)


def filter_suite(suite, pattern):
    out = unittest.TestSuite()
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            out.addTest(filter_suite(t, pattern))
        elif pattern is None or pattern in t.id():
            out.addTest(t)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description="heald integration tests")
    ap.add_argument("-k", dest="pattern", help="run only tests whose id contains this")
    ap.add_argument("modules", nargs="*", help="test modules (default: all test_*.py)")
    args = ap.parse_args()

    names = args.modules or sorted(os.path.basename(p)[:-3]
                                   for p in glob.glob(os.path.join(HERE, "test_*.py")))
    names = [os.path.basename(n).removesuffix(".py") for n in names]

    bed = harness.bed()
    runner_log = open(os.path.join(bed.log_dir, "runner.log"), "w")

    def out(line: str) -> None:
        print(line, flush=True)
        runner_log.write(line + "\n")
        runner_log.flush()

    out(f"# run dir {bed.run_dir}")
    result = LineResult(out)
    try:
        run_modules(names, args.pattern, result)
    finally:
        for name, detail in result.details:
            out(f"\n==== {name}\n{detail.rstrip()}")
        bed.stop()
    failed = len(result.details)
    out(f"{result.passed} passed, {failed} failed, {len(result.skipped)} skipped")
    runner_log.close()
    if not failed and os.environ.get("HEALD_IT_KEEP") != "1":
        shutil.rmtree(bed.run_dir, ignore_errors=True)  # kept when something failed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""run.py: run the integration tests (tests/integration/test_*.py) with unittest.

Prints one line per test (PASS name / FAIL name / SKIP name: reason), the failures'
details, then exactly one summary line "N passed, N failed, N skipped"; exit 1 on any
failure. The bed's own checks (bed_check.py) run first, the test modules in name order, the
checks over the whole run (whole_run_check.py) last; named modules run in the order given.
The run directory (configs, state dirs, every log) is kept when a test failed or
HEALD_IT_KEEP=1. HEALD_VALGRIND=1 runs every heald under valgrind.
Usage: tests/integration/run.py [-k SUBSTRING] [test_module ...]
"""
import argparse
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.path.join(os.path.dirname(HERE), "lib"))

import harness  # noqa: E402
from testlib import runner  # noqa: E402
# Their old import path, for scripts that load this file for its result printing.
from testlib.runner import LineResult, filter_suite, run_modules  # noqa: E402, F401


# The runner's own steps around the test modules. First, the bed checked with boto3 alone:
# when a heald test fails, they say whether the stand-in for AWS is to blame. Last, checks over
# everything the run did (IMDSv1 never used, no secret in any log or state directory).
FIRST = ["bed_check"]
LAST = ["whole_run_check"]


def main() -> int:
    ap = argparse.ArgumentParser(description="heald integration tests")
    ap.add_argument("-k", dest="pattern", help="run only tests whose id contains this")
    ap.add_argument("modules", nargs="*", help="test modules (default: all test_*.py)")
    args = ap.parse_args()

    names = runner.module_names(HERE, args.modules, FIRST, LAST)

    bed = harness.bed()
    runner_log = open(os.path.join(bed.log_dir, "runner.log"), "w")

    def out(line: str) -> None:
        print(line, flush=True)
        runner_log.write(line + "\n")
        runner_log.flush()

    out(f"# run dir {bed.run_dir}")
    result = runner.LineResult(out)
    try:
        runner.run_modules(names, args.pattern, result, last=LAST)
    finally:
        result.print_details()
        bed.stop()
    failed = len(result.details)
    out(f"{result.passed} passed, {failed} failed, {len(result.skipped)} skipped")
    runner_log.close()
    if not failed and os.environ.get("HEALD_IT_KEEP") != "1":
        shutil.rmtree(bed.run_dir, ignore_errors=True)  # kept when something failed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

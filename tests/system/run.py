#!/usr/bin/env python3
"""run.py: run the system tests (tests/system/test_*.py): heald and test units inside a
real systemd booted with systemd-nspawn (see container.py).

Prints one line per test (PASS name / FAIL name / SKIP name: reason), the failures'
details, then exactly one summary line "N passed, N failed, N skipped"; exit 1 on any
failure. Where containers cannot run (not root, systemd-nspawn or debootstrap missing,
no Debian mirror to build the rootfs from) every test is skipped with that reason and
the exit status is 0. The result printing is tests/lib/testlib/runner.py's, shared with
the integration runner; the integration bed is imported only by the tests that run heald.
Logs (container consoles, timings, the integration bed's) go to --logdir, kept; without
it to a temporary directory, removed unless a test failed or HEALD_ST_KEEP=1.
Usage: tests/system/run.py [-k SUBSTRING] [--logdir DIR] [test_module ...]
"""
import argparse
import os
import shutil
import signal
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.path.join(os.path.dirname(HERE), "lib"))

from testlib import runner  # noqa: E402


def _terminate(signum, frame):
    # Turn SIGTERM into the same orderly unwinding as Ctrl-C: containers are powered off.
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    ap = argparse.ArgumentParser(description="heald system tests (systemd-nspawn)")
    ap.add_argument("-k", dest="pattern", help="run only tests whose id contains this")
    ap.add_argument("--logdir", help="keep logs here (default: a temporary directory)")
    ap.add_argument("modules", nargs="*", help="test modules (default: all test_*.py)")
    args = ap.parse_args()

    log_dir = os.path.abspath(args.logdir) if args.logdir else \
        tempfile.mkdtemp(prefix="heald-st-")
    os.makedirs(log_dir, exist_ok=True)
    os.environ["HEALD_SYSTEM_LOGDIR"] = log_dir
    import container  # noqa: PLC0415 - reads HEALD_SYSTEM_LOGDIR
    container.LOG_DIR = log_dir

    names = runner.module_names(HERE, args.modules)

    runner_log = open(os.path.join(log_dir, "runner.log"), "w")

    def out(line: str) -> None:
        print(line, flush=True)
        runner_log.write(line + "\n")
        runner_log.flush()

    signal.signal(signal.SIGTERM, _terminate)
    out(f"# logs in {log_dir}")
    try:
        container.require()
        out(f"# rootfs {container.ensure_rootfs()}")
    except unittest.SkipTest as e:
        out(f"# system tests skipped: {e}")
    result = runner.LineResult(out)
    try:
        runner.run_modules(names, args.pattern, result)
    except KeyboardInterrupt:
        result._fail("run", "interrupted")
    finally:
        container.shutdown_all()
        harness = sys.modules.get("harness")
        bed = harness._bed if harness is not None else None
        if bed is not None:
            bed.stop()
        result.print_details()
    failed = len(result.details)
    if bed is not None and failed:
        out(f"# integration bed logs in {bed.run_dir}")
    out(f"{result.passed} passed, {failed} failed, {len(result.skipped)} skipped")
    runner_log.close()
    keep = failed or os.environ.get("HEALD_ST_KEEP") == "1"
    if bed is not None and not keep:
        shutil.rmtree(bed.run_dir, ignore_errors=True)  # the integration bed's logs
    if not args.logdir and not keep:
        shutil.rmtree(log_dir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""testlib: what heald's Python tests share (tests/lib/testlib).

    from testlib.wait import wait_until          # bounded polling that names what it awaited
    from testlib.health_server import HealthServer  # a local HTTP endpoint the test steers
    from testlib import runner                   # PASS/FAIL/SKIP lines, the modules' order
    harness = testlib.import_bed()               # the AWS test bed, from outside integration/

tests/lib is put on sys.path (appended) by the modules that use it: harness.py, container.py
and both runners, so a test module, the soak test or a benchmark that imports one of those
finds testlib too.
"""
import os
import sys

TESTS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPO = os.path.dirname(TESTS)


def import_bed():
    """The AWS test bed (tests/integration/harness.py) for tests outside integration/. Its
    folder is appended to sys.path, after the caller's own, so that a module name both folders
    use (test_commands) stays the caller's. Raises ImportError where the bed's Python packages
    (moto, boto3) are missing."""
    folder = os.path.join(TESTS, "integration")
    if folder not in sys.path:
        sys.path.append(folder)
    import harness  # noqa: PLC0415 - only tests that run heald need the bed
    return harness

"""runner.py: what the integration and system runners share: one line per test (PASS name /
FAIL name / SKIP name: reason), the failures' details, and the order the modules run in."""
import glob
import importlib
import os
import time
import traceback
import unittest


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


def module_names(folder: str, requested: list[str], first=(), last=()) -> list[str]:
    """The modules to run, by name: those requested (file names or module names) in the order
    given, else first, every test_*.py of folder in name order, then last. first and last are
    the runner's own steps (not test_*.py, so that no file name has to sort itself into place)."""
    if requested:
        return [os.path.basename(n).removesuffix(".py") for n in requested]
    tests = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(folder, "test_*.py")))
    return [*first, *tests, *last]


def run_modules(names, pattern, result) -> None:
    """Run the tests of each module (imported by name) that match pattern into result; a
    module that does not import is a failure, not a crash of the run."""
    loader = unittest.TestLoader()
    for name in names:
        try:
            module = importlib.import_module(name)
        except Exception:
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

"""runner.py: what the integration and system runners share: one line per test (PASS name /
FAIL name / SKIP name: reason), the failures' details, and the order the modules run in.

A test that fails runs once more after all the others (RETRY name, then PASS or FAIL): the run
is CI's one chance on a loaded machine, and a test that fails only under load must not hide
the rest. One that passes the second time is counted as passed and named (FLAKY name, its first
failure's details printed with the others), so that it is seen and fixed, not forgotten.
HEALD_TEST_RETRY=0 turns the second run off (to hunt a flaky test)."""
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
        self.flaky: list[tuple[str, str]] = []  # (name, the first run's failure)
        self.first_runs: list[tuple[str, str]] = []  # the same, of tests that failed again
        self.retry = os.environ.get("HEALD_TEST_RETRY", "1") != "0"
        self._second_run: dict[str, tuple[unittest.TestCase, str]] = {}  # name: (test, detail)
        self._retrying = False
        self._t0 = 0.0

    def _line(self, text: str) -> None:
        self.out(text)

    def startTest(self, test):  # noqa: N802 - unittest API
        super().startTest(test)
        self._t0 = time.monotonic()

    def _name(self, test) -> str:
        if isinstance(test, unittest.case._SubTest):  # the test's name and the subtest's parameters
            return self._name(test.test_case) + test.id()[len(test.test_case.id()):]
        return f"{test.__class__.__module__}.{test._testMethodName}" \
            if isinstance(test, unittest.TestCase) else str(test)

    def addSuccess(self, test):  # noqa: N802
        self.passed += 1
        name = self._name(test)
        if name in self._second_run:
            self.flaky.append((name, self._second_run.pop(name)[1]))
            self._line(f"FLAKY {name}: failed, then passed when run again")
        self._line(f"PASS {name} ({time.monotonic() - self._t0:.1f}s)")

    def addFailure(self, test, err):  # noqa: N802
        super().addFailure(test, err)
        self._fail(test, self.failures[-1][1])

    def addError(self, test, err):  # noqa: N802
        super().addError(test, err)
        self._fail(test, self.errors[-1][1])

    def addSubTest(self, test, subtest, err):  # noqa: N802
        super().addSubTest(test, subtest, err)
        if err is not None:  # a failed subtest fails its test: say so, count it
            self._fail(subtest, self._exc_info_to_string(err, test), retry_as=test)

    def _fail(self, test, detail: str, retry_as=None) -> None:
        """A failure: final, or (a test's first) kept for its second run."""
        elapsed = time.monotonic() - self._t0
        case = retry_as or test
        if self.retry and not self._retrying and isinstance(case, unittest.TestCase):
            name = self._name(case)
            if name not in self._second_run:
                self._second_run[name] = (case, detail)
                self._line(f"RETRY {name} (failed after {elapsed:.1f}s; runs again at the end)")
            return
        self._line(f"FAIL {self._name(test)} ({elapsed:.1f}s)")
        self.details.append((self._name(test), detail))

    def run_failed_again(self) -> None:
        """The second run of the tests that failed, each with its class's set-up; a test that
        fails again (or is skipped the second time) fails, with its first run's details too.
        Failures after this call are final."""
        self._retrying = True
        for name, (test, detail) in list(self._second_run.items()):
            self._previousTestClass = None  # so that the suite sets the class up again
            n_details, n_skipped = len(self.details), len(self.skipped)
            unittest.TestSuite([test]).run(self)
            if name not in self._second_run:  # passed
                continue
            del self._second_run[name]
            if len(self.details) == n_details:
                del self.skipped[n_skipped:]
                self._line(f"FAIL {name} (its second run was skipped)")
                self.details.append((name, detail))
            else:
                self.first_runs.append((name, detail))

    def print_details(self) -> None:
        """Each failure's details, then those of the first runs of tests that failed twice and
        of the tests that passed only when run again."""
        for title, blocks in (("", self.details), (" (its first run)", self.first_runs),
                              (" (failed, then passed when run again)", self.flaky)):
            for name, detail in blocks:
                self.out(f"\n==== {name}{title}\n{detail.rstrip()}")

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


def run_modules(names, pattern, result, last=()) -> None:
    """Run the tests of each module (imported by name) that match pattern into result, the
    failed ones a second time before the modules in last (the checks over the whole run); a
    module that does not import is a failure, not a crash of the run."""
    loader = unittest.TestLoader()
    for name in names:
        if name in last:
            result.run_failed_again()
        try:
            module = importlib.import_module(name)
        except Exception:
            result._fail(name, traceback.format_exc())
            continue
        filter_suite(loader.loadTestsFromModule(module), pattern).run(result)
    result.run_failed_again()


def filter_suite(suite, pattern):
    out = unittest.TestSuite()
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            out.addTest(filter_suite(t, pattern))
        elif pattern is None or pattern in t.id():
            out.addTest(t)
    return out

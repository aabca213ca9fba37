"""wait.py: the one bounded wait the tests poll with."""
import time


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1,
               error: type[Exception] = AssertionError):
    """Poll predicate() until it is truthy and return its value; after timeout seconds raise
    error naming what was awaited (an AssertionError subclass fails the test, not errors it)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise error(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)

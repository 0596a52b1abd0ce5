"""What the Kubernetes check scripts share: a failed check, an assertion
that raises it, and polling until a condition holds."""
import time


class CheckFailed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


def wait(what, fn, timeout=60.0, every=0.1):
    """Polls fn() until it returns something truthy; returns that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(every)
    raise CheckFailed(f"timed out after {timeout:.0f} s waiting for {what}")

"""Time limits for running a student's code: one policy for the self-check, the notebook and the grader.

Each probe may run :data:`PROBE_TIMEOUT` seconds. Once a probe of a TODO has
timed out, that TODO's later probes get :data:`RETRY_TIMEOUT` (the reference
needs a few milliseconds each), and a call that already timed out is not run
again. In-process runners enforce a limit with :func:`time_limit` (a signal,
so it stops pure-Python loops); the grader kills its child process instead.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading

PROBE_TIMEOUT = 4.0
RETRY_TIMEOUT = 1.0


class CheckTimeout(BaseException):
    """Raised inside code that ran past its time limit (a BaseException, so ``except Exception`` cannot eat it)."""


class TimeoutPolicy:
    """How long the next call may run, and which calls are not worth repeating."""

    def __init__(self, timeout: float = PROBE_TIMEOUT, retry_timeout: float = RETRY_TIMEOUT) -> None:
        self.timeout = timeout
        self.retry_timeout = min(timeout, retry_timeout)
        self.slow_todos: set = set()
        self.lost_calls: dict[str, str] = {}

    @staticmethod
    def call_key(probe: str, args: dict) -> str:
        return json.dumps([probe, args], sort_keys=True, default=repr)

    def limit(self, todo: int | None) -> float:
        return self.retry_timeout if todo in self.slow_todos else self.timeout

    def lost(self, probe: str, args: dict) -> str | None:
        """Why this same call failed before (a timeout or a dead process), or None."""
        return self.lost_calls.get(self.call_key(probe, args))

    def record_loss(self, probe: str, args: dict, todo: int | None, why: str, timed_out: bool) -> None:
        self.lost_calls[self.call_key(probe, args)] = why
        if timed_out:
            self.slow_todos.add(todo)


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise :class:`CheckTimeout` in this thread after ``seconds``, and again every second until the block ends.

    Repeating matters: code that catches everything (``except:``) and loops
    on gets interrupted again. Only in the main thread, where signals work;
    elsewhere the block runs without a limit.
    """
    usable = seconds > 0 and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def expire(_signum, _frame):
        raise CheckTimeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

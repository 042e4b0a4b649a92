"""``kvkit grade``: run the public and hidden checks on one submission.

This process runs pytest over the check files and judges every observation;
the student's code runs only in the child process of :mod:`kvkit.remote`,
started from a :class:`~kvkit.sandbox.Sandbox` copy.
"""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path

import pytest

from kvchecks.plugin import SCOREBOARD, Result

from .errors import UsageError
from .paths import HIDDEN_TESTS, PUBLIC_TESTS, ROOT
from .remote import RemoteBackend, SubmissionProcess
from .report import Report
from .sandbox import Sandbox

PROBE_TIMEOUT = 10.0
STARTUP_TIMEOUT = 120.0


class _Grading:
    """A pytest plugin that hands the checks the child-process backend and keeps the scoreboard."""

    def __init__(self, backend: RemoteBackend) -> None:
        self.backend = backend
        self.results: list[Result] = []
        self.collected: list[str] = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        config.kvkit_backend = self.backend

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = [item.nodeid.split("/")[-1] for item in session.items]

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        board = config.pluginmanager.get_plugin(SCOREBOARD)
        self.results = list(board.results) if board else []


def run_checks(backend: RemoteBackend, hidden: bool = True) -> list[Result]:
    """Run every graded check with ``backend``; a check that left no result counts as failed."""
    plugin = _Grading(backend)
    paths = [str(PUBLIC_TESTS)] + ([str(HIDDEN_TESTS)] if hidden and HIDDEN_TESTS.is_dir() else [])
    args = [*paths, "--rootdir", str(ROOT), "-p", "kvchecks.plugin", "-p", "no:cacheprovider", "-q",
            "--tb=line", "-W", "ignore"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = pytest.main(args, plugins=[plugin])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or not plugin.collected:
        raise RuntimeError(f"the grader's own checks could not run (pytest exit {code}):\n{out.getvalue()[-3000:]}")
    done = {r.name for r in plugin.results}
    missing = [name for name in plugin.collected if name not in done]
    return plugin.results + [Result(name, 0, 0, False, "no result was recorded for this check", False)
                             for name in missing]


def grade(submission: Path, hidden: bool = True, timeout: float = PROBE_TIMEOUT) -> Report:
    started = time.perf_counter()
    with Sandbox(submission) as box:
        process = SubmissionProcess(box.submission, box.harness, box.workdir, box.log, STARTUP_TIMEOUT)
        backend = RemoteBackend(process, timeout)
        backend.start()  # the child imports torch while this process does the same
        try:
            results = run_checks(backend, hidden)
        finally:
            backend.close()
    return Report(str(submission), results, time.perf_counter() - started)


def run(args) -> int:
    report = grade(Path(args.submission), hidden=not args.public_only, timeout=args.timeout)
    print(report.table())
    if args.json:
        report.write_json(Path(args.json))
        print(f"wrote {args.json}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("grade", help="grade one submission (a folder holding kvcache/) with public and hidden checks")
    p.add_argument("submission", help="folder that holds the student's kvcache/ package")
    p.add_argument("--json", metavar="RESULTS_JSON", help="also write Gradescope's results.json here")
    p.add_argument("--public-only", action="store_true", help="run only the public checks")
    p.add_argument("--timeout", type=float, default=PROBE_TIMEOUT, help="seconds each check may run (default %(default)s)")
    p.set_defaults(func=run)

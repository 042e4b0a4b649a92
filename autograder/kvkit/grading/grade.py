"""Run the public and hidden checks on one submission: the grading of ``kvkit grade`` (:mod:`kvkit.commands.grade`)
and of every other grading path.

This process runs pytest over the check files and judges every observation;
the student's code runs only in the child process of :mod:`kvkit.grading.remote`,
started from a :class:`~kvkit.grading.sandbox.Sandbox` copy. Every check runs on the
published inputs and again on inputs drawn now (:mod:`kvkit.grading.fresh`).

Importing this module registers the graders' message catalogue (``kvkit``)
with :mod:`kvchecks.i18n` (the plugin registers the hidden checks' where they
run), so every grading path (``kvkit grade``, ``grade-all``, Gradescope,
nbgrader) reports in the language it is given: :func:`grade` takes the
assignment (a :class:`~kvkit.paths.Layout`) and the language as values.
"""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import replace
from pathlib import Path

import pytest

from kvchecks.i18n import _, speaking
from kvchecks.plugin import SCOREBOARD, Result
from kvchecks.timing import PROBE_TIMEOUT, RETRY_TIMEOUT

from ..paths import Layout
from ..registry import ROOT
from ..stopping import interruption
from .fresh import FreshInputs
from .intake import Submission, received
from .notebooks import notebook_places
from .remote.backend import RemoteBackend
from .remote.output import OutputTail
from .remote.process import SubmissionProcess
from .remote.warm import Warm
from .report import Report
from .sandbox import CONFINED, NO_ISOLATION, Sandbox, submission_sandbox

IMPORT_TIMEOUT = 20.0  # the student's import of their package
STARTUP_TIMEOUT = 120.0  # the child's own start (torch's import), before any student code
BUDGET = 240.0  # seconds of probes per submission in all
MEMORY_MB = 1536  # address space of the child (torch itself takes about 650 MB)
# pytest's plugins that grading does not use, each a cost per grading (the unraisable-exception plugin's garbage
# collections at the end of a run take longer than the run's start; the checks use no logs, warnings or caches)
UNUSED_PLUGINS = [arg for name in ("cacheprovider", "unraisableexception", "threadexception", "logging", "warnings",
                                   "faulthandler", "doctest", "junitxml", "pastebin", "legacypath", "stepwise")
                  for arg in ("-p", f"no:{name}")]


class _Grading:
    """A pytest plugin: the checks get the child-process backend and the fresh-input ``expected``, each check
    runs on published and fresh inputs, and the scoreboard is kept."""

    def __init__(self, backend: RemoteBackend, fresh: FreshInputs) -> None:
        self.backend = backend
        self.fresh = fresh
        self.results: list[Result] = []
        self.collected: dict[str, dict] = {}  # check name -> its todo, points and hidden properties

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        config.kvkit_backend = self.fresh.probe(self.backend)
        config.kvkit_expected = self.fresh.expected

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool:
        self.fresh.run_check(pyfuncitem)
        return True

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = {item.nodeid.split("/")[-1]: dict(item.user_properties) for item in session.items}

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        board = config.pluginmanager.get_plugin(SCOREBOARD)
        self.results = list(board.results) if board else []


def run_checks(layout: Layout, backend: RemoteBackend, fresh: FreshInputs, lang: str = "en",
               hidden: bool = True) -> list[Result]:
    """Run every graded check of ``layout``'s assignment with ``backend``, its messages in ``lang``; a check that
    left no result counts as failed."""
    plugin = _Grading(backend, fresh)
    hidden_tests = layout.hidden_tests
    paths = [str(layout.public_tests)] + ([str(hidden_tests)] if hidden and hidden_tests.is_dir() else [])
    args = [*paths, "--rootdir", str(ROOT), "-p", "kvchecks.plugin", *UNUSED_PLUGINS, "-q", "--lang", lang,
            "--tb=line", "-W", "ignore", "--capture=no"]  # no capture of the process's own file descriptors
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = pytest.main(args, plugins=[plugin])
    if code == pytest.ExitCode.INTERRUPTED:  # Ctrl-C or a stop signal (kvkit.stopping), which pytest took in
        raise interruption()
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or not plugin.collected:
        raise RuntimeError(f"the grader's own checks could not run (pytest exit {code}):\n{out.getvalue()[-3000:]}")
    done = {r.name for r in plugin.results}
    return plugin.results + [Result(name, props["todo"], props["points"], False,
                                    _("no result was recorded for this check"), props["hidden"])
                             for name, props in plugin.collected.items() if name not in done]


def grade(layout: Layout, submission: Path | Submission, hidden: bool = True, timeout: float = PROBE_TIMEOUT, *,
          lang: str = "en", hide: list[Path] = (), memory_mb: int | None = MEMORY_MB,
          budget: float | None = BUDGET, warm: Warm | None = None) -> Report:
    """Grade one submission of ``layout``'s assignment, reporting in ``lang``: a path (a folder, a .zip or a
    notebook), taken in by :mod:`kvkit.grading.intake`, or a :class:`~kvkit.grading.intake.Submission` already taken in.

    ``hide`` names more folders the student's process must not read (e.g. the
    other submissions of a batch). With ``warm`` (a worker that grades many
    submissions: :mod:`kvkit.grading.remote.warm`), the child is forked by the
    worker's zygote where the mode allows, and the fresh inputs' draw is the
    worker's where the mode allows; the grade is the same.
    """
    if not isinstance(submission, Submission):
        with received(layout, submission) as taken:
            return grade(layout, taken, hidden, timeout, lang=lang, hide=[Path(submission), *hide],
                         memory_mb=memory_mb, budget=budget, warm=warm)
    started = time.perf_counter()
    zygote = warm.zygote(layout) if warm is not None else None
    box = submission_sandbox(layout, submission.folder, hide=[submission.folder, *hide],
                             mode=warm.mode if warm is not None else None, harness=zygote is None)
    with speaking(lang), box:
        output = OutputTail()
        memory = memory_mb * 1024 * 1024 if memory_mb else None

        def spawn() -> SubmissionProcess:
            return SubmissionProcess(box, output, memory, STARTUP_TIMEOUT, max(IMPORT_TIMEOUT, 2 * timeout),
                                     layout.assignment.package, lang, zygote)

        backend = RemoteBackend(spawn, timeout, retry_timeout=RETRY_TIMEOUT, budget=budget,
                                memory_note=f"{memory_mb} MB" if memory_mb else None)
        backend.start()  # the child starts while this process runs pytest's start
        fresh = warm.fresh_inputs(layout) if warm is not None else FreshInputs(layout.reference)
        try:
            results = run_checks(layout, backend, fresh, lang, hidden)
        finally:
            backend.close()
        if backend.grader_error is not None:
            raise backend.grader_error
        package = layout.assignment.package
        results = [replace(r, message=notebook_places(r.message, submission.places, package)) for r in results]
        notes = [*submission.notes, *_notes(box, backend, output)]
    return Report(submission.given, layout.assignment.todos, results, time.perf_counter() - started, lang=lang,
                  notes=notes, fresh_key=fresh.secret)


def _notes(box: Sandbox, backend: RemoteBackend, output: OutputTail) -> list[str]:
    """Lines for the end of the report: anything unusual about how the student's code ran."""
    notes = []
    info = backend.info or {}
    # A WARNING note starts with "WARNING" in every language: nbgrader's log (kvkit.course.autograde) tells them apart
    # so.
    if box.mode not in CONFINED or info.get("mode") not in CONFINED:
        notes.append(_(NO_ISOLATION))
    for problem in info.get("problems") or []:
        notes.append(_("WARNING: the student's process was confined with a gap: {problem}.").format(
            problem=str(problem)[:200]))
    if info.get("exposed"):
        notes.append(_("WARNING: the student's process could read {paths}.").format(paths=", ".join(info["exposed"])))
    if backend.timeouts or backend.crashes:
        notes.append(_("The submission's process was restarted {restarts} time(s) ({timeouts} timeout(s), {crashes} "
                       "crash(es)).").format(restarts=backend.timeouts + backend.crashes, timeouts=backend.timeouts,
                                             crashes=backend.crashes))
    if output.total:
        lines = output.text(600).strip().splitlines()[-8:]
        quoted = "\n".join("  | " + line[-150:] for line in lines)  # quoted, so it cannot pass for the grader's lines
        notes.append(_("The submission's code printed {count} bytes; the end of it:").format(count=output.total)
                     + "\n" + quoted)
    return notes

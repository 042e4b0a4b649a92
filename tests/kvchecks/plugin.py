"""The pytest plugin behind every graded test run.

- The assignment: the manifest the test paths lie under (``pytest
  tests/kv_cache``), else the one beside the checks (the bundle's layout, see
  :mod:`kvchecks.assignment`). A run whose paths hold no assignment's checks
  (the kit's own tests) has none: it grades nothing.
- ``--impl assignments|reference|PATH`` picks the package that a plain
  ``pytest`` checks (default: ``assignments``), in this process, with a time
  limit per probe (:mod:`kvchecks.timing`).
- Fixtures ``probe`` (runs a probe on that package) and ``expected`` (the
  reference's saved observation of the same probe call, and of known
  mistakes).
- Markers ``points(n)`` and ``todo1`` .. ``todoN`` on every graded test, and
  ``uses(j, ...)`` on a check that also runs other TODOs' code. The checks
  run TODO by TODO; a failure prints its reason in a few lines (no traceback
  of the checks' code), and a failing check that runs other TODOs says which
  TODO it blames, or that it is blocked by another TODO that fails its own
  checks (:mod:`kvchecks.blame`); the run ends with a score per TODO, also
  when it is interrupted.
- ``--lang en|ja``: the language of the failure reasons and the score table
  (``--lang ja``: Japanese), from ``pytest_configure`` (before any test module
  is imported) to the end of the run (:func:`kvchecks.i18n.speaking`); without
  it, what a student's shell asks for (``KVKIT_LANG=ja pytest``), else English.
- A grader may set ``config.kvkit_backend`` (a probe runner) and
  ``config.kvkit_expected`` (``folder -> Expected``) before collection, and
  read ``Scoreboard.results``.
"""

from __future__ import annotations

import builtins
import contextlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from . import assignment, blame, context, i18n
from .backends import InProcessBackend, find_package
from .failures import check_failure
from .goldens import Expected, GoldenFile
from .i18n import _, ljust, ngettext, width

SCOREBOARD = "kvkit-scoreboard"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kvkit", "KV-cache exercise")
    group.addoption("--impl", default="assignments",
                    help="which package to check: assignments (default), or --impl=FOLDER holding it")
    group.addoption("--lang", choices=i18n.LANGUAGES, default=None,
                    help="the language of the failure reasons and the score table: en or ja (default: "
                         f"${i18n.ENV}, else en)")


@dataclass
class Result:
    name: str  # file::test
    todo: int
    points: float
    passed: bool
    message: str
    hidden: bool
    uses: tuple[int, ...] = ()  # the other TODOs the check runs (its uses marker, and what it found running)
    unfinished: tuple[int, ...] = ()  # the TODOs whose NotImplementedError it met
    recognised: tuple[int, ...] = ()  # the TODOs of the known mistakes it recognised in the student's output
    blame: str = ""  # a failing check's blame (kvchecks.blame): "own", "blocked" or "unknown"
    blocked_by: tuple[int, ...] = ()  # blame "blocked": the TODOs to fix first (the check scores 0 until then)


class Scoreboard:
    """Collects one :class:`Result` per graded test, and counts the graded tests selected to run."""

    def __init__(self) -> None:
        self.results: list[Result] = []
        self.reports: list[pytest.TestReport | None] = []  # each result's report, whose failure text pytest prints
        self.selected = 0

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.selected = sum(graded_todo(item) is not None for item in session.items)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        failed_setup = report.when == "setup" and not report.passed
        if not (report.when == "call" or failed_setup):
            return
        props = dict(report.user_properties)
        if "points" not in props:
            return
        message = ""
        if not report.passed:
            crash = getattr(report.longrepr, "reprcrash", None)
            message = crash.message if crash is not None else str(report.longrepr)
        name = report.nodeid.split("/")[-1]
        self.results.append(Result(name, props["todo"], props["points"], report.passed, message, props["hidden"],
                                   tuple(props.get("uses", ())), tuple(props.get("unfinished", ())),
                                   tuple(props.get("recognised", ()))))
        self.reports.append(report)
        context.record(props["todo"], report.passed)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Every failure's blame, from all the checks that ran, before pytest prints the failures."""
        self.results = blame.apply(self.results)
        for result, report in zip(self.results, self.reports):
            if result.blame and report is not None and isinstance(report.longrepr, str):
                report.longrepr = result.message


def resolve_impl(rootpath: Path, impl: str) -> Path:
    """The folder holding the assignment's package that ``--impl`` names."""
    work = assignment.current()
    named = {"assignments": work.folders["skeleton"], "reference": work.folders["reference"]}
    if impl in named:  # the kit's folder for it, or (in the student's bundle) the folder of that name
        candidates = [rootpath / named[impl], rootpath / impl]
        folder = next((c for c in candidates if (c / work.package / "__init__.py").is_file()), candidates[0])
    else:
        folder = Path(impl).expanduser().resolve()
    try:
        find_package(folder)
    except FileNotFoundError as err:
        raise pytest.UsageError(f"--impl: {err}; give 'assignments' or a folder holding {work.package}/ (write "
                                f"--impl=FOLDER)")
    return folder


def choose_assignment(config: pytest.Config) -> assignment.Assignment | None:
    """The run's assignment: the manifest that its test paths lie under, when they name one (one run checks one
    assignment), else the one beside the checks, else none (a run of no assignment's checks)."""
    found: set[Path] = set()
    for arg in config.args:
        path = Path(arg.split("::")[0])
        found.update(assignment.manifests_under(path if path.is_absolute() else Path(config.invocation_params.dir)
                                                / path, config.rootpath))
    if len(found) > 1:
        folders = " or ".join(f"pytest {m.parent.relative_to(config.rootpath)}" if m.is_relative_to(config.rootpath)
                              else str(m.parent) for m in sorted(found))
        raise pytest.UsageError(f"these paths hold the checks of {len(found)} assignments; run one at a time: "
                                f"{folders}")
    if found:
        assignment.use(found.pop())
    try:
        return assignment.current()
    except FileNotFoundError:
        return None


def choose_language(config: pytest.Config) -> None:
    """``--lang`` (else what a student's shell asks for): this run's language, from before any test module is
    imported until the run ends (:func:`pytest_unconfigure`)."""
    lang = config.getoption("lang", None) or i18n.asked_in_environment()
    config._kvkit_speaking = contextlib.ExitStack()
    config._kvkit_speaking.enter_context(i18n.speaking(lang))


def add_hidden_catalogue(config: pytest.Config, work: assignment.Assignment) -> None:
    """The hidden checks' messages (``<name>_hidden``), where the hidden checks are (the kit, not a student's copy)."""
    hidden = work.folders.get("hidden_tests")
    if hidden and (config.rootpath / hidden / "locale").is_dir():
        i18n.add_domain(f"{work.name}_hidden", config.rootpath / hidden / "locale")


def pytest_configure(config: pytest.Config) -> None:
    choose_language(config)
    config.addinivalue_line("markers", "points(n): how many points a graded test is worth")
    config.addinivalue_line("markers", "uses(j, ...): the other TODOs whose code a graded test runs")
    work = choose_assignment(config)
    if work is None:  # no assignment's checks in this run (the kit's own tests): nothing to grade
        return
    work.checks_on_path()  # for the tests' own imports of it (which import torch: after the options' checks)
    add_hidden_catalogue(config, work)
    context.reset()
    for todo in work.todos.values():
        config.addinivalue_line("markers", f"{todo.marker}: checks of TODO {todo.number}, {todo.function}")
    if not config.pluginmanager.has_plugin(SCOREBOARD):
        config.pluginmanager.register(Scoreboard(), SCOREBOARD)
    config.pluginmanager.register(_ImplCheck(), "kvkit-impl-check")
    if getattr(config.option, "reportchars", None) == "fE":  # pytest's default: the score table ends the run instead
        config.option.reportchars = "E"  # of a second list of the failures printed above it (-rf brings it back)


def pytest_sessionstart(session: pytest.Session) -> None:
    """torch, once the options are known to be good (a run that stops on them does not wait for its import)."""
    import torch

    torch.set_num_threads(1)  # the checks' tensors are tiny; spinning threads only slow a busy machine


class _ImplCheck:
    """Stops the run with one line when ``--impl`` names no ``kvcache`` (after a grader set its backend)."""

    @pytest.hookimpl(trylast=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        if getattr(config, "kvkit_backend", None) is None:
            config.kvkit_impl = resolve_impl(config.rootpath, config.getoption("impl"))


def graded_todo(item: pytest.Item) -> int | None:
    return dict(item.user_properties).get("todo")


def graded_assignment() -> assignment.Assignment:
    """The run's assignment, which its graded tests need; one line when the run has none."""
    try:
        return assignment.current()
    except FileNotFoundError as err:
        raise pytest.UsageError(str(err)) from None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every graded test (under ``tests/`` or ``hidden/``) needs one ``todoN`` and one ``points`` marker.

    The checks then run TODO by TODO (public before hidden within a TODO), so
    a whole-model check knows how the TODOs it depends on have done.
    """
    for item in items:
        parts = Path(str(item.path)).parts
        if "tests" not in parts and "hidden" not in parts:
            continue
        work = graded_assignment()
        todos = [t.number for t in work.todos.values() if item.get_closest_marker(t.marker)]
        points = item.get_closest_marker("points")
        if len(todos) != 1 or points is None:
            raise pytest.UsageError(f"{item.nodeid}: a graded test needs one todoN marker and a points(n) marker")
        hidden = "hidden" in parts
        uses = sorted({n for mark in item.iter_markers("uses") for n in mark.args} - {todos[0]})
        if any(n not in work.todos for n in uses):
            raise pytest.UsageError(f"{item.nodeid}: uses({', '.join(map(str, uses))}) names a TODO that does not "
                                    "exist")
        item.user_properties += [("todo", todos[0]), ("points", points.args[0]), ("hidden", hidden),
                                 ("uses", tuple(uses))]
    items.sort(key=lambda item: graded_todo(item) or 0)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    context.begin(graded_todo(item))


_GROUP = getattr(builtins, "BaseExceptionGroup", None)  # Python 3.11 on (the students' may be older)


def _reason(call: pytest.CallInfo, groups: bool = False) -> str | None:
    """The reason a graded check's ``call`` failed, as the student reads it; None where pytest's own report stands
    (a skip, an xfail, an interrupt, a usage error; an exception group unless ``groups``: pytest decides whether
    one of skips is a skip)."""
    err = call.excinfo.value if call.excinfo is not None else None
    if err is None or isinstance(err, (KeyboardInterrupt, pytest.UsageError, pytest.skip.Exception,
                                       pytest.xfail.Exception)) or (_GROUP and isinstance(err, _GROUP) and not groups):
        return None
    entry = call.excinfo.traceback[-1]
    return check_failure(err, f"{Path(str(entry.path)).name}:{entry.lineno + 1}")


def _what_it_ran(item: pytest.Item) -> list[tuple[str, tuple]]:
    """What a failed check found running (:mod:`kvchecks.blame`): the other TODOs it ran, the stubs it reached, the
    known mistakes it recognised."""
    declared = dict(item.user_properties).get("uses", ())
    return [("uses", tuple(sorted((set(declared) | context.CURRENT.uses) - {graded_todo(item)}))),
            ("unfinished", tuple(sorted(context.CURRENT.unfinished))),
            ("recognised", tuple(sorted(context.CURRENT.recognised)))]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport | None:
    """A failed check's report, with its reason as the whole failure: pytest's rendering of the traceback (a fifth
    of a grading's time, and noise to a student) is never made."""
    if graded_todo(item) is None or call.excinfo is None:
        return None
    ran = _what_it_ran(item)  # as the check left it, before its reason is worded
    reason = _reason(call)
    if reason is None:
        return None
    sections = [(f"Captured {key} {when}", content) for when, key, content in item._report_sections]
    return pytest.TestReport(item.nodeid, item.location, dict.fromkeys(item.keywords, 1), "failed", reason, call.when,
                             sections=sections, duration=call.duration, start=call.start, stop=call.stop,
                             user_properties=[*item.user_properties, *ran])


@pytest.hookimpl(hookwrapper=True, specname="pytest_runtest_makereport")
def pytest_runtest_makereport_by_pytest(item: pytest.Item, call: pytest.CallInfo):
    """A failed check's report that pytest made (an exception group): what it ran, then its reason."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and graded_todo(item) is not None and "unfinished" not in dict(report.user_properties):
        report.user_properties += _what_it_ran(item)
        if not isinstance(report.longrepr, str):
            report.longrepr = _reason(call, groups=True) or report.longrepr


@pytest.fixture(scope="session")
def probe(request: pytest.FixtureRequest):
    """``probe(name, **args)``: run a probe on the implementation under test and return its observations."""
    backend = getattr(request.config, "kvkit_backend", None)
    return backend if backend is not None else InProcessBackend(request.config.kvkit_impl)


@pytest.fixture
def expected(request: pytest.FixtureRequest) -> Expected:
    """``expected(name, **args)``: the reference's observation of the same probe call (see :class:`Expected`)."""
    folder = Path(str(request.path)).parent
    factory = getattr(request.config, "kvkit_expected", None)
    if factory is not None:
        return factory(folder)
    files = request.config.__dict__.setdefault("_kvkit_goldens", {})
    golden = files.setdefault(folder, GoldenFile(folder / "goldens.json"))
    return Expected(golden.lookup)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Print the score per TODO as the run's last lines (also after Ctrl-C: what ran so far)."""
    try:
        score_table(config)
    finally:
        if hasattr(config, "_kvkit_speaking"):  # the language as it was before this run
            config.__dict__.pop("_kvkit_speaking").close()


def score_table(config: pytest.Config) -> None:
    board = config.pluginmanager.get_plugin(SCOREBOARD)
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    if board is None or terminal is None or not board.results:
        return
    write = terminal.write_line
    work = assignment.current()
    title = _("{title}: score per TODO").format(title=work.title_in(i18n.language()))
    wide = width(title) - len(title)  # pytest centres a title by its characters; a Japanese one takes more columns
    screen = getattr(getattr(terminal, "_tw", None), "fullwidth", None)
    if wide and screen:
        terminal.section(title, fullwidth=screen - wide)
    else:
        terminal.section(title)
    for line in score_lines(board.results):
        write(line)
    missing = board.selected - len(board.results)
    if missing > 0:
        write(_("{missing} of the {selected} selected checks did not run (interrupted): the total counts only the "
                "checks that ran.").format(missing=missing, selected=board.selected))


def score_lines(results: list[Result]) -> list[str]:
    """The score table's lines: one per TODO (points, checks passed, checks blocked), the total, and which TODOs
    to fix first. The self-check and the notebook's last cell print the same lines."""
    work = assignment.current()
    lines = []
    total = earned = 0.0
    for todo in work.todos.values():
        mine = [r for r in results if r.todo == todo.number]
        if not mine:
            continue
        got = sum(r.points for r in mine if r.passed)
        out_of = sum(r.points for r in mine)
        total, earned = total + out_of, earned + got
        passed = sum(r.passed for r in mine)
        blocked = [r for r in mine if r.blame == blame.BLOCKED]
        unknown = [r for r in mine if r.blame == blame.UNKNOWN]
        extras = []
        if blocked:
            extras.append(ngettext("{count} blocked by {todos}", "{count} blocked by {todos}", len(blocked)).format(
                count=len(blocked), todos=blame.short_text({t for r in blocked for t in r.blocked_by})))
        if unknown:
            extras.append(ngettext("{count} with a cause not known", "{count} with a cause not known",
                                   len(unknown)).format(count=len(unknown)))
        if extras:
            lines.append(_("TODO {todo}  {function:<32} {got:5g} / {possible:<5g} ({passed}/{count} checks pass; "
                           "{extra})").format(todo=todo.number, function=todo.function, got=got, possible=out_of,
                                              passed=passed, count=len(mine), extra=extras[0] if len(extras) == 1 else _("{first}; {second}").format(
                                                  first=extras[0], second=extras[1])))
        else:
            lines.append(_("TODO {todo}  {function:<32} {got:5g} / {possible:<5g} ({passed}/{count} checks "
                           "pass)").format(todo=todo.number, function=todo.function, got=got, possible=out_of,
                                           passed=passed, count=len(mine)))
    label = _("Total")
    lines.append(f"{ljust(label, 40)} {earned:5g} / {total:<5g}")
    first = blame.blocking(results)
    if first:
        lines.append(fix_first(first))
    return lines


def fix_first(first: dict[int, int]) -> str:
    """The line naming the TODOs that block checks of other TODOs (``TODO -> checks it blocks``)."""
    return ngettext("Fix first: {todos}, which fails its own checks (checks of other TODOs it blocks: {count}; they "
                    "score 0 until then).",
                    "Fix first: {todos}, which fail their own checks (checks of other TODOs they block: {count}; "
                    "they score 0 until then).", len(first)).format(todos=blame.short_text(first),
                                                                   count=sum(first.values()))

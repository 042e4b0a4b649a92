"""Run the graded checks inside a Jupyter notebook, on the classes the notebook itself defines.

The nbgrader notebook ships this package and the public test files next to it.
Each autograder-test cell calls one graded test function (the same function
``pytest`` and ``kvkit grade`` run) with two arguments built here:

- ``probe``: runs a probe of the assignment's checks package on a namespace
  holding the notebook's classes (the manifest's ``exports``, read from the
  notebook's globals at each call, so re-running a cell takes effect), under the same
  per-probe time limits as the self-check (:mod:`kvchecks.timing`);
- ``expected``: the reference's saved observation of the same probe call
  (``tests/goldens.json`` for public checks; for hidden checks the golden
  entries travel inside the hidden-test region of the cell).

A check that passes prints one line. A check that fails writes its reason to
stderr and raises nothing: a test cell with stderr output scores zero, and no
traceback shows the checks' code. The reason names the TODO, and for an
exception the student's own cell and line; a check that runs other TODOs says
what their checks so far tell (:mod:`kvchecks.blame`: blocked by a TODO whose
own checks fail, or the cause not known yet). ``checks.score_table()`` prints
the self-check's score per TODO for the checks that ran, and ``with
checks.demo():`` runs a demo cell so that an unfinished TODO is named in one
line instead of a traceback (Run All goes on). What they print is in the
language the setup cell names (an edition's: ``NotebookChecks(globals(),
lang="ja")``), else the one the student's environment asks for. This is the
student's own check; graders judge the notebook's code outside the kernel.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import io
import json
import sys
import traceback
import warnings
from pathlib import Path
from types import ModuleType

import torch

from . import blame, codec, context
from .backends import ProbeRunner
from .failures import check_failure, describe, format_error
from .goldens import Expected, GoldenFile, key
from . import i18n
from .i18n import _
from . import assignment

HERE = Path(__file__).resolve().parent
HIDDEN_FILENAME = "<hidden check>"
HIDDEN_LABEL = "hidden check"  # what a hidden check is called (its name is not in the student's notebook)


def is_cell_file(path: str) -> bool:
    """Whether a frame's file is one of the notebook's cells (not the checks, Python or a library)."""
    return not (path.startswith(str(HERE)) or path == HIDDEN_FILENAME or "site-packages" in path
                or "/lib/python" in path or path.startswith("<frozen"))


class NotebookPackage:
    """Stands for the student's package: its classes are looked up in the notebook's globals when used."""

    is_student_file = staticmethod(is_cell_file)

    def __init__(self, namespace: dict) -> None:
        self._namespace = namespace

    def __getattr__(self, name: str):
        if name in assignment.current().exports:
            if name in self._namespace:
                return self._namespace[name]
            raise AttributeError(_("the notebook defines no {name} (yet): run the cell that defines it (Kernel > "
                                   "Restart & Run All)").format(name=name))
        raise AttributeError(name)


def split_nodeid(nodeid: str) -> tuple[str, str]:
    """``"tests/test_x.py::test_y[3]"`` -> ``("tests/test_x.py", "test_y")``."""
    path, _, name = nodeid.partition("::")
    return path, name.split("[", 1)[0]


def todo_of(test, module: ModuleType) -> int | None:
    """The TODO a test function's ``todoN`` marker names (on the function or its module's ``pytestmark``)."""
    module_marks = getattr(module, "pytestmark", [])
    marks = [*getattr(test, "pytestmark", []), *(module_marks if isinstance(module_marks, list) else [module_marks])]
    names = {getattr(mark, "name", None) for mark in marks}
    found = [todo.number for todo in assignment.current().todos.values() if todo.marker in names]
    return found[0] if len(found) == 1 else None


def marks_of(test, module: ModuleType) -> dict:
    """The test's ``points`` and the TODOs of its ``uses`` marker (on the function or its module)."""
    module_marks = getattr(module, "pytestmark", [])
    marks = [*getattr(test, "pytestmark", []), *(module_marks if isinstance(module_marks, list) else [module_marks])]
    points = next((mark.args[0] for mark in marks if getattr(mark, "name", None) == "points"), 0)
    uses = {n for mark in marks if getattr(mark, "name", None) == "uses" for n in mark.args}
    return {"points": points, "uses": uses}


def describe_failure(err: BaseException) -> str:
    where = traceback.extract_tb(err.__traceback__)[-1:]
    return check_failure(err, f"{Path(where[0].filename).name}:{where[0].lineno}" if where else None)


class NotebookChecks:
    """``checks.run(nodeid, **params)`` and ``checks.run_hidden(nodeid, source, goldens, **params)`` for test cells.

    Both return None (a value would be read by nbgrader as a partial score); ``results`` maps each check to
    whether it passed.
    """

    def __init__(self, namespace: dict, folder: str | Path = ".", lang: str | None = None) -> None:
        """``lang``: the language of what the checks print (an edition's setup cell names its own); without it,
        what the student's environment asks for (:func:`kvchecks.i18n.asked_in_environment`)."""
        self.lang = lang or i18n.asked_in_environment()
        torch.set_num_threads(1)  # as in the self-check and the grader: the checks' tensors are tiny, threads only
        # slow a busy machine down (and a check's calls have 4 s)
        self.folder = Path(folder).resolve()
        self.probe = ProbeRunner(lambda: NotebookPackage(namespace), is_cell_file)
        self._modules: dict[str, ModuleType] = {}
        self._goldens: dict[Path, GoldenFile] = {}
        self.results: dict[str, bool] = {}
        self.records: dict[str, object] = {}  # check -> its kvchecks.plugin.Result, for the blame and score table
        context.reset()

    # -- public checks: the test files shipped next to the notebook -------------------------------------------------
    def _public_module(self, path: str) -> ModuleType:
        if path not in self._modules:
            file = self.folder / path
            name = f"_kvchecks_nb_{len(self._modules)}_{file.stem}"
            spec = importlib.util.spec_from_file_location(name, file)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            self._modules[path] = module
        return self._modules[path]

    def run(self, nodeid: str, **params) -> None:
        """Run the public graded test ``nodeid`` (``path::function[id]``) with the given parameters."""
        path, name = split_nodeid(nodeid)
        golden_path = (self.folder / path).parent / "goldens.json"
        golden = self._goldens.setdefault(golden_path, GoldenFile(golden_path))
        self._run(nodeid, lambda: self._public_module(path), name, Expected(golden.lookup), params,
                  key=f"{nodeid}{sorted(params.items())}")

    # -- hidden checks: their code and reference outputs come in the cell --------------------------------------------
    def run_hidden(self, nodeid: str, source: str, goldens: str, **params) -> None:
        """Run the hidden graded test ``nodeid`` from ``source`` (its module's code) and ``goldens`` (JSON)."""
        _, name = split_nodeid(nodeid)
        saved = json.loads(goldens)

        def load() -> ModuleType:
            module = ModuleType(f"_kvchecks_hidden_{name}")
            exec(compile(source, HIDDEN_FILENAME, "exec"), module.__dict__)
            return module

        def lookup(probe: str, args: dict, mistake: str | None = None):
            entry = saved.get(key(probe, args, mistake))
            if entry is None:
                raise LookupError(_("this hidden check has no reference output for {probe}").format(probe=probe))
            return codec.from_jsonable(entry)

        self._run(HIDDEN_LABEL, load, name, Expected(lookup), params, key=f"{nodeid}{sorted(params.items())}")

    # -- one check -----------------------------------------------------------------------------------------------------
    def _run(self, label: str, load, name: str, expected: Expected, params: dict, key: str = "") -> bool:
        with i18n.speaking(self.lang):  # each call: a notebook cell runs in a context of its own
            return self._check(label, load, name, expected, params, key)

    def _check(self, label: str, load, name: str, expected: Expected, params: dict, key: str) -> bool:
        printed = io.StringIO()
        failure = None
        todo = None
        marks = {"points": 0, "uses": set()}
        try:
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = load()  # importing the check's module (and pytest, the first time) is not timed
                test = getattr(module, name)
                todo = todo_of(test, module)
                marks = marks_of(test, module)
                context.begin(todo)
                wanted = inspect.signature(test).parameters
                kwargs = dict(params)
                if "probe" in wanted:
                    kwargs["probe"] = self.probe
                if "expected" in wanted:
                    kwargs["expected"] = expected
                test(**kwargs)
        except KeyboardInterrupt:
            raise
        except BaseException as err:  # the student's code may raise anything; it fails this check only
            failure = describe_failure(err)
        self.results[label] = failure is None
        if todo is not None:
            context.record(todo, failure is None)
            failure = self._blamed(key or label, label, todo, marks, failure)
        shown = printed.getvalue()
        if shown.strip():
            lines = shown.splitlines()
            print(_("your code printed:") + "\n  " + "\n  ".join(lines[:20]) + ("\n  ..." if len(lines) > 20 else ""))
        check = _("hidden check") if label == HIDDEN_LABEL else label  # results keep the label in every language
        if failure is None:
            print(_("passed: {check}").format(check=check))
            return True
        sys.stderr.write(_("FAILED: {check}").format(check=check) + f"\n{failure}\n")
        sys.stderr.flush()
        return False

    def _blamed(self, key: str, label: str, todo: int, marks: dict, failure: str | None) -> str | None:
        """Keep this check's result; a failure comes back with what the checks run so far say of its cause."""
        from .plugin import Result  # pytest is there: the checks need it

        uses = tuple(sorted((set(marks["uses"]) | context.CURRENT.uses) - {todo}))
        self.records[key] = Result(label, todo, marks["points"], failure is None, failure or "",
                                   label == HIDDEN_LABEL, uses, tuple(sorted(context.CURRENT.unfinished)),
                                   tuple(sorted(context.CURRENT.recognised)))
        if failure is None:
            return None
        records = list(self.records.values())
        verdict = blame.assign([blame.record_of(r) for r in records])[records.index(self.records[key])]
        return blame.message(failure, verdict, todo)

    # -- the end of the notebook and its demos ------------------------------------------------------------------------
    def score_table(self) -> None:
        """Print the score per TODO of the checks run so far, as the self-check (``pytest``) prints it."""
        from .plugin import score_lines

        with i18n.speaking(self.lang):
            results = blame.apply(list(self.records.values()))
            if not results:
                print(_("No check has run yet: run the whole notebook (Kernel > Restart & Run All)."))
                return
            title = _("{title}: score per TODO").format(title=assignment.current().title_in(i18n.language()))
            print(title)
            print("\n".join(score_lines(results)))

    @contextlib.contextmanager
    def demo(self):
        """Run a demo cell's code; an exception from the student's code (an unfinished TODO above all) is told in a
        few lines, naming the TODO and its line, and the notebook goes on."""
        try:
            yield
        except Exception as err:  # a demo is not graded: say what stopped it, and let Run All go on
            with i18n.speaking(self.lang):
                found = describe(err, is_cell_file)
                if isinstance(err, NotImplementedError):
                    todo = found.get("todo")
                    needed = f"TODO {todo} ({assignment.current().todos[todo].function})" \
                        if todo in assignment.current().todos else _("a TODO")
                    print(_("This cell needs {todo}, which is not implemented yet: finish it, then run this cell "
                            "again.").format(todo=needed))
                else:
                    print(_("This cell stopped: {error}").format(error=format_error(found)))

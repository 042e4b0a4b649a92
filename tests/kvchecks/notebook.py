"""Run the graded checks inside a Jupyter notebook, on the classes the notebook itself defines.

The nbgrader notebook ships this package and the public test files next to it.
Each autograder-test cell calls one graded test function (the same function
``pytest`` and ``kvkit grade`` run) with two arguments built here:

- ``probe``: runs a probe from :mod:`kvchecks.probes` on a namespace holding
  the notebook's ``KVCache``, ``CacheOverflowError``, ``Attention``,
  ``Transformer`` and ``TransformerGenerator`` (read from the notebook's
  globals at each call, so re-running a cell takes effect);
- ``expected``: the reference's saved observation of the same probe call
  (``tests/goldens.json`` for public checks; for hidden checks the golden
  entries travel inside the hidden-test region of the cell).

A check that passes prints one line. A check that fails writes its reason to
stderr and raises nothing: nbgrader scores a test cell with stderr output as
zero, and no traceback shows the hidden checks' code. Each check runs under a
time limit (``KVKIT_CHECK_TIMEOUT`` seconds, default 5), so an endless loop
costs seconds.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import io
import json
import os
import signal
import sys
import threading
import traceback
import warnings
from pathlib import Path
from types import ModuleType

from . import codec
from .goldens import GoldenFile, key
from .probes import PROBES

NAMES = ("KVCache", "CacheOverflowError", "Attention", "Transformer", "TransformerGenerator")
DEFAULT_TIME_LIMIT = 5.0
HERE = Path(__file__).resolve().parent
HIDDEN_FILENAME = "<hidden check>"


class CheckTimeout(BaseException):
    """Raised inside a check that ran past its time limit (a BaseException, so ``except Exception`` cannot eat it)."""


class NotebookPackage:
    """Stands for the ``kvcache`` package: its classes are looked up in the notebook's globals when used."""

    def __init__(self, namespace: dict) -> None:
        self._namespace = namespace

    def __getattr__(self, name: str):
        if name in NAMES:
            if name in self._namespace:
                return self._namespace[name]
            raise AttributeError(f"the notebook defines no {name} (yet): run the cell that defines it "
                                 "(Kernel > Restart & Run All)")
        raise AttributeError(name)


class NamespaceBackend:
    """The ``probe`` fixture for a notebook: probes run on classes looked up in ``namespace``."""

    def __init__(self, namespace: dict) -> None:
        self.package = NotebookPackage(namespace)

    def __call__(self, probe: str, **args):
        result = PROBES[probe](self.package, **codec.loads(codec.dumps(args)))
        return codec.loads(codec.dumps(result))


def split_nodeid(nodeid: str) -> tuple[str, str]:
    """``"tests/test_x.py::test_y[3]"`` -> ``("tests/test_x.py", "test_y")``."""
    path, _, name = nodeid.partition("::")
    return path, name.split("[", 1)[0]


def _student_frames(err: BaseException, limit: int = 6) -> str:
    """The traceback lines that point into the student's own code (not the checks, not libraries)."""
    frames = [
        frame for frame in traceback.extract_tb(err.__traceback__)
        if not frame.filename.startswith(str(HERE)) and frame.filename != HIDDEN_FILENAME
        and "site-packages" not in frame.filename and "/lib/python" not in frame.filename
    ]
    return "".join(traceback.format_list(frames[-limit:]))


def describe_failure(err: BaseException, time_limit: float) -> str:
    if isinstance(err, AssertionError):
        return str(err)
    if isinstance(err, CheckTimeout):
        return f"timed out after {time_limit:g} s (an endless loop?)\n{_student_frames(err)}".rstrip()
    if isinstance(err, NotImplementedError):
        return f"not implemented yet: NotImplementedError {err}".rstrip()
    return f"your code raised {type(err).__name__}: {err}\n{_student_frames(err)}".rstrip()


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise :class:`CheckTimeout` in this thread after ``seconds`` (only in the main thread, where signals work)."""
    usable = seconds > 0 and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def expire(_signum, _frame):
        raise CheckTimeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class NotebookChecks:
    """``checks.run(nodeid, **params)`` and ``checks.run_hidden(nodeid, source, goldens, **params)`` for test cells.

    Both return None (a value would be read by nbgrader as a partial score); ``results`` maps each check to
    whether it passed.
    """

    def __init__(self, namespace: dict, folder: str | Path = ".", time_limit: float | None = None) -> None:
        self.folder = Path(folder).resolve()
        self.backend = NamespaceBackend(namespace)
        if time_limit is None:
            time_limit = float(os.environ.get("KVKIT_CHECK_TIMEOUT", DEFAULT_TIME_LIMIT))
        self.time_limit = time_limit
        self._modules: dict[str, ModuleType] = {}
        self._goldens: dict[Path, GoldenFile] = {}
        self.results: dict[str, bool] = {}

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
        self._run(nodeid, lambda: getattr(self._public_module(path), name),
                  lambda probe, **args: golden.lookup(probe, args), params)

    # -- hidden checks: their code and reference outputs come in the cell --------------------------------------------
    def run_hidden(self, nodeid: str, source: str, goldens: str, **params) -> None:
        """Run the hidden graded test ``nodeid`` from ``source`` (its module's code) and ``goldens`` (JSON)."""
        _, name = split_nodeid(nodeid)
        saved = json.loads(goldens)

        def load():
            module = ModuleType(f"_kvchecks_hidden_{name}")
            exec(compile(source, HIDDEN_FILENAME, "exec"), module.__dict__)
            return getattr(module, name)

        def lookup(probe, **args):
            entry = saved.get(key(probe, args))
            if entry is None:
                raise LookupError(f"this hidden check has no reference output for {probe}")
            return codec.from_jsonable(entry)

        self._run("hidden check", load, lookup, params)

    # -- one check -----------------------------------------------------------------------------------------------------
    def _run(self, label: str, load, lookup, params: dict) -> bool:
        printed = io.StringIO()
        failure = None
        try:
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                test = load()  # importing the check's module (and pytest, the first time) is not timed
                wanted = inspect.signature(test).parameters
                kwargs = dict(params)
                if "probe" in wanted:
                    kwargs["probe"] = self.backend
                if "expected" in wanted:
                    kwargs["expected"] = lookup
                with time_limit(self.time_limit):
                    test(**kwargs)
        except KeyboardInterrupt:
            raise
        except BaseException as err:  # the student's code may raise anything; it fails this check only
            failure = describe_failure(err, self.time_limit)
        self.results[label] = failure is None
        shown = printed.getvalue()
        if shown.strip():
            lines = shown.splitlines()
            print("your code printed:\n  " + "\n  ".join(lines[:20]) + ("\n  ..." if len(lines) > 20 else ""))
        if failure is None:
            print(f"passed: {label}")
            return True
        sys.stderr.write(f"FAILED: {label}\n{failure}\n")
        sys.stderr.flush()
        return False

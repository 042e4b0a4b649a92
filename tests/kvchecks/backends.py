"""Run probes against a ``kvcache`` package in this process: the self-check, golden recording, the reference.

A student's package runs under the per-probe time limits of
:mod:`kvchecks.timing`; its exceptions become :class:`StudentCodeError` with a
message that names the TODO, the exception and the student's own file and
line (:mod:`kvchecks.failures`). The reference (``trusted=True``) runs with
no limit, and its exceptions propagate: they are the kit's bugs.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from . import assignment, context
from .failures import StudentCodeError, describe, format_error, format_import_error, format_timeout, package_files
from .i18n import _
from .timing import CheckTimeout, TimeoutPolicy, time_limit

_loaded = itertools.count()


def find_package(folder: Path) -> Path:
    """The assignment's package directory inside ``folder``; ``FileNotFoundError`` with a clear message if none."""
    name = assignment.current().package
    package = Path(folder) / name
    if not (package / "__init__.py").is_file():
        raise FileNotFoundError(f"{folder} holds no {name} package (expected {package}/__init__.py)")
    return package


def load_package(folder: Path) -> ModuleType:
    """Import the assignment's package in ``folder`` under a private name, so several can coexist."""
    package = find_package(folder)
    name = f"_{assignment.current().package}_{next(_loaded)}"
    spec = importlib.util.spec_from_file_location(name, package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


class ProbeRunner:
    """``runner(probe, **args)``: the probe's observations on the package that ``load()`` gives, through the codec.

    ``is_student_file`` tells the student's frames from the rest in error
    messages. A ``trusted`` package (the reference) runs without limits and
    its exceptions propagate.
    """

    def __init__(self, load: Callable[[], object], is_student_file: Callable[[str], bool], trusted: bool = False,
                 policy: TimeoutPolicy | None = None) -> None:
        self._load_package = load
        self._student = is_student_file
        self.trusted = trusted
        self.policy = policy or TimeoutPolicy()
        self._package = None
        self._import_error: str | None = None
        self._probes = assignment.current().probe_table()
        from . import codec  # (torch: imported here, not with the plugin, which a run's bad options stop first)

        self._codec = codec  # bound before the package is loaded, as in the grader's child

    def _load(self):
        if self._package is None and self._import_error is None:
            try:
                self._package = self._load_package()
            except Exception as err:
                if self.trusted:
                    raise
                self._import_error = format_import_error(describe(err, self._student))
        if self._import_error is not None:
            context.import_failed()
            raise StudentCodeError(self._import_error)
        return self._package

    def __call__(self, probe: str, **args):
        package = self._load()
        args = self._codec.loads(self._codec.dumps(args))
        if self.trusted:
            return self._codec.loads(self._codec.dumps(self._probes[probe](package, **args)))
        todo = context.CURRENT.todo
        why = self.policy.lost(probe, args)
        if why is not None:
            raise StudentCodeError(_("{why} (the same call, made by an earlier check)").format(why=why))
        limit = self.policy.limit(todo)
        try:
            with time_limit(limit):
                result = self._probes[probe](package, **args)
        except CheckTimeout as err:
            message = format_timeout(describe(err, self._student), limit, probe)
            self.policy.record_loss(probe, args, todo, message, timed_out=True)
            raise StudentCodeError(message) from None
        except Exception as err:  # the student's code may raise anything; this check fails with the reason
            raise StudentCodeError(format_error(describe(err, self._student), todo)) from None
        return self._codec.loads(self._codec.dumps(result))


class InProcessBackend(ProbeRunner):
    """A :class:`ProbeRunner` for the ``kvcache`` package in ``folder`` (imported on first use)."""

    def __init__(self, folder: Path, trusted: bool = False, policy: TimeoutPolicy | None = None) -> None:
        self.folder = Path(folder)
        super().__init__(lambda: load_package(self.folder), package_files(str(find_package(self.folder))), trusted,
                         policy)

"""Which ``kvcache`` package ``kvkit bench``, ``chat-demo`` and ``generate`` run: ``--impl``, resolved once.

``--impl`` takes what ``kvkit grade`` takes (:func:`kvkit.intake.received`): a
folder holding ``kvcache/``, ``kvcache/`` itself, a copy of the exercise with
one ``kvcache`` package below, the package's loose files, a ``.zip`` or a
notebook. A path that exists, relative to the current folder, wins; the names
``reference`` and ``assignments`` mean the kit's own folders only when no such
path exists. The student's code is imported in this process, under a module
name of its own, so several packages can coexist.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from kvchecks.backends import load_package
from kvchecks.failures import describe, package_files, summary
from .paths import TODOS

from .errors import UsageError
from .intake import received
from .paths import ASSIGNMENT, ASSIGNMENTS, REFERENCE

PACKAGE = ASSIGNMENT.package

KIT_FOLDERS = {"reference": REFERENCE, "assignments": ASSIGNMENTS}


@dataclass(frozen=True)
class Implementation:
    """An imported ``kvcache`` package and where it came from."""

    module: ModuleType
    source: Path  # the path it resolved to (a folder, a zip or a notebook), absolute
    is_kit_reference: bool  # the kit's own solution, reference/kvcache


def add_impl_argument(parser) -> None:
    """The shared ``--impl`` option."""
    parser.add_argument(
        "--impl",
        default="reference",
        metavar="PATH",
        help=f"the {PACKAGE} to run: a folder holding {PACKAGE}/ (e.g. '.' in your copy of the exercise), {PACKAGE}/ "
        "itself, a .zip or a notebook, as kvkit grade takes; 'reference' or 'assignments' mean the kit's own "
        "folders unless such a path exists here (default: reference)",
    )


def impl_path(impl: str) -> Path:
    """The path ``--impl`` names: an existing path first, then the kit's ``reference``/``assignments``."""
    given = Path(impl).expanduser()
    if impl in KIT_FOLDERS and not given.exists():
        return KIT_FOLDERS[impl]
    return given


@contextmanager
def opened_impl(impl: str) -> Iterator[Implementation]:
    """The ``kvcache`` package that ``--impl`` names, imported; temporary copies live until the block ends.

    Inside the block, an unfinished TODO (``NotImplementedError``) and any other
    exception raised in the package's code become a one-line :class:`UsageError`.
    """
    source = impl_path(impl)
    with ExitStack() as stack:
        try:
            folder = stack.enter_context(received(source)).folder
        except UsageError as err:
            raise UsageError(f"--impl {impl}: {err}") from None
        module = import_impl(folder, impl)
        found = Implementation(module, source.resolve(), source.resolve() == REFERENCE.resolve())
        with student_errors_as_usage_errors(impl, folder / PACKAGE):
            yield found


def import_impl(folder: Path | str, impl: str | None = None) -> ModuleType:
    """Import the package in ``folder`` (see ``kvchecks.backends.load_package``); a failing import is one line."""
    folder = Path(folder).resolve()
    named = impl or str(folder)
    if not (folder / PACKAGE / "__init__.py").is_file():
        raise UsageError(f"--impl {named}: no {PACKAGE} package in {folder} (expected {PACKAGE}/__init__.py)")
    try:
        return load_package(folder)
    except Exception as err:  # the student's import-time error: say what and where, in one line
        found = describe(err, package_files(str(folder / PACKAGE)))
        raise UsageError(f"--impl {named}: importing {PACKAGE} failed: {summary(found)}") from err


@contextmanager
def student_errors_as_usage_errors(impl: str, package: Path) -> Iterator[None]:
    """Turn what the package's code raises into one line: the TODO left to do, or the error and where."""
    try:
        yield
    except UsageError:
        raise
    except Exception as err:
        found = describe(err, package_files(str(package)))
        if found["not_implemented"]:
            todo = TODOS[found["todo"]].stub_message if found["todo"] else summary(found)
            raise UsageError(f"--impl {impl} is not finished ({todo}); finish that TODO or use --impl reference") \
                from err
        if not found["frames"]:
            raise  # not raised in the package's code: the kit's own bug, keep its traceback
        raise UsageError(f"--impl {impl} raised {summary(found)}") from err

"""Which package of an assignment ``kvkit bench``, ``chat-demo`` and ``generate`` run: ``--impl``, resolved once.

``--impl`` takes what ``kvkit grade`` takes (:func:`kvkit.grading.intake.received`): a
folder holding the package (``kvcache/`` for part 1), the package itself, a
copy of the exercise with one such package below, the package's loose files,
a ``.zip`` or a notebook. A path that exists, relative to the current folder,
wins; the names ``reference`` and ``assignments`` mean the kit's own folders
only when no such path exists. The student's code is imported in this
process, under a module name of its own, so several packages can coexist.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from kvchecks.assignment import using
from kvchecks.backends import load_package
from kvchecks.failures import describe, package_files, summary

from .errors import UsageError
from .grading.intake import received
from .paths import Layout


@dataclass(frozen=True)
class Implementation:
    """An imported package of the assignment and where it came from."""

    module: ModuleType
    source: Path  # the path it resolved to (a folder, a zip or a notebook), absolute
    is_kit_reference: bool  # the kit's own solution, reference/<package>


def add_impl_argument(parser) -> None:
    """The shared ``--impl`` option."""
    parser.add_argument(
        "--impl",
        default="reference",
        metavar="PATH",
        help="the assignment's package to run: a folder holding it (e.g. '.' in your copy of the exercise), the "
        "package itself, a .zip or a notebook, as kvkit grade takes; 'reference' or 'assignments' mean the kit's own "
        "folders unless such a path exists here (default: reference)",
    )


def impl_path(layout: Layout, impl: str) -> Path:
    """The path ``--impl`` names: an existing path first, then the kit's ``reference``/``assignments``."""
    given = Path(impl).expanduser()
    kit_folders = {"reference": layout.reference, "assignments": layout.skeleton}
    if impl in kit_folders and not given.exists():
        return kit_folders[impl]
    return given


@contextmanager
def opened_impl(layout: Layout, impl: str) -> Iterator[Implementation]:
    """The package of ``layout``'s assignment that ``--impl`` names, imported; temporary copies live until the block
    ends.

    Inside the block, an unfinished TODO (``NotImplementedError``) and any other
    exception raised in the package's code become a one-line :class:`UsageError`.
    """
    source = impl_path(layout, impl)
    with ExitStack() as stack:
        stack.enter_context(using(layout.assignment.manifest))  # what kvchecks tells of the package's errors
        try:
            folder = stack.enter_context(received(layout, source)).folder
        except UsageError as err:
            raise UsageError(f"--impl {impl}: {err}") from None
        module = import_impl(layout, folder, impl)
        found = Implementation(module, source.resolve(), source.resolve() == layout.reference.resolve())
        with student_errors_as_usage_errors(layout, impl, folder / layout.assignment.package):
            yield found


def import_impl(layout: Layout, folder: Path | str, impl: str | None = None) -> ModuleType:
    """Import ``layout``'s package in ``folder`` (see ``kvchecks.backends.load_package``); a failing import is one
    line."""
    folder = Path(folder).resolve()
    named = impl or str(folder)
    package = layout.assignment.package
    if not (folder / package / "__init__.py").is_file():
        raise UsageError(f"--impl {named}: no {package} package in {folder} (expected {package}/__init__.py)")
    with using(layout.assignment.manifest):
        try:
            return load_package(folder)
        except Exception as err:  # the student's import-time error: say what and where, in one line
            found = describe(err, package_files(str(folder / package)))
            raise UsageError(f"--impl {named}: importing {package} failed: {summary(found)}") from err


@contextmanager
def student_errors_as_usage_errors(layout: Layout, impl: str, package: Path) -> Iterator[None]:
    """Turn what ``layout``'s package at ``package`` raises into one line: the TODO left to do, or the error and
    where (inside :func:`opened_impl`, where ``layout``'s assignment is the current one)."""
    try:
        yield
    except UsageError:
        raise
    except Exception as err:
        found = describe(err, package_files(str(package)))
        if found["not_implemented"]:
            todo = layout.assignment.todos[found["todo"]].stub_message if found["todo"] else summary(found)
            raise UsageError(f"--impl {impl} is not finished ({todo}); finish that TODO or use --impl reference") \
                from err
        if not found["frames"]:
            raise  # not raised in the package's code: the kit's own bug, keep its traceback
        raise UsageError(f"--impl {impl} raised {summary(found)}") from err

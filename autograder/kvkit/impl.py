"""Which ``kvcache`` package ``kvkit bench``, ``chat-demo`` and ``generate`` run: ``--impl``, resolved once.

``--impl`` takes what ``kvkit grade`` takes (:func:`kvkit.inputs.prepared`): a
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
from kvchecks.todos import TODOS

from .errors import UsageError
from .inputs import prepared
from .paths import ASSIGNMENTS, REFERENCE

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
        help="the kvcache to run: a folder holding kvcache/ (e.g. '.' in your copy of the exercise), kvcache/ "
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
            folder = stack.enter_context(prepared(source))
        except UsageError as err:
            raise UsageError(f"--impl {impl}: {err}") from None
        module = load_kvcache(folder, impl)
        found = Implementation(module, source.resolve(), folder.resolve() == REFERENCE.resolve())
        with student_errors_as_usage_errors(impl, folder / "kvcache"):
            yield found


def load_kvcache(folder: Path | str, impl: str | None = None) -> ModuleType:
    """Import ``folder/kvcache`` (see ``kvchecks.backends.load_package``); a failing import is one line."""
    folder = Path(folder).resolve()
    named = impl or str(folder)
    if not (folder / "kvcache" / "__init__.py").is_file():
        raise UsageError(f"--impl {named}: no kvcache package in {folder} (expected kvcache/__init__.py)")
    try:
        return load_package(folder)
    except Exception as err:  # the student's import-time error: say what and where, in one line
        raise UsageError(f"--impl {named}: importing kvcache failed: {describe(err, folder / 'kvcache')}") from err


@contextmanager
def student_errors_as_usage_errors(impl: str, package: Path) -> Iterator[None]:
    """Turn what the package's code raises into one line: the TODO left to do, or the error and where."""
    try:
        yield
    except UsageError:
        raise
    except NotImplementedError as err:
        raise UsageError(
            f"--impl {impl} is not finished ({unfinished(err, package)}); finish that TODO or use --impl reference"
        ) from err
    except Exception as err:
        if not where(err, package):
            raise  # not raised in the package's code: the kit's own bug, keep its traceback
        raise UsageError(f"--impl {impl} raised {describe(err, package)}") from err


def unfinished(err: NotImplementedError, package: Path) -> str:
    """What is left to do: the skeleton's ``TODO n: ...`` message, or for a bare ``NotImplementedError()`` (as
    nbgrader's release leaves it) the TODO whose function raised it."""
    if str(err).strip():
        return str(err).strip().splitlines()[0]
    frames = package_frames(err, package)
    if not frames:
        return "NotImplementedError"
    file, line, function = frames[-1]
    todo = next((todo for todo in TODOS.values() if todo.function == function), None)
    return todo.stub_message if todo else f"NotImplementedError in {function} (kvcache/{file}, line {line})"


def describe(err: BaseException, package: Path) -> str:
    """``"ValueError: message (kvcache/model.py, line 80)"``, the message cut to its first line."""
    message = (str(err).strip().splitlines() or [""])[0][:300]
    text = f"{type(err).__name__}: {message}" if message else type(err).__name__
    place = where(err, package)
    return f"{text} ({place})" if place else text


def where(err: BaseException, package: Path) -> str:
    """The innermost place inside ``package`` that ``err`` came from, as ``kvcache/FILE, line N``; or ``""``."""
    frames = package_frames(err, package)
    return f"kvcache/{frames[-1][0]}, line {frames[-1][1]}" if frames else ""


def package_frames(err: BaseException, package: Path) -> list[tuple[str, int, str]]:
    """``(file in the package, line, function's qualified name)`` of the traceback's frames in ``package``,
    outermost first; for a ``SyntaxError`` in the package, its file and line last."""
    package = package.resolve()
    frames = []
    tb = err.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        path = Path(code.co_filename).resolve()
        if path.is_relative_to(package):
            function = getattr(code, "co_qualname", code.co_name)  # co_qualname: Python 3.11+
            frames.append((path.relative_to(package).as_posix(), tb.tb_lineno, function))
        tb = tb.tb_next
    if isinstance(err, SyntaxError) and err.filename and Path(err.filename).resolve().is_relative_to(package):
        frames.append((Path(err.filename).resolve().relative_to(package).as_posix(), err.lineno, ""))
    return frames

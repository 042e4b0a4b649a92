"""Load a ``kvcache`` package from a folder, so reference and student code can share one process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from kvchecks.backends import load_package

from .errors import UsageError
from .paths import ASSIGNMENTS, REFERENCE

_NAMED = {"reference": REFERENCE, "assignments": ASSIGNMENTS}
_loaded: dict[Path, ModuleType] = {}


def resolve_impl(impl: str) -> Path:
    """Folder holding ``kvcache/`` for ``--impl reference|assignments|PATH``."""
    folder = _NAMED.get(impl, Path(impl)).expanduser().resolve()
    if not (folder / "kvcache" / "__init__.py").is_file():
        raise UsageError(
            f"no kvcache package in {folder}: give --impl reference, assignments, or a folder holding kvcache/__init__.py"
        )
    return folder


def load_kvcache(folder: Path | str) -> ModuleType:
    """Import ``folder/kvcache`` once, under a module name of its own (see ``kvchecks.backends.load_package``)."""
    folder = Path(folder).resolve()
    if folder not in _loaded:
        try:
            _loaded[folder] = load_package(folder)
        except FileNotFoundError as err:
            raise UsageError(f"{err}: give --impl reference, assignments, or a folder holding kvcache/") from err
    return _loaded[folder]


def add_impl_argument(parser) -> None:
    """The shared ``--impl`` option."""
    parser.add_argument(
        "--impl",
        default="reference",
        help="kvcache to use: 'reference', 'assignments' or a folder holding kvcache/ (default: reference)",
    )


def load_impl(impl: str) -> ModuleType:
    """The ``kvcache`` module named by ``--impl``."""
    return load_kvcache(resolve_impl(impl))


@contextmanager
def todos_as_usage_errors(impl: str) -> Iterator[None]:
    """Turn a skeleton's ``NotImplementedError("TODO n: ...")`` into a one-line ``UsageError``."""
    try:
        yield
    except NotImplementedError as err:
        raise UsageError(f"--impl {impl} is not finished ({err}); finish that TODO or use --impl reference") from err

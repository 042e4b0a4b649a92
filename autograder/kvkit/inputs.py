"""What a submission path can be, and how it becomes a folder holding ``kvcache/``.

Accepted: a folder holding ``kvcache/`` (or ``kvcache/`` itself, or one
``kvcache`` package somewhere below, as in a copy of the whole exercise),
the package's loose files (``__init__.py``, ``cache.py``, ``model.py``,
``generate.py``, as Gradescope's file upload leaves them), a ``.zip`` of
any of these, or a notebook (``.ipynb``, through
``kvkit.course.submission.notebook_to_package``). A folder that holds nothing but one
zip or one notebook stands for that file. Anything else is the user's
mistake: :class:`~kvkit.errors.UsageError` with one line that says what to
give instead.
"""

from __future__ import annotations

import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from .errors import UsageError
from .paths import ASSIGNMENT

PACKAGE = ASSIGNMENT.package
WHAT = f"give a folder that holds your {PACKAGE}/ package, a .zip of it, or your notebook (.ipynb)"
MAX_ZIP_BYTES = 50 * 1024 * 1024  # uncompressed, all members together
MAX_ZIP_MEMBERS = 2000
MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
MAX_DEPTH = 4
LOOSE = ASSIGNMENT.files  # a package's files given loose, without their folder
SKIP_DIRS = {"__MACOSX", "__pycache__", "site-packages", "node_modules", ".venv", "venv", ".git"}


@contextmanager
def prepared(path: Path | str) -> Iterator[Path]:
    """A folder holding ``kvcache/__init__.py`` for ``path``; temporary folders are removed afterwards."""
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="kvkit-input-") as scratch:
        yield resolve(path, Path(scratch))


def resolve(path: Path, scratch: Path, depth: int = 0) -> Path:
    """The folder holding ``kvcache/`` for ``path``, unpacking into ``scratch`` when needed."""
    if not path.exists() and not path.is_symlink():
        raise UsageError(f"{path} does not exist: {WHAT}")
    if depth > 2:
        raise UsageError(f"{path}: archives or notebooks nested too deep: {WHAT}")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".zip":
            out = Path(tempfile.mkdtemp(prefix="zip-", dir=scratch))
            extract_zip(path, out)
            return resolve(out, scratch, depth + 1)
        if suffix == ".ipynb":
            return from_notebook(path, Path(tempfile.mkdtemp(prefix="notebook-", dir=scratch)))
        raise UsageError(f"{path} is neither a folder, a .zip nor a notebook: {WHAT}")
    if not path.is_dir():
        raise UsageError(f"{path} is not a folder: {WHAT}")
    return find_package_folder(path, scratch, depth)


def find_package_folder(folder: Path, scratch: Path, depth: int = 0) -> Path:
    if (folder / PACKAGE / "__init__.py").is_file():
        return folder
    if folder.name == PACKAGE and (folder / "__init__.py").is_file():
        return folder.parent
    if all((folder / name).is_file() for name in LOOSE):
        out = Path(tempfile.mkdtemp(prefix="loose-", dir=scratch))
        (out / PACKAGE).mkdir()
        for file in folder.glob("*.py"):
            if file.is_file() and not file.is_symlink():
                shutil.copy(file, out / PACKAGE / file.name)
        return out
    found = sorted(_packages_below(folder))
    if len(found) == 1:
        return found[0].parent
    if len(found) > 1:
        names = ", ".join(str(p.relative_to(folder)) for p in found[:4])
        raise UsageError(f"{folder} holds {len(found)} {PACKAGE} packages ({names}): which one to grade is ambiguous; "
                         "keep exactly one")
    entries = [p for p in folder.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
    inputs = [p for p in entries if p.is_file() and p.suffix.lower() in (".zip", ".ipynb")]
    if len(inputs) == 1:
        return resolve(inputs[0], scratch, depth + 1)
    if len(inputs) > 1:
        names = ", ".join(p.name for p in inputs[:4])
        raise UsageError(f"{folder} holds no {PACKAGE} package but several archives/notebooks ({names}): keep exactly one")
    if not entries:
        raise UsageError(f"{folder} is empty: {WHAT}")
    raise UsageError(f"{folder} holds no {PACKAGE} package (expected {folder / PACKAGE}/__init__.py): {WHAT}")


def _packages_below(folder: Path, depth: int = 0) -> Iterator[Path]:
    if depth >= MAX_DEPTH:
        return
    try:
        children = sorted(folder.iterdir())
    except OSError:
        return
    for child in children:
        if child.is_symlink() or not child.is_dir() or child.name.startswith(".") or child.name in SKIP_DIRS:
            continue
        if child.name == PACKAGE and (child / "__init__.py").is_file():
            yield child
        else:
            yield from _packages_below(child, depth + 1)


def extract_zip(archive: Path, out: Path) -> None:
    """Unpack ``archive`` into ``out``, refusing links, paths outside ``out`` and oversized contents."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            if len(members) > MAX_ZIP_MEMBERS:
                raise UsageError(f"{archive} holds {len(members)} entries, over the limit of {MAX_ZIP_MEMBERS}: "
                                 "zip only your code")
            total = sum(m.file_size for m in members)
            if total > MAX_ZIP_BYTES:
                raise UsageError(f"{archive} unpacks to {total} bytes, over the limit of {MAX_ZIP_BYTES}: "
                                 "zip only your code")
            for member in members:
                name = member.filename
                parts = PurePosixPath(name.replace("\\", "/")).parts
                if name.startswith(("/", "\\")) or (parts and ":" in parts[0]) or ".." in parts:
                    raise UsageError(f"{archive} has an entry outside its own folder ({name!r}): refused")
                if stat.S_ISLNK(member.external_attr >> 16):
                    raise UsageError(f"{archive} has a symbolic link ({name!r}): refused; zip plain files only")
            written = 0
            for member in members:
                target = out.joinpath(*PurePosixPath(member.filename.replace("\\", "/")).parts)
                if member.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(target, "wb") as dst:
                    while chunk := src.read(1 << 16):  # the sizes in the header may lie: count what comes out
                        written += len(chunk)
                        if written > MAX_ZIP_BYTES:
                            raise UsageError(f"{archive} unpacks to more than {MAX_ZIP_BYTES} bytes: zip only your code")
                        dst.write(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as err:
        raise UsageError(f"{archive} is not a readable zip archive ({err}): {WHAT}")


def from_notebook(notebook: Path, out: Path) -> Path:
    """A folder holding ``kvcache/`` built from a notebook by ``kvkit.course.submission.notebook_to_package``."""
    size = notebook.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        raise UsageError(f"{notebook} is {size} bytes, over the limit of {MAX_NOTEBOOK_BYTES}: clear the outputs")
    try:
        from .course.submission import notebook_to_package
    except ImportError:
        raise UsageError(f"{notebook}: this kit cannot read notebooks (kvkit.course.submission is missing): {WHAT}")
    try:
        folder = Path(notebook_to_package(notebook, out))
    except UsageError:
        raise
    except Exception as err:  # a broken notebook is the user's mistake: say what went wrong, in one line
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UsageError(f"{notebook} could not be turned into a {PACKAGE} package: {first[:300]}")
    if (folder / "__init__.py").is_file() and folder.name == PACKAGE:
        folder = folder.parent
    if not (folder / PACKAGE / "__init__.py").is_file():
        raise UsageError(f"{notebook} did not yield a {PACKAGE} package: {WHAT}")
    return folder

"""A throw-away folder from which the submission runs: its own copy of the code and nothing else.

Layout: ``submission/kvcache/`` (the student's package), ``harness/kvchecks/``
(the public probe code), ``work/`` (the child's working directory) and
``child.log`` (what the child printed). The reference solution and the
hidden tests are not copied in.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from kvchecks.backends import find_package

from .errors import UsageError

HARNESS = Path(__file__).resolve().parents[2] / "tests" / "kvchecks"
MAX_PACKAGE_BYTES = 20 * 1024 * 1024


def submission_folder(path: Path) -> Path:
    """The folder holding ``kvcache/`` for a submission path; ``UsageError`` with one clear line otherwise."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path} does not exist: give a folder that holds your kvcache/ package")
    if not path.is_dir():
        raise UsageError(f"{path} is not a folder: give a folder that holds your kvcache/ package")
    if path.name == "kvcache" and (path / "__init__.py").is_file():
        return path.parent
    try:
        find_package(path)
    except FileNotFoundError as err:
        raise UsageError(f"{err}: give the folder that contains kvcache/ (e.g. assignments/)")
    return path


def _ignore_caches(_dir: str, names: list[str]) -> list[str]:
    return [n for n in names if n == "__pycache__" or n.endswith(".pyc")]


class Sandbox:
    """Context manager: copies a submission and the harness into a temporary folder, removes it on exit."""

    def __init__(self, submission: Path) -> None:
        self.source = submission_folder(submission)

    def __enter__(self) -> "Sandbox":
        package = self.source / "kvcache"
        size = sum(f.stat().st_size for f in package.rglob("*") if f.is_file())
        if size > MAX_PACKAGE_BYTES:
            raise UsageError(f"{package} holds {size} bytes, over the {MAX_PACKAGE_BYTES} byte limit: submit only code")
        self.root = Path(tempfile.mkdtemp(prefix="kvkit-grade-"))
        self.submission = self.root / "submission"
        self.harness = self.root / "harness"
        self.workdir = self.root / "work"
        self.log = self.root / "child.log"
        shutil.copytree(package, self.submission / "kvcache", ignore=_ignore_caches, symlinks=False)
        shutil.copytree(HARNESS, self.harness / "kvchecks", ignore=_ignore_caches)
        self.workdir.mkdir()
        return self

    def output(self, limit: int = 2000) -> str:
        """The last ``limit`` characters the child printed."""
        if not self.log.exists():
            return ""
        with open(self.log, "rb") as f:
            f.seek(max(0, self.log.stat().st_size - limit))
            return f.read().decode(errors="replace")

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

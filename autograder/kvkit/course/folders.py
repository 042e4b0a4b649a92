"""The course folders on disk: ``source/<name>/`` (the notebook and its support files) and ``release/<name>/``
(made by the real ``nbgrader generate_assignment``), and whether the committed ones are up to date.
"""

from __future__ import annotations

import filecmp
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import kvchecks
from kvchecks.assignment import MANIFEST

from ..errors import UsageError
from ..paths import ASSIGNMENT, DEFAULT, PUBLIC_TESTS, ROOT
from .checks import CheckItem
from .template import build_notebook, dumps_notebook

SOURCE_DIR = DEFAULT.source
RELEASE_DIR = DEFAULT.release
NOTEBOOK_NAME = f"{ASSIGNMENT.name}.ipynb"
SOURCE_NOTEBOOK = SOURCE_DIR / NOTEBOOK_NAME
RELEASE_NOTEBOOK = RELEASE_DIR / NOTEBOOK_NAME
NBGRADER_CONFIG = ROOT / "nbgrader_config.py"
KVCHECKS = Path(kvchecks.__file__).resolve().parent
SUPPORT_DIRS = ("kvchecks", "tests")  # written next to the notebooks by `kvkit notebook`, not committed


def support_files() -> dict[str, Path]:
    """Files shipped next to the notebook (relative name -> repository file): public check code and tests only."""
    files = {f"kvchecks/{p.name}": p for p in sorted(KVCHECKS.glob("*.py"))}
    files.update({f"tests/{p.name}": p for p in sorted(PUBLIC_TESTS.glob("test_*.py"))})
    files["tests/goldens.json"] = PUBLIC_TESTS / "goldens.json"
    files[f"tests/{MANIFEST}"] = ASSIGNMENT.manifest
    files.update({f"tests/{name}": p for name, p in ASSIGNMENT.checks_files().items()})
    return files


def write_support(dest: Path) -> None:
    """Write the support files into the course folder ``dest`` (replacing the old ones)."""
    for folder in SUPPORT_DIRS:
        shutil.rmtree(dest / folder, ignore_errors=True)
    for rel, src in support_files().items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest / rel)


def write_source(dest: Path = SOURCE_DIR, items: list[CheckItem] | None = None) -> Path:
    """Write ``dest/<name>.ipynb`` and its support files, removing anything else in ``dest``."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    (dest / NOTEBOOK_NAME).write_text(dumps_notebook(build_notebook(items)))
    write_support(dest)
    return dest / NOTEBOOK_NAME


def nbgrader_command() -> list[str]:
    return [sys.executable, "-m", "nbgrader"]


def nbgrader_env(**extra: str) -> dict[str, str]:
    """The environment for running nbgrader: this Python's bin folder first on PATH (nbgrader runs ``alembic``)."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(extra)
    return env


def ensure_kernel() -> str:
    """Make sure Jupyter finds a ``python3`` kernel that is this Python; install it into ``sys.prefix`` if not.

    Returns the kernel's interpreter command. (``make setup`` runs the same install.)
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
        argv0 = spec.argv[0]
    except NoSuchKernel:
        argv0 = None
    if argv0 not in ("python", "python3", sys.executable):
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3"],
                       check=True, capture_output=True)
        argv0 = KernelSpecManager().get_kernel_spec("python3").argv[0]
    return argv0


def generate_release(source: Path = SOURCE_DIR, dest: Path = RELEASE_DIR) -> Path:
    """Run the real ``nbgrader generate_assignment`` on ``source`` in a scratch course; copy the result to ``dest``."""
    if importlib.util.find_spec("nbgrader") is None:
        raise UsageError("nbgrader is not installed: `make setup` (or pip install -e '.[nbgrader]'), or use --no-release")
    with tempfile.TemporaryDirectory(prefix="kvkit-nbgrader-") as tmp:
        course = Path(tmp)
        shutil.copytree(source, course / "source" / ASSIGNMENT.name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"))
        shutil.copyfile(NBGRADER_CONFIG, course / "nbgrader_config.py")
        done = subprocess.run([*nbgrader_command(), "generate_assignment", ASSIGNMENT.name, "--force"],
                              cwd=course, capture_output=True, text=True, env=nbgrader_env())
        if done.returncode != 0:
            raise RuntimeError(f"nbgrader generate_assignment failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(course / "release" / ASSIGNMENT.name, dest)
    return dest / NOTEBOOK_NAME


def _tree_differences(a: Path, b: Path) -> list[str]:
    names = {p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    names |= {p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    return sorted(n for n in names
                  if not ((a / n).is_file() and (b / n).is_file() and filecmp.cmp(a / n, b / n, shallow=False)))


def _committed(names: list[str]) -> list[str]:
    """The names of a course folder's files that the repository holds (the support files it does not)."""
    return [n for n in names if n.split("/", 1)[0] not in SUPPORT_DIRS]


def write_course(dest: Path, release: bool = True) -> Path:
    """Write ``dest/source`` and (with ``release``) ``dest/release`` as ``kvkit notebook`` writes the course's."""
    write_source(dest / "source")
    if release:
        generate_release(dest / "source", dest / "release")
    return dest


def stale_paths(release: bool = True, fresh: Path | None = None) -> list[str]:
    """Committed course files (the notebooks) that a fresh ``kvkit notebook`` would change; ``fresh`` holds a course
    already written by :func:`write_course`."""
    with tempfile.TemporaryDirectory(prefix="kvkit-nbcheck-") as tmp:
        if fresh is None:
            write_course(Path(tmp), release)
        folder = fresh or Path(tmp)
        stale = [f"source/{ASSIGNMENT.name}/{n}"
                 for n in _committed(_tree_differences(folder / "source", SOURCE_DIR))]
        if release:
            stale += [f"release/{ASSIGNMENT.name}/{n}"
                      for n in _committed(_tree_differences(folder / "release", RELEASE_DIR))]
    return stale

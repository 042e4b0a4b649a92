"""The course folders on disk: for each course (:mod:`kvkit.courses`), ``source/<name>/`` (the notebook and
its support files) and ``release/<name>/`` (made by the real ``nbgrader generate_assignment``), and whether the
committed ones are up to date.
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

from ..courses import Course, courses_of
from ..errors import UsageError
from ..paths import Layout
from ..registry import ROOT
from .checks import CheckItem, collect_checks
from .template import build_notebook, dumps_notebook

NBGRADER_CONFIG = ROOT / "nbgrader_config.py"
KVCHECKS = Path(kvchecks.__file__).resolve().parent
SUPPORT_DIRS = ("kvchecks", "tests")  # written next to the notebooks by `kvkit notebook`, not committed


def _catalogues(folder: Path) -> dict[str, Path]:
    """The compiled message catalogues under ``folder/locale`` (name relative to ``folder`` -> file)."""
    return {p.relative_to(folder).as_posix(): p for p in sorted((folder / "locale").glob("*/LC_MESSAGES/*.mo"))}


def support_files(layout: Layout) -> dict[str, Path]:
    """Files shipped next to ``layout``'s notebooks (relative name -> repository file): public check code, tests and
    their compiled message catalogues only."""
    public, work = layout.public_tests, layout.assignment
    files = {f"kvchecks/{p.name}": p for p in sorted(KVCHECKS.glob("*.py"))}
    files.update({f"kvchecks/{name}": p for name, p in _catalogues(KVCHECKS).items()})
    files.update({f"tests/{p.name}": p for p in sorted(public.glob("test_*.py"))})
    files["tests/goldens.json"] = public / "goldens.json"
    files[f"tests/{MANIFEST}"] = work.manifest
    files.update({f"tests/{name}": p for name, p in work.checks_files().items()})
    files.update({f"tests/{name}": p for name, p in _catalogues(public).items()})
    return files


def write_support(layout: Layout, dest: Path) -> None:
    """Write ``layout``'s support files into the course folder ``dest`` (replacing the old ones)."""
    for folder in SUPPORT_DIRS:
        shutil.rmtree(dest / folder, ignore_errors=True)
    for rel, src in support_files(layout).items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest / rel)


def write_source(course: Course, dest: Path | None = None, items: list[CheckItem] | None = None) -> Path:
    """Write ``course``'s notebook and its support files into ``dest`` (its ``source/<name>/``), removing anything
    else there."""
    dest = course.source if dest is None else dest
    text = dumps_notebook(build_notebook(course, items))  # a failure here leaves the committed folder as it was

    def fill(folder: Path) -> None:
        (folder / course.notebook_name).write_text(text)
        write_support(course.layout, folder)

    replace_folder(dest, fill)
    return dest / course.notebook_name


def replace_folder(dest: Path, fill) -> None:
    """Replace ``dest`` with a folder that ``fill(folder)`` writes, swapped in only once ``fill`` has succeeded: a
    failure leaves ``dest`` as it was."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=f".{dest.name}.new-", dir=dest.parent))
    old = dest.with_name(f".{dest.name}.old-{new.name.rsplit('-', 1)[-1]}")
    try:
        fill(new)
        os.chmod(new, 0o755)
        if dest.exists():
            os.rename(dest, old)
        os.rename(new, dest)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        if old.exists() and not dest.exists():
            os.rename(old, dest)
        raise
    shutil.rmtree(old, ignore_errors=True)


def nbgrader_command() -> list[str]:
    return [sys.executable, "-m", "nbgrader"]


def nbgrader_env(**extra: str) -> dict[str, str]:
    """The environment for running nbgrader: this Python's bin folder first on PATH (its ``jupyter`` and ``alembic``,
    which nbgrader runs where the kit's ``nbgrader_config.py`` is not loaded)."""
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


def generate_release(course: Course, source: Path | None = None, dest: Path | None = None) -> Path:
    """Run the real ``nbgrader generate_assignment`` on ``course``'s ``source`` folder in a scratch course; copy the
    result to ``dest`` (its ``release/<name>/``)."""
    source = course.source if source is None else source
    dest = course.release if dest is None else dest
    if importlib.util.find_spec("nbgrader") is None:
        raise UsageError("nbgrader is not installed: `make setup` (or pip install -e '.[nbgrader]'), "
                         "or use --no-release")
    with tempfile.TemporaryDirectory(prefix="kvkit-nbgrader-") as tmp:
        scratch = Path(tmp)
        shutil.copytree(source, scratch / "source" / course.name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"))
        shutil.copyfile(NBGRADER_CONFIG, scratch / "nbgrader_config.py")
        done = subprocess.run([*nbgrader_command(), "generate_assignment", course.name, "--force"],
                              cwd=scratch, capture_output=True, text=True, env=nbgrader_env())
        if done.returncode != 0:
            raise RuntimeError(f"nbgrader generate_assignment failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        replace_folder(dest, lambda folder: shutil.copytree(scratch / "release" / course.name, folder,
                                                            dirs_exist_ok=True))
    return dest / course.notebook_name


def scratch_course(course: Course, root: Path, submissions: dict[str, dict[str, str] | None]) -> Path:
    """A course in ``root`` (tests, benchmarks): ``course``'s source with its support files, the kit's
    ``nbgrader_config.py``, the release by real ``nbgrader generate_assignment``, and one submitted notebook per
    student: the release with the given TODO bodies (:func:`kvkit.course.submission.fill_notebook`; ``{}`` the
    reference's) or, for ``None``, the untouched release. Returns the release notebook."""
    from .submission import fill_notebook

    write_source(course, root / "source" / course.name)
    shutil.copyfile(NBGRADER_CONFIG, root / "nbgrader_config.py")
    done = subprocess.run([*nbgrader_command(), "generate_assignment", course.name, "--force"], cwd=root,
                          capture_output=True, text=True, env=nbgrader_env())
    if done.returncode != 0:
        raise RuntimeError(f"nbgrader generate_assignment failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    release = root / "release" / course.name / course.notebook_name
    for student, bodies in submissions.items():
        target = root / "submitted" / student / course.name / course.notebook_name
        target.parent.mkdir(parents=True)
        if bodies is None:
            shutil.copyfile(release, target)
        else:
            fill_notebook(course.layout, release, target, bodies)
    return release


def _tree_differences(a: Path, b: Path) -> list[str]:
    names = {p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    names |= {p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    return sorted(n for n in names
                  if not ((a / n).is_file() and (b / n).is_file() and filecmp.cmp(a / n, b / n, shallow=False)))


def _committed(names: list[str]) -> list[str]:
    """The names of a course folder's files that the repository holds (the support files it does not)."""
    return [n for n in names if n.split("/", 1)[0] not in SUPPORT_DIRS]


def write_course(layout: Layout, dest: Path, release: bool = True) -> Path:
    """Write every course of ``layout`` as ``kvkit notebook`` does, under ``dest/source/<name>`` and (with
    ``release``) ``dest/release/<name>``."""
    items = collect_checks(layout)
    for course in courses_of(layout):
        write_source(course, dest / "source" / course.name, items)
        if release:
            generate_release(course, dest / "source" / course.name, dest / "release" / course.name)
    return dest


def stale_paths(layout: Layout, release: bool = True, fresh: Path | None = None) -> list[str]:
    """Committed files of ``layout``'s courses (the notebooks) that a fresh ``kvkit notebook`` would change;
    ``fresh`` holds the courses already written by :func:`write_course`."""
    with tempfile.TemporaryDirectory(prefix="kvkit-nbcheck-") as tmp:
        if fresh is None:
            write_course(layout, Path(tmp), release)
        folder = fresh or Path(tmp)
        stale = []
        for course in courses_of(layout):
            stale += [f"source/{course.name}/{n}"
                      for n in _committed(_tree_differences(folder / "source" / course.name, course.source))]
            if release:
                stale += [f"release/{course.name}/{n}"
                          for n in _committed(_tree_differences(folder / "release" / course.name, course.release))]
    return stale

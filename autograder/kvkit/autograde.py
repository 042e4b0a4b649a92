"""``nbgrader autograde`` with verdicts the student's kernel cannot touch: the kit's hooks into nbgrader.

``nbgrader_config.py`` puts these preprocessors in nbgrader's own pipelines:

- :class:`NameTodoStubs` (``GenerateAssignment``, after ``ClearSolutions``):
  each answer cell's ``raise NotImplementedError()`` names its TODO.
- :class:`ConfinedExecute` (``Autograde``, instead of nbgrader's ``Execute``):
  the student's notebook runs in a kernel confined like ``kvkit grade``'s
  child (:mod:`kvkit.sandbox`: its own scratch copy of the public check files,
  no course directory, no network, the same limits), talking to nbgrader over
  unix sockets in a folder both can reach. The graded test cells are not run
  in it at all, so hidden test code never reaches the student's process.
- :class:`StartTrustedGrading` (``Autograde``, first): the notebook's answer
  cells become the assignment's package (layout and read-only cells from the
  course's source notebook), graded by :func:`kvkit.grade.grade` (the same
  checks as ``kvkit grade``, public and hidden, each on published and fresh
  inputs, in a confined child) in a thread of this process while the kernel
  runs the notebook.
- :class:`TrustedVerdicts` (``Autograde``, before ``SaveAutoGrades``): each
  graded cell's outputs are replaced by its verdict (a pass: one stdout line;
  a failure: an error with the reason), which nbgrader's own score keeping
  then stores.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from nbformat.notebooknode import NotebookNode, from_dict
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from traitlets import Integer

from kvchecks.i18n import _, language

from .course.checks import check_key
from .course.courses import course_named
from .course.submission import package_from_notebook, read_notebook
from .grade import MEMORY_MB, grade
from .paths import ASSIGNMENT, TODOS
from .sandbox import CONFINED, NO_ISOLATION, Sandbox

NOT_RUN = "# This check is run by the grader, outside this notebook's kernel (kvkit.autograde)."
KERNEL_BOOT = ("import sys, json; sys.path.insert(0, sys.argv[1]); import kvchild.jail; "
               "info = kvchild.jail.enter(json.loads(sys.argv[2])); open(sys.argv[3], 'w').write(json.dumps(info)); "
               "del sys.argv[1:4]; from ipykernel.kernelapp import launch_new_instance; launch_new_instance()")
SUPPORT = ("kvchecks", "tests")  # the public check files nbgrader copies next to the notebook


def is_test_cell(cell: dict) -> bool:
    nbgrader = cell.get("metadata", {}).get("nbgrader", {})
    return bool(nbgrader.get("grade")) and not nbgrader.get("solution")


def course_root(config) -> Path:
    return Path(CourseDirectory(config=config).root).resolve()


def trusted_notebook(config, resources: dict) -> dict:
    """The course's source notebook of the assignment being graded (never the student's copy)."""
    coursedir = CourseDirectory(config=config)
    folder = coursedir.format_path(coursedir.source_directory, ".", resources["nbgrader"]["assignment"])
    return read_notebook(Path(folder) / f"{resources['nbgrader']['notebook']}.ipynb")


class NameTodoStubs(NbGraderPreprocessor):
    """``GenerateAssignment``: nbgrader leaves the same stub in every answer cell; this one names the cell's TODO."""

    def preprocess_cell(self, cell, resources, index):
        todos = cell.get("metadata", {}).get("kvkit", {}).get("todos", [])
        if cell.get("cell_type") == "code" and todos:
            lines, stubs = cell.source.splitlines(), iter(todos)
            for number, line in enumerate(lines):
                if line.strip() == "raise NotImplementedError()":
                    todo = TODOS[next(stubs)]  # the task in the language of the course being released
                    lines[number] = line.replace("NotImplementedError()",
                                                 f"NotImplementedError({todo.stub_message_in(language())!r})")
            cell.source = "\n".join(lines)
        return cell, resources


class ConfinedKernelManager(AsyncKernelManager):
    """A kernel started inside a :class:`Sandbox`, over unix sockets in the sandbox's ``ipc/`` folder."""

    def __init__(self, box: Sandbox, memory_bytes: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.box = box
        self.memory_bytes = memory_bytes
        self.transport = "ipc"
        self.ip = str(box.path("ipc") / "kernel")
        self.connection_file = str(box.path("ipc") / "connection.json")
        self.info_file = box.path("ipc") / "confined.json"

    def write_connection_file(self, **kwargs) -> None:
        super().write_connection_file(**kwargs)
        if self.box.gid is not None:  # a kernel with a user of its own reads it through the sandbox's group
            os.chown(self.connection_file, 0, self.box.gid)
            os.chmod(self.connection_file, 0o640)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        config = self.box.jail_config(self.memory_bytes, self.box.new_uid())
        if self.box.path("home").is_dir():  # the course's public check files, copied into the kernel's work folder
            config["seed"] = str(self.box.path("home"))
        return self.box.command([sys.executable, "-I", "-u", "-c", KERNEL_BOOT, str(self.box.harness),
                                 json.dumps(config), str(self.info_file), "-f", self.connection_file,
                                 *(extra_arguments or [])])

    def confinement(self) -> dict:
        """What the kernel reported after confining itself (untrusted: only for warnings)."""
        try:
            info = json.loads(self.info_file.read_text()[:100_000])
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}


class ConfinedExecute(Execute):
    """nbgrader's ``Execute``, with the kernel confined and the graded test cells left out of it."""

    memory_mb = Integer(MEMORY_MB, help="address space of the kernel, in MB (as kvkit grade's child)").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict):
        folder = Path(resources.get("metadata", {}).get("path") or ".")
        trees = {f"home/{name}": folder / name for name in SUPPORT if (folder / name).is_dir()}
        if len(trees) < len(SUPPORT):  # the verdicts do not need them; the student's notebook cells do
            self.log.warning("the course's source folder holds no %s beside the notebook, so the notebook's own "
                             "check cells cannot run (the grades are not affected): run `make notebook` (kvkit "
                             "notebook) after a clone", " or ".join(f"{name}/" for name in SUPPORT))
        with Sandbox(trees, hide=[course_root(self.config)], shared=("ipc",)) as box:
            if box.mode not in CONFINED:
                self.log.warning(NO_ISOLATION)
            self._box = box
            held = {index: cell.source for index, cell in enumerate(nb.cells) if is_test_cell(cell)}
            for index in held:
                nb.cells[index].source = NOT_RUN
            try:
                nb, resources = super().preprocess(nb, resources)
            finally:
                for index, source in held.items():
                    nb.cells[index].source = source
                self._warn_about(self.km)
        return nb, resources

    def create_kernel_manager(self):
        self.km = ConfinedKernelManager(self._box, self.memory_mb * 1024 * 1024, config=self.config)
        return self.km

    async def async_start_new_kernel(self, **kwargs) -> None:
        kwargs.update(env=self._box.child_env(), cwd=str(self._box.workdir))
        await super().async_start_new_kernel(**kwargs)

    start_new_kernel = run_sync(async_start_new_kernel)

    def _warn_about(self, km) -> None:
        info = km.confinement() if isinstance(km, ConfinedKernelManager) else {}
        for problem in info.get("problems") or []:
            self.log.warning("the notebook's kernel was confined with a gap: %s", str(problem)[:200])
        if info.get("exposed"):
            self.log.warning("the notebook's kernel could read %s", ", ".join(map(str, info["exposed"]))[:500])


class StartTrustedGrading(NbGraderPreprocessor):
    """Build the package from the notebook's answer cells and start grading it, while the notebook runs."""

    def preprocess(self, nb: NotebookNode, resources: dict):
        named = resources["nbgrader"]["assignment"]
        if course_named(named) is None:
            raise RuntimeError(f"nbgrader grades {named!r} but the kit's hooks were set up for {ASSIGNMENT.name!r}: "
                               f"name the assignment on the command line (nbgrader autograde {named})")
        trusted = trusted_notebook(self.config, resources)
        resources["kvkit"] = {"trusted": trusted,
                              "grading": start_grading(nb, trusted, hide=[course_root(self.config)])}
        return nb, resources


_GRADING = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kvkit-grading")


def start_grading(nb: NotebookNode, trusted: dict, hide: list[Path]) -> Future:
    """:func:`kvkit.grade.grade` of ``nb``'s answer cells as a package, in a worker thread."""
    scratch = Path(tempfile.mkdtemp(prefix="kvkit-autograde-"))
    try:
        folder = package_from_notebook(json.loads(json.dumps(nb)), trusted, scratch)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise

    def work():
        try:
            return grade(folder, hide=hide)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    return _GRADING.submit(work)


class TrustedVerdicts(NbGraderPreprocessor):
    """Every graded cell's outputs become the verdict of ``kvkit grade`` on the notebook's answer cells."""

    def preprocess(self, nb: NotebookNode, resources: dict):
        started = resources.get("kvkit") or {}
        trusted = started.get("trusted") or trusted_notebook(self.config, resources)
        grading = started.get("grading") or start_grading(nb, trusted, hide=[course_root(self.config)])
        report = grading.result()
        self.log.info("kvkit grade of %s: %g / %g", resources["nbgrader"]["student"], report.score, report.max_score)
        for note in report.notes:
            (self.log.warning if note.startswith("WARNING") else self.log.info)("%s", note)
        keys = {c["metadata"]["nbgrader"]["grade_id"]: c["metadata"].get("kvkit", {}).get("check")
                for c in trusted["cells"] if is_test_cell(c)}
        results = {check_key(r.name, r.hidden): r for r in report.results}
        for cell in nb.cells:
            if is_test_cell(cell):
                result = results.get(keys.get(cell.metadata.nbgrader.get("grade_id")))
                cell.outputs = [verdict_output(result)]
        return nb, resources


def verdict_output(result) -> NotebookNode:
    """The output nbgrader scores: a stdout line for a pass, an error with the reason for a failure."""
    if result is None:
        return from_dict({"output_type": "error", "ename": "NotACheck", "evalue": _("this cell is not a check of this "
                          "assignment: it scores nothing"), "traceback": []})
    label = _("hidden check") if result.hidden else result.name
    if result.passed:
        return from_dict({"output_type": "stream", "name": "stdout",
                          "text": _("passed: {check}").format(check=label) + "\n"})
    lines = result.message.strip().splitlines() or [_("(no reason given)")]
    return from_dict({"output_type": "error", "ename": "CheckFailed", "evalue": f"{label}: {lines[0]}",
                      "traceback": [_("FAILED: {check}").format(check=label), *lines]})

"""``nbgrader autograde`` with verdicts the student's kernel cannot touch: the kit's hooks into nbgrader.

``nbgrader_config.py`` puts these into nbgrader's own pipelines. One process (``nbgrader autograde NAME``, the
formgrader's Jupyter server) serves every course of the kit: each hook finds the course of the notebook it is given
from nbgrader's assignment name (:func:`kvkit.courses.course_named`: the kit's assignment and the language),
and passes both on.

- :func:`install_intake` (called by ``nbgrader_config.py``): ``nbgrader
  autograde`` copies the submitted folder with :class:`KitAutograde`, which
  never follows a link and refuses links, devices, pipes, sockets, hard links,
  oversized files and names that are not UTF-8, each with one line in the log.
- :class:`IntakeExporter` (``Autograde.exporter_class``): reads the submitted
  notebook without following a link; a notebook that is a link (or sits in a
  linked folder), is not a plain file, is oversized or is not a notebook is
  refused in one line and graded as the untouched release (0). Of the
  notebook only its cells' types, sources and grade ids are read
  (:func:`as_released`): its metadata, and each cell's, are the release's.
- :class:`OverwriteReleasedCells` (``Autograde``'s sanitizing, instead of
  nbgrader's ``OverwriteCells``): a read-only cell left as released is not
  reported as changed (nbgrader's issue #1961: every hidden test cell was).
- :class:`NameTodoStubs` (``GenerateAssignment``, after ``ClearSolutions``):
  each answer cell's ``raise NotImplementedError()`` names its TODO.
- :class:`StartTrustedGrading` (``Autograde``, first): the notebook's answer
  cells become the assignment's package (layout and read-only cells from the
  course's *release* notebook: a missing or unmarked answer cell counts as the
  release's stub, never as the solution), graded by :func:`kvkit.grading.grade.grade`
  (the same checks as ``kvkit grade``, public and hidden, each on published and
  fresh inputs, in a confined child, in the course's language) in a thread of
  this process while the kernel runs the notebook; the process grades warm
  (:mod:`kvkit.grading.remote.warm`: each notebook's child forked by the process's
  zygote where the isolation mode allows).
- :class:`ConfinedExecute` (``Autograde``, instead of nbgrader's ``Execute``):
  the student's notebook runs in a kernel confined like ``kvkit grade``'s
  child (:mod:`kvkit.grading.sandbox`: its own scratch copy of the course's public
  check files, no course directory, no network, the same limits), talking to
  nbgrader over unix sockets in a folder both can reach; where the isolation
  mode allows warm children, the kernel is forked by the process's kernel
  zygote (torch and ipykernel imported once), then enters the same jail
  before it runs a cell. The graded test cells
  are not run in it at all, so hidden test code never reaches the student's
  process. Its stdout and stderr reach nbgrader's log only quoted; each cell's
  outputs and the whole notebook's are bounded in bytes.
- :class:`TrustedVerdicts` (``Autograde``, before ``SaveAutoGrades``): each
  graded cell's outputs are replaced by its verdict (a pass: one stdout line;
  a failure: an error with the reason), which nbgrader's own score keeping
  then stores; the grader's notes go into a cell at the top (and the feedback).
- :class:`ClearHiddenRegions` (``GenerateFeedback``, instead of nbgrader's
  ``ClearHiddenTests``): hidden regions are cut from the test cells only; no
  text in a student's cell can make feedback fail.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import stat
import tempfile
import threading
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import nbformat
from nbconvert.exporters import NotebookExporter
from nbformat.notebooknode import NotebookNode, from_dict
from nbgrader.converters import Autograde
from nbgrader.converters.base import BaseConverter
from nbgrader.coursedir import CourseDirectory
from nbgrader.api import MissingEntry
from nbgrader.preprocessors import Execute, NbGraderPreprocessor, OverwriteCells
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from traitlets import Integer, default

from kvchecks.i18n import _, speaking

from ..courses import Course, course_named
from ..errors import GraderError
from ..grading.child.boot import argv
from ..grading.remote.output import OutputTail
from ..grading.sandbox import CONFINED, NO_ISOLATION, Sandbox
from ..registry import ROOT, courses
from ..stopping import main_thread_only

SUPPORT = ("kvchecks", "tests")  # the public check files `kvkit notebook` writes beside the course's notebook
MAX_CELL_OUTPUT_BYTES = 1_000_000  # each cell's outputs, in the autograded notebook and in the feedback
MAX_OUTPUT_BYTES = 10_000_000  # every cell's outputs together
MAX_ENTRIES = 1000  # files and folders copied from a submitted folder
MAX_DEPTH = 8  # folders inside folders of a submitted folder
MAX_REFUSAL_LINES = 20  # refusal lines per submitted folder in the log; the rest are counted
NOTES_CELL = "# Notes from the grader (kvkit): about how your notebook was graded"
CUT_NOTE = "[kvkit: output cut"


def is_test_cell(cell: dict) -> bool:
    nbgrader = cell.get("metadata", {}).get("nbgrader", {})
    return bool(nbgrader.get("grade")) and not nbgrader.get("solution")


def course_root(config) -> Path:
    return Path(CourseDirectory(config=config).root).resolve()


def quoted(text: str) -> str:
    """``text`` on one line with every character that is not printable escaped (no newline, carriage return or
    terminal escape sequence of a student's can reach the log as it is)."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in str(text))


def quote_block(text: str, lines: int = 8, width: int = 150) -> str:
    """The last ``lines`` lines of ``text``, each quoted with ``  | `` (as ``kvkit grade`` quotes the child)."""
    return "\n".join("  | " + quoted(line)[-width:] for line in text.strip().splitlines()[-lines:])


def course_folder(config, step: str, assignment: str) -> Path:
    """``source/<assignment>``, ``release/<assignment>``, ... of the course nbgrader grades."""
    coursedir = CourseDirectory(config=config)
    return Path(coursedir.format_path(getattr(coursedir, f"{step}_directory"), ".", assignment))


def read_notebook(path: Path) -> dict:
    """A notebook of the course's (JSON), e.g. its release."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise RuntimeError(f"{path} is not a Jupyter notebook (no list of cells)")
    return nb


def trusted_notebook(config, resources: dict) -> dict:
    """The release notebook of the assignment being graded: the student's starting point, never the solution.

    The course's ``release/<assignment>/<notebook>.ipynb`` (written by ``nbgrader generate_assignment``), else the
    kit's own committed release of that course. The layout, the read-only cells and the test cells' checks come
    from it; an answer cell the student's notebook lacks is its stub."""
    name, notebook = resources["nbgrader"]["assignment"], resources["nbgrader"]["notebook"]
    path = course_folder(config, "release", name) / f"{notebook}.ipynb"
    if not path.is_file():
        committed = ROOT / "release" / name / f"{notebook}.ipynb"
        if name not in courses() or not committed.is_file():
            raise RuntimeError(f"no release notebook {path}: run nbgrader generate_assignment {name}")
        path = committed
    return read_notebook(path)


# ---------------------------------------------------------------------------------------------------------------
# Intake: what nbgrader copies and reads of a submitted folder


class Refused(Exception):
    """A submitted file the kit does not take, with the reason (one line)."""


def _kind(mode: int) -> str | None:
    """What an entry that is not a plain file or folder is, or None."""
    for test, what in ((stat.S_ISLNK, "a symbolic link (links are not followed)"), (stat.S_ISFIFO, "a named pipe"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return what
    return None if stat.S_ISREG(mode) or stat.S_ISDIR(mode) else "not a plain file"


def _plain_file_problem(st: os.stat_result, limit: int) -> str | None:
    kind = _kind(st.st_mode)
    if kind or stat.S_ISDIR(st.st_mode):
        return kind or "a folder"
    if st.st_nlink > 1:
        return f"a file with {st.st_nlink} hard links (a copy of another file: hand in the file itself)"
    if st.st_size > limit:
        return f"{st.st_size} bytes, over the limit of {limit}"
    return None


def read_plain_file(path: str | Path, limit: int, dir_fd: int | None = None) -> bytes:
    """The bytes of ``path``, a plain file of at most ``limit`` bytes, opened without following a link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as err:
        try:
            st = os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            raise Refused(f"unreadable ({err.strerror})")
        raise Refused(_kind(st.st_mode) or f"unreadable ({err.strerror})")
    try:
        problem = _plain_file_problem(os.fstat(fd), limit)
        if problem:
            raise Refused(problem)
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 20):
            size += len(chunk)
            if size > limit:  # it grew while it was read
                raise Refused(f"over {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def linked_part(path: Path, below: Path) -> Path | None:
    """The first folder or file from ``below`` (excluded) down to ``path`` that is a link or not a folder/file."""
    try:
        rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(below))
    except ValueError:
        return None
    current = Path(os.path.abspath(below))
    for part in rel.parts:
        current = current / part
        try:
            if stat.S_ISLNK(os.lstat(current).st_mode):
                return current
        except OSError:
            return current
    return None


def submitted_folder(coursedir: CourseDirectory) -> Path:
    """``submitted/`` of the course (pathlib drops the ``.`` parts): what is below it is the students'."""
    return Path(coursedir.format_path(coursedir.submitted_directory, ".", "."))


def _ignored(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in patterns)


class FolderIntake:
    """Copies a submitted folder's plain files (never a notebook: nbgrader reads those) into ``dest``, opening
    nothing through a link; every refusal is one line (the first :data:`MAX_REFUSAL_LINES`, then a count)."""

    def __init__(self, log, who: str, ignore: list[str], max_file: int, max_total: int) -> None:
        self.log, self.who, self.ignore = log, who, ignore
        self.max_file, self.max_total = max_file, max_total
        self.entries = self.total = 0
        self.refusals: list[str] = []

    def refuse(self, rel: str, why: str) -> None:
        self.refusals.append(rel)
        if len(self.refusals) <= MAX_REFUSAL_LINES:
            self.log.warning("kvkit: not copied from %s's submitted folder: %s: %s", self.who, quoted(rel), why)

    def copy(self, source: Path, dest: Path) -> None:
        try:
            fd = os.open(source, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as err:
            self.log.warning("kvkit: nothing copied from %s's submitted folder %s: %s", self.who, quoted(source),
                             "a symbolic link (links are not followed)" if os.path.islink(source) else err.strerror)
            return
        try:
            self._copy_folder(fd, "", dest, 0)
        finally:
            os.close(fd)
        if len(self.refusals) > MAX_REFUSAL_LINES:
            self.log.warning("kvkit: and %d more entries of %s's submitted folder not copied",
                             len(self.refusals) - MAX_REFUSAL_LINES, self.who)

    def _copy_folder(self, fd: int, rel: str, dest: Path, depth: int) -> None:
        try:
            names = sorted(os.listdir(fd))
        except OSError as err:
            self.refuse(rel or ".", f"unreadable ({err.strerror})")
            return
        for name in names:
            path = rel + name
            if _ignored(name, self.ignore):
                continue
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                self.refuse(path, "a name that is not valid UTF-8")
                continue
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except OSError as err:
                self.refuse(path, f"unreadable ({err.strerror})")
                continue
            if stat.S_ISDIR(st.st_mode):
                if name.endswith(".ipynb"):
                    continue
                if depth >= MAX_DEPTH:
                    self.refuse(path, f"a folder more than {MAX_DEPTH} levels deep")
                    continue
                try:
                    sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                except OSError as err:
                    self.refuse(path, f"unreadable ({err.strerror})")
                    continue
                try:
                    self._copy_folder(sub, path + "/", dest, depth + 1)
                finally:
                    os.close(sub)
                continue
            if stat.S_ISREG(st.st_mode) and name.endswith(".ipynb"):
                continue  # nbgrader reads notebooks itself (IntakeExporter)
            self.entries += 1
            if self.entries > MAX_ENTRIES:
                self.refuse(path, f"more than {MAX_ENTRIES} files")
                continue
            room = min(self.max_file, self.max_total - self.total)
            try:
                data = read_plain_file(name, room, dir_fd=fd)
            except Refused as why:
                reason = str(why)
                if room < self.max_file and reason.startswith(f"{st.st_size} bytes"):
                    reason = f"{st.st_size} bytes, over the {self.max_total} bytes all files together may take"
                self.refuse(path, reason)
                continue
            self.total += len(data)
            target = dest / path
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink() or target.exists():
                target.unlink()
            target.write_bytes(data)


class _SafeCopy(BaseConverter):
    """Takes the place of nbgrader's copy of the submitted folder (``BaseConverter.init_assignment``)."""

    def init_assignment(self, assignment_id: str, student_id: str) -> None:
        source = Path(self._format_source(assignment_id, student_id))
        dest = Path(self._format_dest(assignment_id, student_id))
        submitted = submitted_folder(self.coursedir)
        who = quoted(student_id)
        linked = linked_part(source, submitted)
        if linked is not None:
            self.log.warning("kvkit: nothing copied from %s's submitted folder: %s is a symbolic link (links are "
                             "not followed)", who, quoted(linked))
            return
        FolderIntake(self.log, who, list(self.coursedir.ignore), self.coursedir.max_file_size * 1000,
                     self.coursedir.max_dir_size * 1000).copy(source, dest)


class KitAutograde(Autograde, _SafeCopy):
    """nbgrader's ``Autograde`` with the kit's copy of the submitted folder (:class:`FolderIntake`), and its read
    of a submission's ``timestamp.txt`` (nbgrader's opens it through links and reads it whole)."""

    def start(self) -> None:
        self.coursedir.get_existing_timestamp = self.existing_timestamp  # this run's course directory only
        super().start()

    def existing_timestamp(self, folder: str):
        """``folder/timestamp.txt`` as nbgrader reads it, read as a plain file of at most 1000 bytes; one that is
        refused or is no timestamp is ignored with one line (the submission counts as on time)."""
        from nbgrader.utils import parse_utc

        path = os.path.join(folder, "timestamp.txt")
        if not os.path.lexists(path):
            return None
        try:
            text = read_plain_file(path, 1000).decode("utf-8", "replace").strip()
            return parse_utc(text) if text else None
        except Refused as why:
            problem = str(why)
        except Exception as err:  # what nbgrader's parser makes of a student's text
            problem = f"not a timestamp ({one_line(err)[:100]})"
        self.log.warning("kvkit: %s ignored: %s", quoted(path), problem)
        return None


def install_intake() -> None:
    """Make ``nbgrader autograde`` (the command, and the formgrader's button) use :class:`KitAutograde`."""
    import nbgrader.apps.autogradeapp as app

    if not (isinstance(app.Autograde, type) and issubclass(app.Autograde, KitAutograde)):
        app.Autograde = KitAutograde


_REFUSED: dict[tuple[str, str, str], str] = {}  # (student, assignment, notebook) -> why, set on nbgrader's first pass


def refusal(resources: dict) -> str | None:
    """Why the notebook being autograded was refused (then it is graded as the untouched release), or None."""
    nbgrader = resources.get("nbgrader") or {}
    return _REFUSED.get((nbgrader.get("student"), nbgrader.get("assignment"), nbgrader.get("notebook")))


def notebook_problem(nb) -> str | None:
    """What makes ``nb`` (parsed JSON) something nbgrader cannot take as a notebook, or None."""
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return "not a Jupyter notebook (no list of cells)"
    if not isinstance(nb.get("nbformat"), int):
        return "not a Jupyter notebook (no nbformat version)"
    for number, cell in enumerate(nb["cells"], 1):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            return f"cell {number} is not a notebook cell"
        source = cell.get("source", "")
        if not (isinstance(source, str) or (isinstance(source, list) and all(isinstance(s, str) for s in source))):
            return f"cell {number}'s source is not text"
    return None


CELL_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # nbformat 4.5's cell ids


def _grade_id(cell: dict) -> str | None:
    claim = cell["metadata"].get("nbgrader") if isinstance(cell.get("metadata"), dict) else None
    grade_id = claim.get("grade_id") if isinstance(claim, dict) else None
    return grade_id if isinstance(grade_id, str) else None


def _attachments(value) -> dict | None:
    """A cell's attachments when they are what nbformat allows ({name: {mime type: text}}), else None."""
    def text(v):
        return isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, dict) and v
                                       and all(isinstance(m, str) and text(d) for m, d in v.items())
                                       for k, v in value.items()):
        return value
    return None


def as_released(nb: dict, release: dict) -> list[int]:
    """The submitted notebook ``nb`` (parsed JSON, its cells' types and sources checked) rewritten in place so that
    only its cells' types, sources and grade ids come from the student; the rest from the ``release`` notebook.

    What a notebook says about itself (a cell's points, kind, schema version or checksum, the kernel it asks for,
    outputs, cell ids) is the student's to edit, and nbgrader's own checks stop the whole class's run on such edits.
    So the notebook gets the release's metadata and format version; a cell whose grade id names a cell of the release
    of its own type, and no other cell of the notebook claims, gets that cell's metadata (an honest notebook's own);
    every other cell gets none, and nbgrader reads it as an ordinary cell (an answer cell so made counts as the
    release's stub, as ``kvkit grade`` counts a duplicated one; a test cell is put back from the gradebook). Outputs
    are cleared (the kernel runs the notebook again), cell ids kept where valid and unique, attachments where
    well formed. Returns the numbers of the cells that claimed nbgrader metadata and lost it."""
    released = {_grade_id(c): c for c in release["cells"] if _grade_id(c)}
    claims = Counter(_grade_id(c) for c in nb["cells"])
    with_ids = release.get("nbformat", 4) > 4 or release.get("nbformat_minor", 0) >= 5
    nb["metadata"] = json.loads(json.dumps(release.get("metadata", {})))
    nb["nbformat"], nb["nbformat_minor"] = release.get("nbformat", 4), release.get("nbformat_minor", 0)
    lost, ids = [], set()
    for number, cell in enumerate(nb["cells"], 1):
        grade_id = _grade_id(cell)
        own = released.get(grade_id) if grade_id else None
        claimed = isinstance(cell.get("metadata"), dict) and "nbgrader" in cell["metadata"]
        if own is not None and own.get("cell_type") == cell["cell_type"] and claims[grade_id] == 1:
            metadata = json.loads(json.dumps(own.get("metadata", {})))
        else:
            metadata = {}
            if claimed:
                lost.append(number)
        attachments = _attachments(cell.get("attachments"))
        rebuilt = {"cell_type": cell["cell_type"], "metadata": metadata, "source": cell.get("source", "")}
        if attachments and cell["cell_type"] != "code":
            rebuilt["attachments"] = attachments
        if cell["cell_type"] == "code":
            rebuilt.update(outputs=[], execution_count=None)
        if with_ids:
            cell_id = cell.get("id")
            if not (isinstance(cell_id, str) and CELL_ID.match(cell_id)) or cell_id in ids:
                cell_id = next(f"cell-{number}-{n}" for n in range(len(nb["cells"]) + 1)
                               if f"cell-{number}-{n}" not in ids)
            ids.add(cell_id)
            rebuilt["id"] = cell_id
        cell.clear()
        cell.update(rebuilt)
    return lost


class IntakeExporter(NotebookExporter):
    """``Autograde.exporter_class``: on nbgrader's first pass, the submitted notebook is read without following a
    link. One that is refused (a link or in a linked folder, not a plain file, over ``max_file_size``, not a
    notebook) is replaced by the course's release notebook, which scores 0, with one line in the log."""

    def from_filename(self, filename, resources=None, **kw):
        converter = self.parent
        if not (isinstance(converter, Autograde) and converter._sanitizing and resources
                and "nbgrader" in resources):
            return super().from_filename(filename, resources, **kw)
        info = resources["nbgrader"]
        key = (info["student"], info["assignment"], info["notebook"])
        _REFUSED.pop(key, None)
        coursedir = converter.coursedir
        submitted = submitted_folder(coursedir)
        try:
            linked = linked_part(Path(filename), submitted)
            if linked is not None:
                what = "it is" if linked == Path(os.path.abspath(filename)) else f"{quoted(linked.name)} is"
                raise Refused(f"{what} a symbolic link (a notebook is graded only from the student's own file)")
            data = read_plain_file(filename, coursedir.max_file_size * 1000)
            try:
                text = data.decode("utf-8")
                parsed = json.loads(text)
            except (UnicodeDecodeError, ValueError, RecursionError) as err:
                raise Refused(f"not a readable notebook ({quoted(str(err) or type(err).__name__)[:200]})")
            problem = notebook_problem(parsed)
            if problem:
                raise Refused(problem)
            lost = as_released(parsed, trusted_notebook(self.config, resources))
            if lost:
                self.log.warning("kvkit: %s's %s.ipynb: cell %s carries nbgrader metadata that is no cell's of the "
                                 "release, or that two cells claim (edited by hand, or a cell copied?); read as an "
                                 "ordinary cell", quoted(info["student"]), quoted(info["notebook"]),
                                 ", ".join(map(str, lost[:10])) + (", ..." if len(lost) > 10 else ""))
            text = json.dumps(parsed)
            try:
                nb = nbformat.reads(text, as_version=4)
                nbformat.validate(nb)
            except Exception as err:  # nbformat's own conversion failed: the notebook is broken
                raise Refused(f"not a readable notebook ({type(err).__name__}: {quoted(str(err))[:200]})")
        except Refused as why:
            _REFUSED[key] = str(why)
            self.log.warning("kvkit: %s's %s.ipynb refused: %s; graded 0 as the untouched release",
                             quoted(info["student"]), quoted(info["notebook"]), why)
            nb = nbformat.reads(json.dumps(trusted_notebook(self.config, resources)), as_version=4)
        if "metadata" not in resources or resources["metadata"] == "":
            resources["metadata"] = {}
        resources["metadata"]["name"] = info["notebook"]
        resources["metadata"]["path"] = os.path.dirname(filename)
        return self.from_notebook_node(nb, resources, **kw)


class OverwriteReleasedCells(OverwriteCells):
    """``Autograde``'s ``OverwriteCells`` without its false alarm (nbgrader's issue #1961): a read-only cell that the
    student's notebook holds exactly as released (a test cell whose hidden region ``generate_assignment`` cut, so its
    checksum is not the gradebook's) gets the gradebook's source first. nbgrader then reports only the read-only cells
    the student changed ("Attribute 'checksum' ... has changed!") and puts those back, as it does every cell."""

    def preprocess(self, nb: NotebookNode, resources: dict):
        self._released = {_grade_id(c): "".join(c.get("source", "")) for c in trusted_notebook(self.config, resources)[
            "cells"] if _grade_id(c)}
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in self._released and "".join(cell.source) == self._released[grade_id]:
            try:
                source = self.gradebook.find_source_cell(grade_id, self.notebook_id, self.assignment_id)
            except MissingEntry:
                pass
            else:
                if source.locked:
                    cell.source = source.source
        return super().preprocess_cell(cell, resources, index)


# ---------------------------------------------------------------------------------------------------------------
# The kernel


class NameTodoStubs(NbGraderPreprocessor):
    """``GenerateAssignment``: nbgrader leaves the same stub in every answer cell; this one names the cell's TODO."""

    def preprocess(self, nb: NotebookNode, resources: dict):
        """The TODOs and the language of the course being released (one formgrader serves every course)."""
        course = course_named(resources["nbgrader"]["assignment"])
        self._todos, self._lang = course.layout.assignment.todos, course.lang
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        todos = cell.get("metadata", {}).get("kvkit", {}).get("todos", [])
        if cell.get("cell_type") == "code" and todos:
            lines, stubs = cell.source.splitlines(), iter(todos)
            for number, line in enumerate(lines):
                if line.strip() == "raise NotImplementedError()":
                    todo = self._todos[next(stubs)]  # the task in the language of the course being released
                    lines[number] = line.replace("NotImplementedError()",
                                                 f"NotImplementedError({todo.stub_message_in(self._lang)!r})")
            cell.source = "\n".join(lines)
        return cell, resources


def kernel_env(box: Sandbox) -> dict:
    """The confined kernel's environment: the sandbox child's (nothing of this process's), plus
    ``NBGRADER_EXECUTION`` as nbgrader set it for this run (``autograde``): nbgrader's documented way for a notebook
    to skip work while it is graded (part 1's timing demo does)."""
    env = box.child_env()
    if "NBGRADER_EXECUTION" in os.environ:
        env["NBGRADER_EXECUTION"] = os.environ["NBGRADER_EXECUTION"]
    return env


class ConfinedKernelManager(AsyncKernelManager):
    """A kernel started inside a :class:`Sandbox`, over unix sockets in the sandbox's ``ipc/`` folder: forked by
    ``zygote`` (a :class:`kvkit.grading.remote.zygote.Zygote` of kind ``kernel``) where one is given, else started
    cold; either way it enters the same jail before it runs a cell."""

    def __init__(self, box: Sandbox, memory_bytes: int, zygote=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.box = box
        self.memory_bytes = memory_bytes
        self.zygote = zygote
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
        self._role = (config, ["-f", self.connection_file, *(extra_arguments or [])])  # what a forked kernel gets
        return self.box.command(argv(self.box.harness, "kernel", json.dumps(config), self.info_file, *self._role[1]))

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw) -> None:
        if self.zygote is None:
            return await super()._async_launch_kernel(kernel_cmd, **kw)
        config, kernel_args = self._role
        output = kw.get("stdout")  # a descriptor (ConfinedExecute's pipe), or this process's own stdout
        child = self.zygote.fork_kernel(self.box, config, str(self.info_file), kernel_args,
                                        output if isinstance(output, int) else 1, kw.get("env") or {}, timeout=60)
        provisioner = self.provisioner  # what its launch_kernel sets for a Popen, set for the forked child
        provisioner.process, provisioner.pid, provisioner.pgid = child, child.pid, child.pid  # its own session
        provisioner.cwd = kw.get("cwd")
        self._reconcile_connection_info(provisioner.connection_info)

    def confinement(self) -> dict:
        """What the kernel reported after confining itself (untrusted: only for warnings)."""
        try:
            with open(self.info_file, "rb") as f:  # noqa: PTH123 (bounded read)
                info = json.loads(f.read(100_000))
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}


def output_size(out) -> int:
    """Bytes an output takes in the notebook (its text for a stream, its JSON otherwise)."""
    if out.get("output_type") == "stream":  # its text, and what an output costs beside it
        text = out.get("text", "")
        return 50 + len(("".join(text) if isinstance(text, list) else str(text)).encode("utf-8", "replace"))
    return len(json.dumps(out, ensure_ascii=False, default=str).encode("utf-8", "replace"))


def shrink(out, room: int) -> int:
    """Cut ``out`` (in place) to at most ``room`` bytes as well as its kind allows; the bytes it keeps."""
    kind = out.get("output_type")
    if kind == "stream":
        text = out.get("text", "")
        data = ("".join(text) if isinstance(text, list) else str(text)).encode("utf-8", "replace")
        out["text"] = data[:max(room - 50, 0)].decode("utf-8", "ignore")
    elif kind == "error":
        out["ename"], out["evalue"], out["traceback"] = str(out.get("ename", ""))[:100], "", []
    else:
        out["data"], out["metadata"] = {}, {}
    return output_size(out)


def cut_note(dropped: int, cell_limit: int, limit: int) -> NotebookNode:
    return from_dict({"output_type": "stream", "name": "stderr",
                      "text": f"{CUT_NOTE}: {dropped} bytes more were not kept (each cell keeps at most {cell_limit} "
                              f"bytes of output, the notebook {limit})]\n"})


class ConfinedExecute(Execute):
    """nbgrader's ``Execute``, with the kernel confined and the graded test cells left out of it."""

    memory_mb = Integer(help="address space of the kernel, in MB (as kvkit grade's child)").tag(config=True)
    max_cell_output_bytes = Integer(MAX_CELL_OUTPUT_BYTES, help="bytes of outputs each cell keeps").tag(config=True)
    max_output_bytes = Integer(MAX_OUTPUT_BYTES, help="bytes of outputs the whole notebook keeps").tag(config=True)

    @default("memory_mb")
    def _memory_mb(self) -> int:
        from ..grading.grade import MEMORY_MB

        return MEMORY_MB

    def preprocess(self, nb: NotebookNode, resources: dict):
        if refusal(resources) is not None:  # graded as the release: nothing of the student's to run
            return nb, resources
        folder = course_folder(self.config, "source", resources["nbgrader"]["assignment"])
        trees = {f"home/{name}": folder / name for name in SUPPORT
                 if (folder / name).is_dir() and not (folder / name).is_symlink()}
        if len(trees) < len(SUPPORT):  # the verdicts do not need them; the student's notebook cells do
            self.log.warning("the course's source folder holds no %s beside the notebook, so the notebook's own "
                             "check cells cannot run (the grades are not affected): run `make notebook` (kvkit "
                             "notebook) after a clone", " or ".join(f"{name}/" for name in SUPPORT))
        self._kept: dict[int, int] = {}
        self._dropped: dict[int, int] = {}
        self._noted: set[int] = set()
        self._kernel_output = OutputTail()
        self._drain: threading.Thread | None = None
        self._zygote = self._kernel_zygote(course_named(resources["nbgrader"]["assignment"]))
        with Sandbox(trees, hide=[course_root(self.config)], shared=("ipc",)) as box:
            if box.mode not in CONFINED:
                self.log.warning(NO_ISOLATION)
            self._box = box
            self._held = {index for index, cell in enumerate(nb.cells) if is_test_cell(cell)}
            try:
                nb, resources = super().preprocess(nb, resources)
            except Exception as err:  # e.g. output flooding past nbclient's iopub timeout, a kernel that died
                self.log.warning("kvkit: the notebook's own run in its kernel stopped early (%s: %s); the cells "
                                 "after it were not run (the grades do not depend on them)", type(err).__name__,
                                 one_line(err)[:200])
            finally:
                for index, cell in enumerate(nb.cells):  # outputs updated by display ids after their cell ran
                    if cell.get("cell_type") == "code":
                        self._bound(cell, index)
        self._log_kernel_output()  # after the sandbox ended every process the kernel started (their output too)
        return nb, resources

    def create_kernel_manager(self):
        zygote = self._zygote if self._zygote is not None and self._zygote.mode == self._box.mode else None
        self.km = self._confined_km = ConfinedKernelManager(self._box, self.memory_mb * 1024 * 1024,
                                                            zygote=zygote, config=self.config)
        return self.km

    def _kernel_zygote(self, course: Course):
        """This process's kernel zygote for ``course``'s assignment, or None where kernels start cold (the
        isolation mode, or a zygote that did not start: then the log says so)."""
        from ..grading.remote.warm import worker_warm

        try:
            return worker_warm().zygote(course.layout, "kernel")
        except GraderError as err:
            self.log.warning("kvkit: the notebooks' kernels start cold (%s)", one_line(err)[:200])
            return None

    async def async_start_new_kernel(self, **kwargs) -> None:
        read, write = os.pipe()  # the kernel's stdout and stderr: quoted into the log afterwards, never echoed
        self._drain = self._kernel_output.drain(read)
        kwargs.update(env=kernel_env(self._box), cwd=str(self._box.workdir), stdout=write, stderr=write)
        try:
            await super().async_start_new_kernel(**kwargs)
        finally:
            os.close(write)

    start_new_kernel = run_sync(async_start_new_kernel)

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        # read now: the kernel wrote it before it answered, before any cell of the student's ran (nbclient drops
        # the kernel manager when the notebook is done)
        self._warn_about(self._confined_km.confinement())
        return kc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    def _warn_about(self, info: dict) -> None:
        for problem in (info.get("problems") or [])[:10] if isinstance(info.get("problems"), list) else []:
            self.log.warning("the notebook's kernel was confined with a gap: %s", quoted(problem)[:200])
        if info.get("exposed"):
            exposed = info["exposed"] if isinstance(info["exposed"], list) else [info["exposed"]]
            self.log.warning("the notebook's kernel could read %s", quoted(", ".join(map(str, exposed)))[:500])

    def _log_kernel_output(self) -> None:
        if self._drain is not None:
            self._drain.join(timeout=5)
        tail = self._kernel_output
        if tail.total:
            self.log.info("the notebook's kernel wrote %d bytes to its stdout and stderr; the end of it:\n%s",
                          tail.total, quote_block(tail.text(2000)))

    # -- outputs, bounded in bytes as they arrive and after each cell -------------------------------------------

    def output(self, outs, msg, display_id, cell_index):
        out = super().output(outs, msg, display_id, cell_index)
        if out is None:
            return out
        size = output_size(out)
        kept = self._kept.get(cell_index, 0)
        room = min(self.max_cell_output_bytes - kept, self.max_output_bytes - sum(self._kept.values()))
        if size > room:
            if display_id or (out.get("output_type") == "stream" and room > 0):
                kept_now = shrink(out, room)  # kept in place: display ids point at it
            else:
                outs.pop()
                kept_now = 0
            self._dropped[cell_index] = self._dropped.get(cell_index, 0) + size - kept_now
            size = kept_now
        self._kept[cell_index] = kept + size
        return out

    def preprocess_cell(self, cell, resources, index):
        if index in self._held:  # a graded check: the grader runs it; its code is never sent to the kernel
            return cell, resources
        try:
            return super().preprocess_cell(cell, resources, index)
        finally:
            if cell.get("cell_type") == "code":
                self._bound(self.nb.cells[index] if index < len(self.nb.cells) else cell, index)

    def _bound(self, cell, index: int) -> None:
        """Cut ``cell``'s outputs to what this cell and the notebook may keep, with a note where cut (outputs are
        shrunk, never removed here: nbclient's display ids point at them by place)."""
        outputs = [o for o in cell.get("outputs", [])
                   if not (o.get("output_type") == "stream" and str(o.get("text", "")).startswith(CUT_NOTE))]
        budget = min(self.max_cell_output_bytes,
                     self.max_output_bytes - sum(v for k, v in self._kept.items() if k != index))
        used, dropped = 0, self._dropped.get(index, 0)
        for out in outputs:
            size = output_size(out)
            if used + size > budget:
                now = shrink(out, budget - used)
                dropped += max(size - now, 0)
                size = now
            used += size
        self._kept[index] = used
        if dropped:
            self._dropped[index] = dropped
            if index not in self._noted:
                self._noted.add(index)
                if len(self._noted) <= 10:
                    self.log.warning("kvkit: the outputs of cell %d were cut: %d bytes not kept (each cell keeps at "
                                     "most %d bytes, the notebook %d)", index + 1, dropped,
                                     self.max_cell_output_bytes, self.max_output_bytes)
            outputs.append(cut_note(dropped, self.max_cell_output_bytes, self.max_output_bytes))
        cell.outputs = outputs


# ---------------------------------------------------------------------------------------------------------------
# The verdicts


class StartTrustedGrading(NbGraderPreprocessor):
    """Build the package from the notebook's answer cells and start grading it, while the notebook runs."""

    def preprocess(self, nb: NotebookNode, resources: dict):
        course = course_named(resources["nbgrader"]["assignment"])
        trusted = trusted_notebook(self.config, resources)
        started = {"trusted": trusted}
        if refusal(resources) is None:
            given = f"{resources['nbgrader']['student']}'s notebook"
            started["grading"] = start_grading(course, nb, trusted, hide=[course_root(self.config)], given=given)
        resources["kvkit"] = started
        return nb, resources


_GRADING = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kvkit-grading", initializer=main_thread_only)


def start_grading(course: Course, nb: NotebookNode, trusted: dict, hide: list[Path], given: str = "notebook") -> Future:
    """:func:`kvkit.grading.grade.grade` of ``nb``'s answer cells (``course``'s assignment, in its language), taken in
    against the release notebook ``trusted`` (:func:`kvkit.grading.intake.take_in_notebook`), in a worker thread; its
    failure (one line) is the future's exception."""
    from ..grading.grade import grade  # (these import torch: only where a notebook is graded)
    from ..grading.intake import take_in_notebook
    from ..grading.remote.warm import worker_warm

    scratch = Path(tempfile.mkdtemp(prefix="kvkit-autograde-"))
    try:
        submission = take_in_notebook(course.layout, json.loads(json.dumps(nb)), trusted, scratch, given=given)
    except Exception as err:
        shutil.rmtree(scratch, ignore_errors=True)
        failed: Future = Future()
        failed.set_exception(err)
        return failed

    def work():
        try:
            return grade(course.layout, submission, hide=hide, lang=course.lang, warm=worker_warm())
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    return _GRADING.submit(work)


def one_line(err: BaseException) -> str:
    return quoted((str(err).strip().splitlines() or [type(err).__name__])[0])[:300]


class TrustedVerdicts(NbGraderPreprocessor):
    """Every graded cell's outputs become the verdict of ``kvkit grade`` on the notebook's answer cells."""

    def preprocess(self, nb: NotebookNode, resources: dict):
        course = course_named(resources["nbgrader"]["assignment"])
        with speaking(course.lang):  # the course's language (one process serves every course)
            return self._verdicts(course, nb, resources)

    def _verdicts(self, course: Course, nb: NotebookNode, resources: dict):
        started = resources.get("kvkit") or {}
        trusted = started.get("trusted") or trusted_notebook(self.config, resources)
        who = quoted(resources["nbgrader"]["student"])
        total = sum(float(c["metadata"]["nbgrader"].get("points", 0) or 0) for c in trusted["cells"]
                    if is_test_cell(c))
        failure, report = refusal(resources), None
        if failure is not None:
            failure = f"the submitted notebook was refused: {failure}"
        else:
            try:
                grading = started.get("grading") or start_grading(course, nb, trusted,
                                                                  hide=[course_root(self.config)])
                report = grading.result()
            except Exception as err:  # the package could not be made or graded: every check fails, with why
                failure = f"not graded: {one_line(err)}"
        if report is None:
            self.log.warning("kvkit grade of %s: 0 / %g (%s)", who, total, failure)
            notes = [failure]
        else:
            self.log.info("kvkit grade of %s: %g / %g", who, report.score, report.max_score)
            for note in report.notes:
                (self.log.warning if note.startswith("WARNING") else self.log.info)("%s", note)
            notes = list(report.notes)
        from .checks import check_key  # (imports torch: only where a notebook is graded)

        keys = {c["metadata"]["nbgrader"]["grade_id"]: c["metadata"].get("kvkit", {}).get("check")
                for c in trusted["cells"] if is_test_cell(c)}
        results = {check_key(r.name, r.hidden): r for r in report.results} if report is not None else {}
        for cell in nb.cells:
            if is_test_cell(cell):
                if report is None:
                    cell.outputs = [from_dict({"output_type": "error", "ename": "NotGraded", "evalue": failure,
                                               "traceback": [failure]})]
                else:
                    result = results.get(keys.get(cell.metadata.nbgrader.get("grade_id")))
                    cell.outputs = [verdict_output(result)]
        if notes:
            nb.cells.insert(0, notes_cell(notes, with_id=nb.get("nbformat_minor", 0) >= 5))
        return nb, resources


def notes_cell(notes: list[str], with_id: bool = True) -> NotebookNode:
    """A cell at the top of the autograded notebook (and so of the feedback): the grader's notes, as text (a
    stream output, which the feedback shows escaped: a note may quote the student's output)."""
    text = "\n".join(str(note).rstrip("\n") for note in notes)[:20_000] + "\n"
    cell = {"cell_type": "code", "execution_count": None, "metadata": {"kvkit": {"notes": True}},
            "source": NOTES_CELL, "outputs": [{"output_type": "stream", "name": "stdout", "text": text}]}
    if with_id:  # nbformat 4.5 and later: every cell has an id
        cell["id"] = "kvkit-grader-notes"
    return from_dict(cell)


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


# ---------------------------------------------------------------------------------------------------------------
# Feedback


class ClearHiddenRegions(NbGraderPreprocessor):
    """``GenerateFeedback``: each test cell's hidden regions (``### BEGIN HIDDEN TESTS`` .. ``### END HIDDEN TESTS``,
    restored from the gradebook) are cut out; a marker left open cuts to the end of the cell. Other cells are the
    student's own text and stay as they are, whatever they hold, so no cell can make feedback fail."""

    begin = "BEGIN HIDDEN TESTS"
    end = "END HIDDEN TESTS"

    def preprocess_cell(self, cell, resources, index):
        if not is_test_cell(cell):
            return cell, resources
        kept, hidden = [], False
        for line in cell.source.split("\n"):
            if self.begin in line:
                hidden = True
            elif self.end in line:
                hidden = False
            elif not hidden:
                kept.append(line)
        cell.source = "\n".join(kept)
        return cell, resources

    def preprocess(self, nb, resources):
        nb, resources = super().preprocess(nb, resources)
        nb.metadata.pop("celltoolbar", None)
        return nb, resources

"""Each assignment's nbgrader courses (English and every edition), built and autograded once per session by real
nbgrader (its CLI, a real kernel, its SQLite gradebook), for every kit test that reads a class's grades.

An assignment's classes (:func:`autograded_classes`), in one course folder: the committed ``source/<name>/`` of each
of its courses with their support files, the kit's ``nbgrader_config.py``, the releases by one ``nbgrader
generate_assignment``, then one ``nbgrader autograde`` of every course's students (:func:`students_of`): in every
course ``s1_reference`` (the release filled with the reference), ``s2_untouched`` (the release) and ``s3_partial``
(the ``partial`` example); in some courses students of the tests that are about them (:data:`EXTRAS`). One process
thus grades every edition of the assignment, each in its language. The ``nbgrader_class`` fixture (``conftest.py``)
shares the classes between the test files and the xdist workers (``test_nbgrader_e2e.py``,
``test_nbgrader_intake.py``, ``test_editions.py``, ``test_autograde_class.py``); the tests mark themselves
``xdist_group(class_group(layout))`` so that one worker builds an assignment's classes while the other does other work
(``make test`` runs ``--dist loadgroup``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kvkit.course.folders import NBGRADER_CONFIG, ensure_kernel, nbgrader_command, nbgrader_env, write_support
from kvkit.course.submission import fill_notebook
from kvkit.course.template import notebook_points
from kvkit.courses import Course, courses_of
from kvkit.examples import example_texts
from kvkit.grading.notebooks import read_notebook
from kvkit.registry import ROOT

COURSE_ID = re.search(r'course_id = "([^"]+)"', NBGRADER_CONFIG.read_text()).group(1)
STANDARD = ("s1_reference", "s2_untouched", "s3_partial")  # in every course's class


def class_group(layout) -> str:
    """The xdist group of the tests that read ``layout``'s classes (every edition's)."""
    return f"nbgrader-class-{layout.assignment.name}"


def run_nbgrader(course: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([*nbgrader_command(), *args], cwd=course, capture_output=True, text=True,
                          env=nbgrader_env(**env), timeout=900)


def nbgrader_ok(course: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    done = run_nbgrader(course, *args, **env)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def cell_source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def is_answer(cell: dict) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution"))


def grade_cells(nb: dict) -> dict[str, dict]:
    return {c["metadata"]["nbgrader"]["grade_id"]: c for c in nb["cells"]
            if c["metadata"].get("nbgrader", {}).get("grade")}


def edited(notebook: Path, out: Path, edit: Callable[[dict], None]) -> Path:
    """A copy of ``notebook`` at ``out``, changed by ``edit(nb)``."""
    nb = read_notebook(notebook)
    edit(nb)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(nb, indent=1))
    return out


def delete_answers(nb: dict, keep=lambda cell: False) -> None:
    nb["cells"] = [c for c in nb["cells"] if not is_answer(c) or keep(c)]


def untag_answers(nb: dict) -> None:
    """Answer cells that keep the skeleton but lose their nbgrader metadata."""
    for cell in nb["cells"]:
        if is_answer(cell):
            del cell["metadata"]["nbgrader"]


def submission(course_root: Path, student: str, name: str) -> Path:
    """Where ``student``'s notebook of course ``name`` goes (its folder made)."""
    folder = course_root / "submitted" / student / name
    folder.mkdir(parents=True)
    return folder / f"{name}.ipynb"


# -- the students of test_nbgrader_e2e.py (part 1's English course) ---------------------------------------------------
HANG = "while True:\n    pass\n"
DELETED_CELL = "check_todo4_test_first_new_token_comes_from_the_prefill_logits"
# code appended to the first answer cell of an untouched release (the skeleton)
TAMPERING = {
    "t_rebinds_checks": "checks.run = checks.run_hidden = (lambda *a, **k: print('passed'))",
    "t_silences_stderr": "import sys, io\nsys.stderr = io.StringIO()",
    "t_rewrites_gradebook": (
        "import glob, sqlite3\n"
        "for _db in ['__COURSE__/gradebook.db', '../../../gradebook.db', *glob.glob('/tmp/*/*/*/gradebook.db')]:\n"
        "    try:\n"
        "        _con = sqlite3.connect(f'file:{_db}?mode=rw', uri=True)  # never creates a file\n"
        "        _con.execute('UPDATE grade SET manual_score = 51000')\n"
        "        _con.commit()\n"
        "        print('REWROTE', _db)\n"
        "    except Exception as _err:\n"
        "        print('GRADEBOOK', type(_err).__name__)"),
    "t_reads_secrets": (
        "import glob, os\n"
        "_found = []\n"
        "for _pattern in ['__COURSE__/gradebook.db', '__COURSE__/source/*/*.ipynb', '__KIT__/reference/kvcache/*.py',\n"
        "                 '__KIT__/autograder/material/*/hidden/*', '__COURSE__/submitted/*/*/*.ipynb', '../../../gradebook.db',\n"
        "                 '/*/*/hidden/*/goldens.json', '/*/*/*/hidden/*/goldens.json', '/*/*/reference/kvcache/*.py',\n"
        "                 '/*/*/*/reference/kvcache/*.py', '/tmp/*/*/*/gradebook.db']:\n"
        "    for _path in glob.glob(_pattern):\n"
        "        try:\n"
        "            open(_path, 'rb').read(1)\n"
        "            _found.append(_path)\n"
        "        except OSError:\n"
        "            pass\n"
        "print('SECRETS', _found)"),
}


def first_answer_cell(nb: dict) -> dict:
    return next(c for c in nb["cells"] if is_answer(c))


def tampered(release: Path, out: Path, student: str, course_root: Path) -> Path:
    """The untouched release with :data:`TAMPERING`'s code of ``student`` after its first answer cell's."""
    code = TAMPERING[student].replace("__COURSE__", str(course_root)).replace("__KIT__", str(ROOT))

    def tamper(nb):
        cell = first_answer_cell(nb)
        cell["source"] = cell_source(cell).rstrip("\n") + "\n\n\n" + code + "\n"

    return edited(release, out, tamper)


def edited_hidden_cell(source_nb: dict) -> str:
    """A hidden check of TODO 3 that the partial code fails (the student replaces it with ``pass``)."""
    return next(gid for gid, c in grade_cells(source_nb).items() if gid.startswith("hidden_todo3_"))


def e2e_students(course: Course, root: Path, release: Path) -> dict[str, Path]:
    """A TODO that hangs, the partial code with test cells edited and deleted, and tampered skeletons."""
    layout, name = course.layout, course.name
    partial = example_texts(layout, "partial")
    made = {"s4_hangs": fill_notebook(layout, release, submission(root, "s4_hangs", name),
                                      {todo.function: (HANG if todo.number == 2 else "stub")
                                       for todo in layout.assignment.todos.values()})}
    hidden = edited_hidden_cell(read_notebook(root / "source" / name / course.notebook_name))

    def edit_test_cells(nb):
        cells = []
        for cell in nb["cells"]:
            grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
            if grade_id == DELETED_CELL:
                continue
            if grade_id == hidden:
                cell["source"] = ["pass  # nothing to see here"]
                cell["metadata"]["nbgrader"]["points"] = 100
            cells.append(cell)
        nb["cells"] = cells

    target = submission(root, "s5_edits_test_cells", name)
    made["s5_edits_test_cells"] = edited(fill_notebook(layout, release, target, partial), target, edit_test_cells)
    for student in TAMPERING:
        made[student] = tampered(release, submission(root, student, name), student, root)
    return made


# -- the students of test_nbgrader_intake.py beside part 1's ----------------------------------------------------------
def untagged_student(course: Course, root: Path, release: Path) -> dict[str, Path]:
    return {"ja_untagged": edited(release, submission(root, "ja_untagged", course.name), untag_answers)}


def todo6_deleted_student(course: Course, root: Path, release: Path) -> dict[str, Path]:
    """The untouched release with TODO 6's answer cells deleted."""
    return {"s_todo6_deleted": edited(release, submission(root, "s_todo6_deleted", course.name), lambda nb: delete_answers(
        nb, keep=lambda c: 6 not in c["metadata"].get("kvkit", {}).get("todos", [])))}


# course name -> the students its class has beside STANDARD
EXTRAS: dict[str, Callable[[Course, Path, Path], dict[str, Path]]] = {
    "kv_cache": e2e_students,
    "kv_cache_ja": untagged_student,
    "kv_serving": todo6_deleted_student,
}


@dataclass
class AutogradedClass:
    """What one ``nbgrader autograde`` left of a course's class: its folder and the gradebook's content."""
    name: str  # the nbgrader assignment
    root: Path  # the course folder (shared by the assignment's courses)
    release: Path  # the release notebook
    submitted: dict[str, Path]  # student -> submitted notebook
    scores: dict[str, tuple[float, float]]  # student -> (score, max score)
    cells: dict[str, dict[str, tuple[float, float]]]  # student -> grade id -> (score, max score)
    manual: dict[str, list[float]]  # student -> manual scores set in the gradebook (none, unless tampered)
    full: float  # the release's points
    seconds: float  # the autograde's wall time (every course of the assignment)
    notebooks: int  # the notebooks it autograded (every course of the assignment)
    log: str  # nbgrader autograde's stdout and stderr

    def notebook(self, student: str) -> dict:
        """``student``'s autograded notebook."""
        return read_notebook(self.root / "autograded" / student / self.name / f"{self.name}.ipynb")


def students_of(course: Course, root: Path, release: Path) -> dict[str, Path]:
    """Write the class's submitted notebooks (student -> path)."""
    layout, name = course.layout, course.name
    made = {"s1_reference": fill_notebook(layout, release, submission(root, "s1_reference", name), {}),
            "s2_untouched": shutil.copyfile(release, submission(root, "s2_untouched", name)),
            "s3_partial": fill_notebook(layout, release, submission(root, "s3_partial", name),
                                        example_texts(layout, "partial"))}
    if name in EXTRAS:
        made.update(EXTRAS[name](course, root, release))
    return {student: Path(path) for student, path in made.items()}


def autograded_classes(layout, root: Path) -> dict[str, AutogradedClass]:
    """Every course of ``layout`` (English and each edition) in the one course folder ``root``, released by one
    ``nbgrader generate_assignment`` and autograded by one ``nbgrader autograde`` (one process serving every
    edition, each in its language, as the formgrader's does): course name -> its class."""
    from nbgrader.api import Gradebook

    ensure_kernel()
    courses = courses_of(layout)
    for course in courses:
        shutil.copytree(course.source, root / "source" / course.name)
        write_support(layout, root / "source" / course.name)  # the repository holds only the notebook
    shutil.copyfile(NBGRADER_CONFIG, root / "nbgrader_config.py")
    nbgrader_ok(root, "generate_assignment", "--assignment=*", "--force")
    releases = {course.name: root / "release" / course.name / course.notebook_name for course in courses}
    submitted = {course.name: students_of(course, root, releases[course.name]) for course in courses}
    started = time.perf_counter()
    run = nbgrader_ok(root, "autograde", "--assignment=*", "--force")
    seconds = time.perf_counter() - started
    classes = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", COURSE_ID) as gb:
        for course in courses:
            scores, cells, manual = {}, {}, {}
            for student in submitted[course.name]:
                found = gb.find_submission(course.name, student)
                scores[student] = (found.score, found.max_score)
                notebook = gb.find_submission_notebook(course.name, course.name, student)
                cells[student] = {g.name: (g.score, g.max_score) for g in notebook.grades}
                manual[student] = [g.manual_score for g in notebook.grades if g.manual_score is not None]
            classes[course.name] = AutogradedClass(
                course.name, root, releases[course.name], submitted[course.name], scores, cells, manual,
                notebook_points(read_notebook(releases[course.name])), seconds,
                sum(map(len, submitted.values())), run.stdout + run.stderr)
    return classes

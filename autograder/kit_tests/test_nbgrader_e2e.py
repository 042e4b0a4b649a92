"""The nbgrader course end to end: real nbgrader CLI, real Jupyter kernel, real SQLite gradebook.

In a temporary copy of the course: generate the release, add students, submit notebooks, autograde them all in
one ``nbgrader autograde`` run (timed), read the gradebook, make feedback and export the grades. The submissions:
the reference filled into the release, the untouched release, TODOs 1-2 right and 3-4 wrong, a TODO that hangs,
the partial code with test cells edited and deleted, and tampered skeletons that attack the grading from their
answer cells: rebinding the checks, silencing stderr, rewriting every grade in the gradebook with sqlite3, reading
the course's secrets. Every score must equal ``kvkit grade`` on the same notebook, every tampered skeleton must
score 0, and nothing a student's cell does may reach a secret or another student's grade.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from kvkit.course.courses import english
from kvkit.course.folders import NBGRADER_CONFIG, ensure_kernel, nbgrader_command, nbgrader_env, write_support
from kvkit.course.submission import fill_notebook, read_notebook
from kvkit.course.template import notebook_points
from kvkit.examples import example_texts
from kvkit.grade_all import grade_all
from kvkit.registry import ROOT
from layouts_support import PART1

pytestmark = pytest.mark.slow

pytest.importorskip("nbgrader")

HANG = "while True:\n    pass\n"
COURSE = english(PART1)  # nbgrader's assignment kv_cache
NAME, NOTEBOOK_NAME, SOURCE_DIR = COURSE.name, COURSE.notebook_name, COURSE.source
TODOS = PART1.assignment.todos
PARTIAL = example_texts(PART1, "partial")
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
HONEST = ["s1_reference", "s2_untouched", "s3_partial", "s4_hangs", "s5_edits_test_cells"]
STUDENTS = HONEST + sorted(TAMPERING)


def nbgrader(course: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    done = subprocess.run([*nbgrader_command(), *args], cwd=course, capture_output=True, text=True,
                          env=nbgrader_env(**env), timeout=900)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def grade_cells(nb: dict) -> dict[str, dict]:
    return {c["metadata"]["nbgrader"]["grade_id"]: c for c in nb["cells"]
            if c["metadata"].get("nbgrader", {}).get("grade")}


def cell_source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def first_answer_cell(nb: dict) -> dict:
    return next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution"))


def edited_hidden_cell(source_nb: dict) -> str:
    """A hidden check of TODO 3 that the partial code fails (the student replaces it with ``pass``)."""
    return next(gid for gid, c in grade_cells(source_nb).items() if gid.startswith("hidden_todo3_"))


def write_submissions(course: Path, release_nb: Path, kit: Path) -> dict[str, Path]:
    made = {}
    for student in STUDENTS:
        target = course / "submitted" / student / NAME / NOTEBOOK_NAME
        target.parent.mkdir(parents=True)
        made[student] = target
    fill_notebook(PART1, release_nb, made["s1_reference"], {})
    shutil.copyfile(release_nb, made["s2_untouched"])
    fill_notebook(PART1, release_nb, made["s3_partial"], PARTIAL)
    fill_notebook(PART1, release_nb, made["s4_hangs"], {todo.function: (HANG if todo.number == 2 else "stub")
                                                 for todo in TODOS.values()})
    edited = read_notebook(fill_notebook(PART1, release_nb, made["s5_edits_test_cells"], PARTIAL))
    hidden = edited_hidden_cell(read_notebook(course / "source" / NAME / NOTEBOOK_NAME))
    cells = []
    for cell in edited["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id == DELETED_CELL:
            continue
        if grade_id == hidden:
            cell["source"] = ["pass  # nothing to see here"]
            cell["metadata"]["nbgrader"]["points"] = 100
        cells.append(cell)
    edited["cells"] = cells
    made["s5_edits_test_cells"].write_text(json.dumps(edited, indent=1))
    for student, code in TAMPERING.items():
        nb = read_notebook(release_nb)
        cell = first_answer_cell(nb)
        code = code.replace("__COURSE__", str(course)).replace("__KIT__", str(kit))
        cell["source"] = cell_source(cell).rstrip("\n") + "\n\n\n" + code + "\n"
        made[student].write_text(json.dumps(nb, indent=1))
    return made


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """Run the whole course once; the tests below read what it left behind."""
    ensure_kernel()
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(SOURCE_DIR, root / "source" / NAME)
    write_support(PART1, root / "source" / NAME)  # the repository holds only the notebook
    shutil.copyfile(NBGRADER_CONFIG, root / "nbgrader_config.py")
    nbgrader(root, "generate_assignment", NAME, "--force")
    release_nb = root / "release" / NAME / NOTEBOOK_NAME
    submitted = write_submissions(root, release_nb, ROOT)

    started = time.perf_counter()
    autograde = nbgrader(root, "autograde", NAME, "--force")
    seconds = time.perf_counter() - started
    print(f"\nnbgrader autograde of {len(STUDENTS)} submissions: {seconds:.1f} s wall")

    from nbgrader.api import Gradebook

    course_id = re.search(r'course_id = "([^"]+)"', NBGRADER_CONFIG.read_text()).group(1)
    scores, cells, manual = {}, {}, {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id) as gb:
        for student in STUDENTS:
            submission = gb.find_submission(NAME, student)
            scores[student] = (submission.score, submission.max_score)
            notebook = gb.find_submission_notebook(Path(NOTEBOOK_NAME).stem, NAME, student)
            cells[student] = {g.name: (g.score, g.max_score) for g in notebook.grades}
            manual[student] = [g.manual_score for g in notebook.grades if g.manual_score is not None]
    for student in STUDENTS:
        print(f"  gradebook: {student:<22} {scores[student][0]:g} / {scores[student][1]:g}")
    return {"root": root, "release": release_nb, "submitted": submitted, "scores": scores, "cells": cells,
            "manual": manual, "seconds": seconds, "log": autograde.stdout + autograde.stderr}


def autograded(course, student: str) -> dict:
    return read_notebook(course["root"] / "autograded" / student / NAME / NOTEBOOK_NAME)


def printed(course, student: str) -> str:
    """What the student's cells printed during autograde."""
    return "\n".join("".join(o.get("text", "")) for c in autograded(course, student)["cells"]
                     for o in c.get("outputs", []))


@pytest.fixture(scope="module")
def kvkit_scores(course, tmp_path_factory):
    """``kvkit grade`` of each submitted notebook, two at a time through ``kvkit grade-all`` (the kit's own release
    notebook gives the package layout): student -> ``(score, max_score, the report's table)``."""
    folder = tmp_path_factory.mktemp("kvkit") / "notebooks"
    folder.mkdir()
    for student, notebook in course["submitted"].items():
        shutil.copyfile(notebook, folder / f"{student}.ipynb")
    grade_all(PART1, folder, folder.parent / "grades.csv", jobs=2, timeout=4.0, progress=False)
    rows = csv.DictReader((folder.parent / "grades.csv").open())
    return {row["student"]: (float(row["score"]), float(row["max_score"]), row["notes"]) for row in rows}


def test_total_points_equal_kvkit_grade_maximum(course, graded):
    total = notebook_points(read_notebook(course["release"]))
    assert total == graded(PART1, "reference").max_score
    for student in STUDENTS:
        assert course["scores"][student][1] == total, student


def test_reference_gets_full_marks_and_the_untouched_release_zero(course):
    score, max_score = course["scores"]["s1_reference"]
    assert score == max_score > 0
    assert course["scores"]["s2_untouched"][0] == 0


def test_partial_submission_gets_todos_1_and_2_only(course, graded):
    score, max_score = course["scores"]["s3_partial"]
    release = grade_cells(read_notebook(course["release"]))
    per_todo = {n: [0.0, 0.0] for n in TODOS}
    for grade_id, (got, out_of) in course["cells"]["s3_partial"].items():
        todo = release[grade_id]["metadata"]["kvkit"]["todo"]
        per_todo[todo][0] += got
        per_todo[todo][1] += out_of
    assert per_todo[1][0] == per_todo[1][1] and per_todo[2][0] == per_todo[2][1]
    assert per_todo[3][0] < per_todo[3][1] and per_todo[4][0] < per_todo[4][1]
    assert score == graded(PART1, "partial").score  # the same bodies graded by kvkit grade as an example package
    assert 0 < score < max_score


def test_hanging_submission_gets_zero_without_stalling(course):
    assert course["scores"]["s4_hangs"][0] == 0
    failed = [c for c in grade_cells(autograded(course, "s4_hangs")).values()
              if any("timed out" in "\n".join(o.get("traceback", [])) for o in c.get("outputs", []))]
    assert len(failed) >= 5, "the TODO 2 checks should each stop at the probe time limit"
    assert course["seconds"] < 300, f"autograde took {course['seconds']:.0f} s"


def test_deleted_and_edited_test_cells_are_restored(course):
    assert course["scores"]["s5_edits_test_cells"] == course["scores"]["s3_partial"]
    source = grade_cells(read_notebook(SOURCE_DIR / NOTEBOOK_NAME))
    hidden = edited_hidden_cell(read_notebook(SOURCE_DIR / NOTEBOOK_NAME))
    cells = course["cells"]["s5_edits_test_cells"]
    assert DELETED_CELL in cells and cells[hidden] == (0, cells[hidden][1])
    done = grade_cells(autograded(course, "s5_edits_test_cells"))
    assert cell_source(done[hidden]) == cell_source(source[hidden])  # hidden test back in place
    assert cell_source(source[DELETED_CELL]) in cell_source(done[DELETED_CELL])  # re-added by nbgrader


@pytest.mark.parametrize("student", sorted(TAMPERING))
def test_a_tampered_skeleton_scores_zero(course, student):
    assert course["scores"][student] == (0, course["scores"]["s1_reference"][1]), course["cells"][student]


def test_no_cell_reaches_the_secrets_or_another_students_grade(course):
    secrets = printed(course, "t_reads_secrets")
    assert "SECRETS []" in secrets, secrets
    assert "REWROTE" not in printed(course, "t_rewrites_gradebook")
    assert all(manual == [] for manual in course["manual"].values()), course["manual"]
    assert course["scores"]["s1_reference"][0] == course["scores"]["s1_reference"][1]


def test_graded_cells_are_not_run_in_the_students_kernel(course):
    """The tampering student's ``checks.run = ...`` had nothing to act on: every graded cell holds the grader's
    verdict, and the cells' hidden code never ran in the student's kernel."""
    done = autograded(course, "t_rebinds_checks")
    for cell in grade_cells(done).values():
        outputs = cell.get("outputs", [])
        assert len(outputs) == 1 and outputs[0]["output_type"] == "error", cell["outputs"]
        assert outputs[0]["traceback"][0].startswith("FAILED: ")


def test_kvkit_grade_gives_the_same_scores(course, kvkit_scores):
    for student in STUDENTS:
        score, max_score, notes = kvkit_scores[student]
        assert (score, max_score) == course["scores"][student], f"{student}: {notes}"


def test_feedback_shows_failure_reasons_but_not_the_hidden_tests_and_grades_export(course):
    root = course["root"]
    nbgrader(root, "generate_feedback", NAME, "--force")
    hidden_names = [line.split("(")[0][4:] for line in
                    "\n".join(path.read_text() for path in PART1.hidden_tests.glob("test_*.py")).splitlines()
                    if line.startswith("def test_")]
    assert hidden_names
    for student in STUDENTS:
        html = (root / "feedback" / student / NAME / f"{NAME}.html").read_text()
        own = TAMPERING.get(student, "")  # a tampering student's own cell may name these
        assert "Hidden check of TODO" in html  # the cells are there ...
        for secret in ["BEGIN HIDDEN TESTS", "run_hidden", "goldens=", "WIDE_CACHE", "def test_", *hidden_names]:
            assert secret in own or secret not in html, f"{student}'s feedback shows {secret!r}"  # ... their code is not
    partial = (root / "feedback" / "s3_partial" / NAME / f"{NAME}.html").read_text()
    assert "FAILED: hidden check" in partial and "TODO 3 (Transformer.forward)" in partial
    nbgrader(root, "export", "--to", str(root / "grades.csv"))
    with open(root / "grades.csv") as f:
        rows = {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)}
    assert rows == {student: course["scores"][student][0] for student in STUDENTS}


def test_unconfined_the_same_attacks_succeed_and_the_log_warns(tmp_path):
    """The control: with isolation off (KVKIT_ISOLATION=none), the secrets are found and the gradebook rewritten,
    so the tests above can fail; nbgrader's log says so first."""
    root = tmp_path / "course"
    shutil.copytree(SOURCE_DIR, root / "source" / NAME)
    write_support(PART1, root / "source" / NAME)  # the repository holds only the notebook
    shutil.copyfile(NBGRADER_CONFIG, root / "nbgrader_config.py")
    nbgrader(root, "generate_assignment", NAME, "--force")
    release_nb = root / "release" / NAME / NOTEBOOK_NAME
    for student in ("t_reads_secrets", "t_rewrites_gradebook"):
        nb = read_notebook(release_nb)
        cell = first_answer_cell(nb)
        code = TAMPERING[student].replace("__COURSE__", str(root)).replace("__KIT__", str(ROOT))
        cell["source"] = cell_source(cell).rstrip("\n") + "\n\n\n" + code + "\n"
        target = root / "submitted" / student / NAME / NOTEBOOK_NAME
        target.parent.mkdir(parents=True)
        target.write_text(json.dumps(nb, indent=1))
    run = nbgrader(root, "autograde", NAME, "--force", KVKIT_ISOLATION="none")
    log = run.stdout + run.stderr
    first = log.index("WARNING: no isolation")
    assert first < log.index("kvkit grade of"), "the warning should come before any grade"
    found = "\n".join("".join(o.get("text", "")) for c in read_notebook(
        root / "autograded" / "t_reads_secrets" / NAME / NOTEBOOK_NAME)["cells"] for o in c.get("outputs", []))
    assert "SECRETS ['" in found and "gradebook.db" in found and "reference/kvcache" in found, found
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "kv_cache_course") as gb:
        notebook = gb.find_submission_notebook(Path(NOTEBOOK_NAME).stem, NAME, "t_reads_secrets")
        assert any(g.manual_score == 51000 for g in notebook.grades)  # the other student's grades were rewritten


def test_a_course_without_its_support_files_gets_the_kits_scores_and_a_warning(tmp_path):
    """A course copied without running ``kvkit notebook`` (no kvchecks/ or tests/ beside the notebook): the kernel
    still starts, the grades are the trusted grader's, and nbgrader's log says what is missing and what to run."""
    from nbgrader.api import Gradebook

    root = tmp_path / "course"
    shutil.copytree(SOURCE_DIR, root / "source" / NAME,
                    ignore=shutil.ignore_patterns("kvchecks", "tests"))
    shutil.copyfile(NBGRADER_CONFIG, root / "nbgrader_config.py")
    nbgrader(root, "generate_assignment", NAME, "--force")
    release_nb = root / "release" / NAME / NOTEBOOK_NAME
    for student, notebook in (("full", fill_notebook(PART1, release_nb, tmp_path / "full.ipynb", {})),
                              ("untouched", release_nb)):
        target = root / "submitted" / student / NAME / NOTEBOOK_NAME
        target.parent.mkdir(parents=True)
        shutil.copyfile(notebook, target)
    run = nbgrader(root, "autograde", NAME, "--force")
    assert "holds no kvchecks/ or tests/" in run.stdout + run.stderr
    course_id = re.search(r'course_id = "([^"]+)"', (root / "nbgrader_config.py").read_text()).group(1)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id) as gb:
        scores = {s: (gb.find_submission(NAME, s).score, gb.find_submission(NAME, s).max_score)
                  for s in ("full", "untouched")}
    total = notebook_points(read_notebook(release_nb))
    assert scores == {"full": (total, total), "untouched": (0, total)}

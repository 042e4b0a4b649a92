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
import re
import shutil
from pathlib import Path

import pytest

from kvkit.course.folders import NBGRADER_CONFIG, write_support
from kvkit.course.submission import fill_notebook
from kvkit.course.template import notebook_points
from kvkit.courses import english
from kvkit.grading.grade_all import grade_all
from kvkit.grading.notebooks import read_notebook
from layouts_support import NEEDS_NBGRADER, PART1
from nbgrader_support import (DELETED_CELL, STANDARD, TAMPERING, cell_source, class_group, edited_hidden_cell,
                              grade_cells, nbgrader_ok, submission, tampered)

pytestmark = [pytest.mark.slow, NEEDS_NBGRADER, pytest.mark.xdist_group(class_group(PART1))]


COURSE = english(PART1)  # nbgrader's assignment kv_cache
NAME, NOTEBOOK_NAME, SOURCE_DIR = COURSE.name, COURSE.notebook_name, COURSE.source
TODOS = PART1.assignment.todos
HONEST = [*STANDARD, "s4_hangs", "s5_edits_test_cells"]
STUDENTS = HONEST + sorted(TAMPERING)
nbgrader = nbgrader_ok


@pytest.fixture(scope="module")
def course(nbgrader_class):
    """The course's class, autograded once per session (``nbgrader_support``); the tests below read what it left."""
    done = nbgrader_class(COURSE)
    assert sorted(done.submitted) == sorted(STUDENTS)
    print(f"\nnbgrader autograde of {done.notebooks} notebooks (every course of {NAME}): {done.seconds:.1f} s wall")
    for student in STUDENTS:
        print(f"  gradebook: {student:<22} {done.scores[student][0]:g} / {done.scores[student][1]:g}")
    return {"root": done.root, "release": done.release, "submitted": done.submitted, "scores": done.scores,
            "cells": done.cells, "manual": done.manual, "seconds": done.seconds, "log": done.log}


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


def test_the_log_holds_no_kernel_banner(course):
    """The confined kernel runs under the jail's init, not a terminal: ipykernel's banner ("To connect another client
    to this kernel ...") would add eight lines per notebook to the instructor's log."""
    assert "To connect another client" not in course["log"]


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


def changed_cells_reported(log: str) -> dict[str, list[str]]:
    """Student -> the read-only cells nbgrader's log reports as changed, from one autograde run's log."""
    reported = {}
    for part in re.split(r"Creating/updating student with ID '", log)[1:]:
        student = part.split("'", 1)[0]
        cells = re.findall(r"Attribute 'checksum' for cell (\S+) has changed!", part)
        if cells:
            reported[student] = cells
    return reported


def test_the_log_reports_a_read_only_cell_as_changed_only_where_the_student_changed_it(course):
    """A test cell left as released (its hidden region cut by ``generate_assignment``) is not reported as changed
    (nbgrader's issue #1961 reports every one, for every student); the hidden test cell a student emptied is."""
    hidden = edited_hidden_cell(read_notebook(SOURCE_DIR / NOTEBOOK_NAME))
    assert changed_cells_reported(course["log"]) == {"s5_edits_test_cells": [hidden]}


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
        rows = {row["student_id"]: float(row["score"]) for row in csv.DictReader(f) if row["assignment"] == NAME}
    assert {student: rows.pop(student) for student in STUDENTS} == {s: course["scores"][s][0] for s in STUDENTS}
    assert not any(rows.values()), rows  # the students of the course's other editions submitted none of this one


@pytest.mark.xdist_group("nbgrader-e2e-unconfined")  # a course of its own: free to run beside the class
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
        tampered(release_nb, submission(root, student, NAME), student, root)
    run = nbgrader(root, "autograde", NAME, "--force", KVKIT_ISOLATION="none")
    log = run.stdout + run.stderr
    first = log.index("WARNING: no isolation")
    assert first < log.index("kvkit grade of"), "the warning should come before any grade"
    # the kernel's own confinement warning, naming what it could read (the reference), also before the grades
    assert "the notebook's kernel could read" in log and str(PART1.reference) in log
    assert log.index("the notebook's kernel could read") < log.index("kvkit grade of")
    found = "\n".join("".join(o.get("text", "")) for c in read_notebook(
        root / "autograded" / "t_reads_secrets" / NAME / NOTEBOOK_NAME)["cells"] for o in c.get("outputs", []))
    assert "SECRETS ['" in found and "gradebook.db" in found and "reference/kvcache" in found, found
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "kv_cache_course") as gb:
        notebook = gb.find_submission_notebook(Path(NOTEBOOK_NAME).stem, NAME, "t_reads_secrets")
        assert any(g.manual_score == 51000 for g in notebook.grades)  # the other student's grades were rewritten


@pytest.mark.xdist_group("nbgrader-e2e-no-support")  # a course of its own: free to run beside the class
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

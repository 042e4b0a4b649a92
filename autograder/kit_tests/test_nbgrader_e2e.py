"""The nbgrader course end to end: real nbgrader CLI, real Jupyter kernel, real SQLite gradebook.

In a temporary copy of the course: generate the release, add five students, submit (1) the reference
filled into the release notebook, (2) the untouched release, (3) TODOs 1-2 right and 3-4 wrong (the
"partial" example's bodies), (4) a TODO that hangs, (5) the partial code with one test cell edited and
another deleted; autograde them all in one ``nbgrader autograde`` run (timed), read the gradebook, make
feedback and export the grades. Every score must equal ``kvkit grade`` on the same code.
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

from kvchecks.todos import TODOS
from kvkit.examples import BODIES, EXAMPLE_BODIES
from kvkit.grade import grade
from kvkit.notebook import (ASSIGNMENT, NBGRADER_CONFIG, NOTEBOOK_NAME, SOURCE_DIR, ensure_kernel, fill_notebook,
                            nbgrader_command, nbgrader_env, notebook_points, notebook_to_package, read_notebook)

pytest.importorskip("nbgrader")

CHECK_TIMEOUT = 2.0  # seconds per check inside the kernel (KVKIT_CHECK_TIMEOUT) and per probe in kvkit grade
HANG = "while True:\n    pass\n"
PARTIAL = {TODOS[n].function: (BODIES / f"{body}.py").read_text() for n, body in EXAMPLE_BODIES["partial"].items()}
STUDENTS = ["s1_reference", "s2_untouched", "s3_partial", "s4_hangs", "s5_tampered"]
EDITED_CELL = "hidden_todo3_12"  # a hidden check the partial code fails: the student replaces it with `pass`
DELETED_CELL = "check_todo4_test_first_new_token_comes_from_the_prefill_logits"  # ... and deletes this one


def nbgrader(course: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    done = subprocess.run([*nbgrader_command(), *args], cwd=course, capture_output=True, text=True,
                          env=nbgrader_env(**env), timeout=600)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def grade_cells(nb: dict) -> dict[str, dict]:
    return {c["metadata"]["nbgrader"]["grade_id"]: c for c in nb["cells"]
            if c["metadata"].get("nbgrader", {}).get("grade")}


def cell_source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def write_submissions(course: Path, release_nb: Path) -> dict[str, Path]:
    made = {}
    for student in STUDENTS:
        target = course / "submitted" / student / ASSIGNMENT / NOTEBOOK_NAME
        target.parent.mkdir(parents=True)
        made[student] = target
    fill_notebook(release_nb, made["s1_reference"], {})
    shutil.copyfile(release_nb, made["s2_untouched"])
    fill_notebook(release_nb, made["s3_partial"], PARTIAL)
    fill_notebook(release_nb, made["s4_hangs"], {todo.function: (HANG if todo.number == 2 else "stub")
                                                 for todo in TODOS.values()})
    tampered = read_notebook(fill_notebook(release_nb, made["s5_tampered"], PARTIAL))
    cells = []
    for cell in tampered["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id == DELETED_CELL:
            continue
        if grade_id == EDITED_CELL:
            cell["source"] = ["pass  # nothing to see here"]
            cell["metadata"]["nbgrader"]["points"] = 100
        cells.append(cell)
    assert len(cells) == len(tampered["cells"]) - 1
    tampered["cells"] = cells
    made["s5_tampered"].write_text(json.dumps(tampered, indent=1))
    return made


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """Run the whole course once; the tests below read what it left behind."""
    ensure_kernel()
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(SOURCE_DIR, root / "source" / ASSIGNMENT)
    shutil.copyfile(NBGRADER_CONFIG, root / "nbgrader_config.py")
    nbgrader(root, "generate_assignment", ASSIGNMENT, "--force")
    release_nb = root / "release" / ASSIGNMENT / NOTEBOOK_NAME
    for student in STUDENTS:
        nbgrader(root, "db", "student", "add", student, f"--last-name={student}", "--first-name=Test")
    submitted = write_submissions(root, release_nb)

    started = time.perf_counter()
    autograde = nbgrader(root, "autograde", ASSIGNMENT, "--force", KVKIT_CHECK_TIMEOUT=str(CHECK_TIMEOUT))
    seconds = time.perf_counter() - started
    print(f"\nnbgrader autograde of {len(STUDENTS)} submissions: {seconds:.1f} s wall")

    from nbgrader.api import Gradebook

    course_id = re.search(r'course_id = "([^"]+)"', NBGRADER_CONFIG.read_text()).group(1)
    scores, cells = {}, {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id) as gb:
        for student in STUDENTS:
            submission = gb.find_submission(ASSIGNMENT, student)
            scores[student] = (submission.score, submission.max_score)
            notebook = gb.find_submission_notebook(Path(NOTEBOOK_NAME).stem, ASSIGNMENT, student)
            cells[student] = {g.name: (g.score, g.max_score) for g in notebook.grades}
    for student in STUDENTS:
        print(f"  gradebook: {student:<14} {scores[student][0]:g} / {scores[student][1]:g}")
    return {"root": root, "release": release_nb, "submitted": submitted, "scores": scores, "cells": cells,
            "seconds": seconds, "log": autograde.stdout + autograde.stderr}


@pytest.fixture(scope="module")
def kvkit_scores(course, tmp_path_factory):
    """``kvkit grade`` on each submitted notebook, turned into a package by ``notebook_to_package``."""
    scores = {}
    for student, notebook in course["submitted"].items():
        folder = notebook_to_package(notebook, tmp_path_factory.mktemp(student))
        report = grade(folder, timeout=CHECK_TIMEOUT if student == "s4_hangs" else 10.0)
        scores[student] = (report.score, report.max_score, report)
    return scores


def test_total_points_equal_kvkit_grade_maximum(course, graded):
    total = notebook_points(read_notebook(course["release"]))
    assert total == graded("reference").max_score
    for student in STUDENTS:
        assert course["scores"][student][1] == total, student


def test_reference_gets_full_marks(course):
    score, max_score = course["scores"]["s1_reference"]
    assert score == max_score > 0


def test_untouched_release_gets_zero(course):
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
    assert score == graded("partial").score  # the same bodies graded by kvkit grade as an example package
    assert 0 < score < max_score


def test_hanging_submission_gets_zero_without_stalling(course):
    assert course["scores"]["s4_hangs"][0] == 0
    autograded = read_notebook(course["root"] / "autograded" / "s4_hangs" / ASSIGNMENT / NOTEBOOK_NAME)
    timed_out = [c for c in grade_cells(autograded).values()
                 if any("timed out" in "".join(o.get("text", "")) for o in c.get("outputs", []))]
    assert len(timed_out) >= 5, "the TODO 2 checks should each stop at the check time limit"
    assert course["seconds"] < 150, f"autograde took {course['seconds']:.0f} s"


def test_deleted_and_edited_test_cells_are_restored(course):
    assert course["scores"]["s5_tampered"] == course["scores"]["s3_partial"]
    cells = course["cells"]["s5_tampered"]
    assert DELETED_CELL in cells and cells[EDITED_CELL] == (0, cells[EDITED_CELL][1])
    source = grade_cells(read_notebook(SOURCE_DIR / NOTEBOOK_NAME))
    autograded = grade_cells(read_notebook(course["root"] / "autograded" / "s5_tampered" / ASSIGNMENT / NOTEBOOK_NAME))
    assert cell_source(autograded[EDITED_CELL]) == cell_source(source[EDITED_CELL])  # hidden test back in place
    assert cell_source(source[DELETED_CELL]) in cell_source(autograded[DELETED_CELL])  # re-added by nbgrader


def test_kvkit_grade_gives_the_same_scores(course, kvkit_scores):
    for student in STUDENTS:
        score, max_score, report = kvkit_scores[student]
        assert (score, max_score) == course["scores"][student], f"{student}:\n{report.table()}"


def test_feedback_hides_the_hidden_tests_and_grades_export(course):
    root = course["root"]
    nbgrader(root, "generate_feedback", ASSIGNMENT, "--force")
    hidden_names = [line.split("(")[0][4:] for line in
                    (Path(__file__).parents[1] / "hidden" / "test_hidden_checks.py").read_text().splitlines()
                    if line.startswith("def test_")]
    assert hidden_names
    for student in STUDENTS:
        html = (root / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
        assert "Hidden check of TODO" in html  # the cells are there ...
        for secret in ["BEGIN HIDDEN TESTS", "run_hidden", "goldens=", "WIDE_CACHE", "def test_", *hidden_names]:
            assert secret not in html, f"{student}'s feedback shows {secret!r}"  # ... their code is not
    nbgrader(root, "export", "--to", str(root / "grades.csv"))
    with open(root / "grades.csv") as f:
        rows = {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)}
    assert rows == {student: course["scores"][student][0] for student in STUDENTS}

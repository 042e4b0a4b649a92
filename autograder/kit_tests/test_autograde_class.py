"""``kvkit autograde ASSIGNMENT --jobs 2``: real nbgrader, two processes, one SQLite gradebook, resumable.

Six submissions (the reference, the untouched release and the partial code, twice each) autograded by
``kvkit autograde --jobs 2``, which is killed once mid-run and then run again; the same three notebooks autograded by
a single ``nbgrader autograde`` (the course's class, ``nbgrader_support``, built once per session). Both gradebooks
must hold the same score for every graded cell of every student, and the autograded notebooks the same verdicts.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kvkit.course.autograde_class import finished_students
from kvkit.course.folders import NBGRADER_CONFIG, ensure_kernel, scratch_course
from kvkit.courses import english
from kvkit.examples import example_texts
from kvkit.grading.notebooks import read_notebook
from kvkit.registry import ROOT
from layouts_support import NEEDS_NBGRADER, PART1

pytestmark = [pytest.mark.slow, NEEDS_NBGRADER]

COURSE = english(PART1)
NOTEBOOK_NAME = COURSE.notebook_name
KVKIT = [sys.executable, "-m", "kvkit.cli", "autograde", COURSE.name, "--jobs", "2", "--course"]
STUDENTS = ("s1_reference", "s2_untouched", "s3_partial", "s4_reference", "s5_partial", "s6_untouched")
# each student's notebook is one of the course's class (nbgrader_support.STANDARD), graded there serially
SERIAL = {"s1_reference": "s1_reference", "s2_untouched": "s2_untouched", "s3_partial": "s3_partial",
          "s4_reference": "s1_reference", "s5_partial": "s3_partial", "s6_untouched": "s2_untouched"}


def make_course(root: Path) -> Path:
    partial = example_texts(PART1, "partial")
    scratch_course(COURSE, root, {s: {} if "reference" in s else partial if "partial" in s else None
                                  for s in STUDENTS})
    return root


def gradebook(root: Path) -> dict[str, dict[str, float]]:
    """student -> graded cell -> score, from the course's SQLite gradebook."""
    from nbgrader.api import Gradebook

    course_id = re.search(r'course_id = "([^"]+)"', NBGRADER_CONFIG.read_text()).group(1)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id) as gb:
        return {student: {g.name: g.score for g in gb.find_submission_notebook(
            Path(NOTEBOOK_NAME).stem, COURSE.name, student).grades} for student in STUDENTS}


def verdicts(root: Path, student: str) -> dict[str, tuple]:
    """Each graded cell's verdict in the autograded notebook: passed, or the kind of failure."""
    nb = read_notebook(root / "autograded" / student / COURSE.name / NOTEBOOK_NAME)
    return {c["metadata"]["nbgrader"]["grade_id"]: tuple((o["output_type"], o.get("ename")) for o in c["outputs"])
            for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade") and c["cell_type"] == "code"}


def test_two_nbgrader_processes_fill_one_gradebook_as_one_does_and_resume_after_a_kill(tmp_path, request,
                                                                                     killed_runs_temp):
    """Stopped once (SIGTERM to the command: it stops its nbgrader processes, one line, status 143) and killed once
    (SIGKILL to every process), then run to the end."""
    ensure_kernel()
    parallel = make_course(tmp_path / "parallel")
    finished = lambda: finished_students(parallel, COURSE.name, list(STUDENTS))  # noqa: E731

    def run_until(count: int) -> subprocess.Popen:
        """The command, started in a session of its own, once ``count`` students are finished."""
        proc = subprocess.Popen([*KVKIT, str(parallel)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True, env={**os.environ, "TMPDIR": str(killed_runs_temp)})
        deadline = time.monotonic() + 600
        while len(finished()) < count and proc.poll() is None:
            assert time.monotonic() < deadline, "no notebook was autograded"
            time.sleep(0.2)
        assert proc.poll() is None, "the run was not stopped mid-run: the test proves nothing"
        return proc

    stopped = run_until(1)
    stopped.send_signal(signal.SIGTERM)  # the command alone
    _, stderr = stopped.communicate(timeout=120)
    assert stopped.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == ("kvkit: stopped by SIGTERM; the notebooks autograded so far are in the "
                                               "gradebook; the same command autogrades the rest"), stderr[-3000:]
    with pytest.raises(ProcessLookupError):  # its nbgrader processes have ended with it
        os.killpg(stopped.pid, 0)
    killed = run_until(len(finished()) + 1)
    os.killpg(killed.pid, signal.SIGKILL)  # the kit and both nbgrader processes, mid-run
    killed.wait(timeout=60)
    assert 1 <= len(finished()) < len(STUDENTS), "the run was not killed mid-run: the test proves nothing"

    resumed = subprocess.run([*KVKIT, str(parallel)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr[-3000:]
    counts = re.search(r"(\d+) autograded, (\d+) already autograded", resumed.stdout)
    assert counts and int(counts.group(2)) >= 1 and sum(map(int, counts.groups())) == len(STUDENTS), resumed.stdout
    assert "[1] " in resumed.stderr and "[2] " in resumed.stderr  # two nbgrader processes, each line named

    # the serial run: one `nbgrader autograde` of the same notebooks, the course's class (shared, asked for only
    # now, so that another worker may have built it meanwhile)
    serial = request.getfixturevalue("nbgrader_class")(COURSE)
    serial_cells = {student: {cell: score for cell, (score, _) in serial.cells[SERIAL[student]].items()}
                    for student in STUDENTS}
    assert gradebook(parallel) == serial_cells
    scores = {s: sum(v for v in cells.values() if v) for s, cells in gradebook(parallel).items()}
    assert scores["s1_reference"] == scores["s4_reference"] > scores["s3_partial"] > scores["s2_untouched"] == 0
    for student in STUDENTS:
        assert verdicts(parallel, student) == verdicts(serial.root, SERIAL[student]), student

    again = subprocess.run([*KVKIT, str(parallel)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and f"0 autograded, {len(STUDENTS)} already autograded" in again.stdout


def test_a_course_without_submissions_is_one_line(tmp_path):
    shutil.copyfile(NBGRADER_CONFIG, tmp_path / "nbgrader_config.py")
    run = subprocess.run([*KVKIT, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1 and "collect the submissions first" in lines[0], run.stderr


def test_a_run_reads_the_gradebook_once_before_its_workers_and_once_after(tmp_path, monkeypatch):
    """What is finished is asked of the gradebook twice a run, not once more per student (a class of hundreds)."""
    from kvkit.course import autograde_class as run

    students, reads = [f"s{i}" for i in range(5)], []
    monkeypatch.setattr(run, "submitted_students", lambda course, assignment: students)
    monkeypatch.setattr(run, "launch_zygotes", lambda assignment: None)
    monkeypatch.setattr(run, "finished_students", lambda course, assignment, asked: reads.append(asked) or set(asked))
    result = run.autograde_class(tmp_path, COURSE.name, jobs=2)
    assert reads == [students, students] and result["skipped"] == len(students) and result["unfinished"] == []

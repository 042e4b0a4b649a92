"""`kvkit grade` as a user runs it: table, Gradescope JSON, and one-line usage errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kvkit.course.checks import collect_checks
from kvkit.paths import ROOT

pytestmark = pytest.mark.every_assignment
KVKIT = [sys.executable, "-m", "kvkit.cli"]  # the assignment of this session: KVKIT_ASSIGNMENT reaches it
TOTAL = sum(item.points for item in collect_checks())


def test_grade_prints_the_table_and_writes_gradescope_json(tmp_path):
    out = tmp_path / "results.json"
    run = subprocess.run(KVKIT + ["grade", "reference", "--json", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert f"Total: {TOTAL:g} / {TOTAL:g}" in run.stdout
    results = json.loads(out.read_text())
    assert results["score"] == results["max_score"] == TOTAL
    assert {"score", "max_score", "execution_time", "tests"} <= results.keys()
    for test in results["tests"]:
        assert {"name", "score", "max_score", "status", "output", "visibility"} <= test.keys()
    assert {t["visibility"] for t in results["tests"]} == {"visible", "after_published"}


def test_grading_the_skeleton_is_a_zero_not_an_error(tmp_path):
    run = subprocess.run(KVKIT + ["grade", "assignments"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0 and f"Total: 0 / {TOTAL:g}" in run.stdout


def test_a_missing_submission_is_one_clear_line(tmp_path):
    run = subprocess.run(KVKIT + ["grade", str(tmp_path / "nope")], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 2
    assert "does not exist" in run.stderr and len(run.stderr.strip().splitlines()) == 1

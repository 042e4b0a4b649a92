"""`kvkit grade` as a user runs it: table, Gradescope JSON, and one-line usage errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cli_support import kvkit
from kvkit.course.checks import collect_checks
from kvkit.registry import ROOT, manifests


def total(layout) -> float:
    return sum(item.points for item in collect_checks(layout))


def test_a_kit_command_imports_only_its_own_module():
    """``kvkit autograde`` starts its zygotes before anything imports torch (the other commands' modules do), so
    their start overlaps its own imports; ``kvkit grade`` refuses a submission before torch is imported (2 s);
    ``kvkit --help`` still lists every command."""
    code = ("import sys\nfrom kvkit.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('TORCH', 'torch' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code, "autograde", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert "usage: kvkit autograde" in run.stdout and "TORCH False" in run.stdout, run.stdout + run.stderr
    refused = subprocess.run([sys.executable, "-c", code, "grade", "no-such-folder"], capture_output=True, text=True,
                             cwd=ROOT)
    assert "no-such-folder" in refused.stderr and "TORCH False" in refused.stdout, refused.stdout + refused.stderr
    listed = subprocess.run([sys.executable, "-m", "kvkit.cli", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert all(name in listed.stdout for name in ("grade-all", "autograde", "check-assignment", "bench")), listed.stdout


@pytest.mark.slow
def test_grade_prints_the_table_and_writes_gradescope_json(tmp_path, layout):
    out = tmp_path / "results.json"
    run = kvkit(layout, "grade", "reference", "--json", out)
    assert run.returncode == 0, run.stderr
    assert f"Total: {total(layout):g} / {total(layout):g}" in run.stdout
    results = json.loads(out.read_text())
    assert results["score"] == results["max_score"] == total(layout)
    assert {"score", "max_score", "execution_time", "tests"} <= results.keys()
    for test in results["tests"]:
        assert {"name", "score", "max_score", "status", "output", "visibility"} <= test.keys()
    assert {t["visibility"] for t in results["tests"]} == {"visible", "after_published"}


@pytest.mark.slow
def test_grading_the_skeleton_is_a_zero_not_an_error(tmp_path, layout):
    run = kvkit(layout, "grade", "assignments")
    assert run.returncode == 0 and f"Total: 0 / {total(layout):g}" in run.stdout


def test_a_missing_submission_is_one_clear_line(tmp_path, layout):
    run = kvkit(layout, "grade", tmp_path / "nope")
    assert run.returncode == 2
    assert "does not exist" in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_an_assignment_the_kit_has_not_is_one_clear_line():
    run = kvkit(None, "--assignment", "x", "grade", "reference")
    assert run.returncode == 2
    assert run.stderr.strip() == f"kvkit: no assignment called 'x'; the kit has {', '.join(manifests())}"

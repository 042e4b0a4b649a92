"""The kit's promises about the graded checks: full marks, zero, and scores that mean something."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from kvkit.examples import EXAMPLE_BODIES
from kvkit.paths import ASSIGNMENT, PUBLIC_TESTS, ROOT, TODOS

NOT_IMPLEMENTED = re.compile(rf"TODO (\d+) \((\S+)\) is not implemented yet \(NotImplementedError at "
                             rf"{ASSIGNMENT.package}/\w+\.py, line \d+\)")
ALTERNATIVES = sorted(name for name in EXAMPLE_BODIES if name.startswith("alternative"))


def by_todo(report):
    return {todo: (got, possible) for todo, got, possible in report.by_todo()}


@pytest.mark.every_assignment
def test_reference_gets_full_marks_from_public_and_hidden_checks(graded):
    report = graded("reference")
    failed = [f"{r.name}: {r.message}" for r in report.results if not r.passed]
    assert not failed, "the reference fails:\n" + "\n".join(failed)
    assert {r.hidden for r in report.results} == {True, False}, "both public and hidden checks must run"
    assert report.score == report.max_score > 0


@pytest.mark.every_assignment
def test_skeleton_fails_every_check_through_not_implemented_error(graded):
    report = graded("assignments")
    assert report.score == 0
    for r in report.results:
        assert not r.passed
        # a check blocked by another TODO's stub says so first, then that stub's NotImplementedError
        found = next(filter(None, (NOT_IMPLEMENTED.match(line) for line in r.message.splitlines())), None)
        assert found, f"{r.name} failed for another reason: {r.message}"
        assert TODOS[int(found.group(1))].function == found.group(2)


@pytest.mark.every_assignment
def test_every_todo_has_checks_of_its_own(graded):
    report = graded("reference")
    for todo in TODOS:
        public = [r for r in report.results if r.todo == todo and not r.hidden]
        hidden = [r for r in report.results if r.todo == todo and r.hidden]
        assert public and hidden, f"TODO {todo} needs public and hidden checks"


@pytest.mark.every_assignment
def test_the_assignment_has_correct_alternatives():
    assert ALTERNATIVES, "write at least one correct solution in another style (examples.toml: alternative...)"


@pytest.mark.every_assignment
@pytest.mark.parametrize("example", ALTERNATIVES)
def test_a_correct_solution_written_differently_gets_full_marks(graded, example):
    report = graded(example)
    failed = [f"{r.name}: {r.message}" for r in report.results if not r.passed]
    assert not failed, "an honest alternative solution must pass (tolerances too tight?):\n" + "\n".join(failed)


def test_partial_submission_keeps_the_points_of_its_correct_todos(graded):
    scores = by_todo(graded("partial"))
    assert scores[1][0] == scores[1][1] and scores[2][0] == scores[2][1], scores
    assert 0 < scores[3][0] < scores[3][1] and scores[4][0] < scores[4][1], scores


def test_the_seed_exercises_bugs_are_caught(graded):
    report = graded("seed-bugs")
    failed = {r.name.split("::")[-1] for r in report.results if not r.passed}
    assert "test_chunk_after_a_cached_prefix_is_masked_correctly" in failed  # triu(diagonal=1) mask
    assert "test_cached_prefill_equals_uncached" in failed  # K/V read only up to current_length
    assert "test_first_new_token_comes_from_the_prefill_logits" in failed  # re-fed last prompt token
    assert by_todo(report)[1][0] == by_todo(report)[1][1]  # its cache update is right


@pytest.mark.every_assignment
def test_self_check_runs_every_public_check_in_process_and_fails_on_not_implemented(tmp_path):
    """Plain ``pytest`` (the student's self-check) against the skeleton: every check fails by name."""
    junit = tmp_path / "junit.xml"
    run = subprocess.run([sys.executable, "-m", "pytest", str(PUBLIC_TESTS), f"--junitxml={junit}"], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 1, run.stdout[-2000:]
    last = run.stdout.splitlines()[-2:]  # the total, then (when a TODO blocks others) which TODO to fix first
    assert "score per TODO" in run.stdout and any(line.startswith("Total") for line in last), last
    cases = ET.parse(junit).getroot().iter("testcase")
    failures = [(c.get("name"), c.find("failure")) for c in cases]
    assert failures and all(f is not None for _, f in failures)
    for name, failure in failures:
        assert NOT_IMPLEMENTED.match(failure.get("message", "")), f"{name}: {failure.get('message')}"


@pytest.mark.every_assignment
def test_self_check_can_target_the_reference(tmp_path):
    run = subprocess.run([sys.executable, "-m", "pytest", str(PUBLIC_TESTS), "--impl", "reference", "-q"], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:]
    assert "failed" not in run.stdout


@pytest.mark.every_assignment
def test_self_check_says_clearly_when_impl_has_no_package(tmp_path):
    run = subprocess.run([sys.executable, "-m", "pytest", str(PUBLIC_TESTS), f"--impl={tmp_path}"], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode != 0
    assert f"holds no {ASSIGNMENT.package} package" in run.stderr and "Traceback" not in run.stderr


def test_a_check_without_a_result_counts_as_failed_at_its_full_value(monkeypatch):
    """Missing results are failures, never passes, and the maximum does not shrink."""
    from kvchecks.plugin import Scoreboard
    from kvkit.grade import grade
    from kvkit.course.checks import collect_checks
    from kvkit.paths import REFERENCE

    dropped = "test_update_writes_at_current_length"
    original = Scoreboard.pytest_runtest_logreport

    def lose_one(self, report):
        if not report.nodeid.endswith(dropped):
            original(self, report)

    monkeypatch.setattr(Scoreboard, "pytest_runtest_logreport", lose_one)
    report = grade(REFERENCE)
    missing = [r for r in report.results if r.name.endswith(dropped)]
    assert len(missing) == 1 and not missing[0].passed and missing[0].todo == 1 and missing[0].points > 0
    collected = sum(item.points for item in collect_checks())
    assert report.max_score == collected and report.score == collected - missing[0].points

"""The kit's promises about the graded checks: full marks, zero, and scores that mean something.

That every TODO has public and hidden checks and that each assignment has a correct alternative are requirements
(``kvkit.requirements``, run by ``test_requirements.py``); here, what grading them gives."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from kvkit.examples import example_bodies
from kvkit.registry import ROOT
from layouts_support import PART1, per_assignment


def not_implemented(layout):
    return re.compile(rf"TODO (\d+) \((\S+)\) is not implemented yet \(NotImplementedError at "
                      rf"{layout.assignment.package}/\w+\.py, line \d+\)")


def alternatives(layout) -> list[str]:
    return sorted(name for name in example_bodies(layout) if name.startswith("alternative"))


def by_todo(report):
    return {todo: (got, possible) for todo, got, possible in report.by_todo()}


@pytest.mark.slow
def test_reference_gets_full_marks_from_public_and_hidden_checks(graded, layout):
    report = graded(layout, "reference")
    failed = [f"{r.name}: {r.message}" for r in report.results if not r.passed]
    assert not failed, "the reference fails:\n" + "\n".join(failed)
    assert {r.hidden for r in report.results} == {True, False}, "both public and hidden checks must run"
    assert report.score == report.max_score > 0


@pytest.mark.slow
def test_skeleton_fails_every_check_through_not_implemented_error(graded, layout):
    report = graded(layout, "assignments")
    assert report.score == 0
    for r in report.results:
        assert not r.passed
        # a check blocked by another TODO's stub says so first, then that stub's NotImplementedError
        found = next(filter(None, (not_implemented(layout).match(line) for line in r.message.splitlines())), None)
        assert found, f"{r.name} failed for another reason: {r.message}"
        assert layout.assignment.todos[int(found.group(1))].function == found.group(2)


@pytest.mark.slow
@pytest.mark.parametrize("layout,example", per_assignment(lambda layout: [(n,) for n in alternatives(layout)]))
def test_a_correct_solution_written_differently_gets_full_marks(graded, layout, example):
    report = graded(layout, example)
    failed = [f"{r.name}: {r.message}" for r in report.results if not r.passed]
    assert not failed, "an honest alternative solution must pass (tolerances too tight?):\n" + "\n".join(failed)


@pytest.mark.slow
def test_partial_submission_keeps_the_points_of_its_correct_todos(graded):
    scores = by_todo(graded(PART1, "partial"))
    assert scores[1][0] == scores[1][1] and scores[2][0] == scores[2][1], scores
    assert 0 < scores[3][0] < scores[3][1] and scores[4][0] < scores[4][1], scores


@pytest.mark.slow
def test_the_seed_exercises_bugs_are_caught(graded):
    report = graded(PART1, "seed-bugs")
    failed = {r.name.split("::")[-1] for r in report.results if not r.passed}
    assert "test_chunk_after_a_cached_prefix_is_masked_correctly" in failed  # triu(diagonal=1) mask
    assert "test_cached_prefill_equals_uncached" in failed  # K/V read only up to current_length
    assert "test_first_new_token_comes_from_the_prefill_logits" in failed  # re-fed last prompt token
    assert by_todo(report)[1][0] == by_todo(report)[1][1]  # its cache update is right


@pytest.mark.slow
def test_self_check_runs_every_public_check_in_process_and_fails_on_not_implemented(tmp_path, layout):
    """Plain ``pytest`` (the student's self-check) against the skeleton: every check fails by name."""
    junit = tmp_path / "junit.xml"
    run = subprocess.run([sys.executable, "-m", "pytest", str(layout.public_tests), f"--junitxml={junit}"], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 1, run.stdout[-2000:]
    last = run.stdout.splitlines()[-2:]  # the total, then (when a TODO blocks others) which TODO to fix first
    assert "score per TODO" in run.stdout and any(line.startswith("Total") for line in last), last
    cases = ET.parse(junit).getroot().iter("testcase")
    failures = [(c.get("name"), c.find("failure")) for c in cases]
    assert failures and all(f is not None for _, f in failures)
    for name, failure in failures:
        assert not_implemented(layout).match(failure.get("message", "")), f"{name}: {failure.get('message')}"


@pytest.mark.slow
def test_self_check_can_target_the_reference(tmp_path, layout):
    run = subprocess.run([sys.executable, "-m", "pytest", str(layout.public_tests), "--impl", "reference", "-q"],
                         cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:]
    assert "failed" not in run.stdout


def test_self_check_says_clearly_when_impl_has_no_package(tmp_path, layout):
    """At once: the plugin and the checks package are imported without torch, which waits for good options (about
    2 s of a 3 s run before)."""
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "pytest", str(layout.public_tests),
                          f"--impl={tmp_path}"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode != 0
    assert f"holds no {layout.assignment.package} package" in run.stderr and "Traceback" not in run.stderr
    imported = [line.split("|")[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")]
    assert "kvchecks.backends" in imported and "torch" not in imported  # (the plugin imports backends)


@pytest.mark.slow
def test_a_check_without_a_result_counts_as_failed_at_its_full_value(monkeypatch):
    """Missing results are failures, never passes, and the maximum does not shrink."""
    from kvchecks.plugin import Scoreboard
    from kvkit.course.checks import collect_checks
    from kvkit.grading.grade import grade

    dropped = "test_update_writes_at_current_length"
    original = Scoreboard.pytest_runtest_logreport

    def lose_one(self, report):
        if not report.nodeid.endswith(dropped):
            original(self, report)

    monkeypatch.setattr(Scoreboard, "pytest_runtest_logreport", lose_one)
    report = grade(PART1, PART1.reference)
    missing = [r for r in report.results if r.name.endswith(dropped)]
    assert len(missing) == 1 and not missing[0].passed and missing[0].todo == 1 and missing[0].points > 0
    collected = sum(item.points for item in collect_checks(PART1))
    assert report.max_score == collected and report.score == collected - missing[0].points

"""Warm grading (:mod:`kvkit.grading.remote.warm`): children forked by a worker's zygote, and a draw of fresh inputs
shared by the worker's gradings, give the grades of cold grading, and a child can reach neither the zygote nor the
next child."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from hostile_support import make_submission
from kvkit.examples import write_example, write_package
from kvkit.grading.grade import grade
from kvkit.grading.remote.warm import SHARED_DRAW_MODES, WARM_MODES, Warm
from kvkit.grading.sandbox import isolation_mode
from layouts_support import PART1

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(isolation_mode() not in WARM_MODES,
                                 reason=f"children start cold in {isolation_mode()} mode")]
MARK = f"kvkit-warm-{os.getpid()}"


@pytest.fixture
def warm():
    worker = Warm()
    yield worker
    worker.close()


def verdicts(report) -> dict[str, bool]:
    return {r.name: r.passed for r in report.results}


def printed(report, word: str) -> list:
    """The list the submission printed after ``word`` (quoted in the report's notes)."""
    found = re.search(rf"{word} (\[.*?\])\s*$", "\n".join(report.notes), re.MULTILINE)
    assert found, report.notes
    return eval(found.group(1))  # noqa: S307 (the test's own submission printed a Python list of strings)


def test_a_class_graded_warm_gets_the_verdicts_of_cold_grading(tmp_path, warm):
    folders = {"reference": write_package(PART1, tmp_path / "reference", {}),
               "skeleton": write_package(PART1, tmp_path / "skeleton",
                                         {t.function: "stub" for t in PART1.assignment.todos.values()}),
               "partial": write_example(PART1, "partial", tmp_path / "partial"),
               "exits": make_submission(PART1, tmp_path / "exits", {3: "todo3_sys_exit"})}
    for name, folder in folders.items():
        cold, hot = grade(PART1, Path(folder)), grade(PART1, Path(folder), warm=warm)
        assert verdicts(hot) == verdicts(cold), name
        assert hot.score == cold.score, name
    zygote = warm.zygotes[PART1.assignment.name, "probe"]
    assert zygote.alive()


def test_a_child_leaves_nothing_for_the_next_one(tmp_path, warm):
    leaves = make_submission(PART1, tmp_path / "leaves", at_import=["import_leaves_traces"], __KVKIT_MARK__=MARK)
    finds = make_submission(PART1, tmp_path / "finds", at_import=["import_finds_traces"], __KVKIT_MARK__=MARK)
    first = grade(PART1, leaves, warm=warm)
    left = printed(first, "LEFT")
    assert "/tmp" in left and "shm" in left  # it could write: its own scratch, its own IPC namespace
    assert first.score == first.max_score
    second = grade(PART1, finds, warm=warm)
    assert printed(second, "TRACES FOUND") == []
    assert second.score == second.max_score


def test_a_child_cannot_signal_or_write_into_the_zygote(tmp_path, warm):
    attacks = make_submission(PART1, tmp_path / "attacks", at_import=["import_attacks_parent"])
    zygote = warm.zygote(PART1)
    before = zygote.proc.pid
    report = grade(PART1, attacks, warm=warm)
    assert report.score == report.max_score
    assert ("mem", before) not in printed(report, "ATTACKED")
    assert warm.zygote(PART1).proc.pid == before and zygote.alive()  # not started again: never touched
    after = grade(PART1, write_package(PART1, tmp_path / "next", {}), warm=warm)
    assert after.score == after.max_score


def test_the_worker_shares_a_draw_only_where_no_child_can_reach_the_next(warm):
    first, second = warm.fresh_inputs(PART1), warm.fresh_inputs(PART1)
    assert (first is second) == (warm.mode in SHARED_DRAW_MODES)


def test_a_zygote_that_died_is_started_again(tmp_path, warm):
    zygote = warm.zygote(PART1)
    os.kill(zygote.proc.pid, signal.SIGKILL)
    zygote.proc.wait()
    report = grade(PART1, write_package(PART1, tmp_path / "reference", {}), warm=warm)
    assert report.score == report.max_score
    assert warm.zygote(PART1) is not zygote

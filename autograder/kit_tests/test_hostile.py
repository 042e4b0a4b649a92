"""``kvkit grade`` against broken and hostile submissions: each gets the score it deserves, the grader survives.

Every submission is a real folder: the reference with some TODO bodies or
import-time code replaced by files from ``autograder/examples/hostile/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
import torch

from cli_support import kvkit
from hostile_support import failures, full, make_submission, scores
from kvkit.grading.grade import grade
from kvkit.grading.remote.warm import Warm
from kvkit.registry import ROOT
from layouts_support import PART1
from kvkit.grading.sandbox import isolation_mode

pytestmark = pytest.mark.slow

KVKIT = [sys.executable, "-m", "kvkit.cli"]
IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="confinement needs the grader to run as root (as CI does)")


@pytest.fixture(scope="module")
def warm():
    """A grading worker's zygote (children forked, as in ``kvkit grade-all`` and ``kvkit autograde``; cold where the
    isolation mode has no warm children), for the attacks that make the grader start a child again and again: the
    other attacks are graded cold, as ``kvkit grade`` does."""
    worker = Warm()
    yield worker
    worker.close()


def cli(*args, **kwargs):
    """``kvkit`` in a process of its own: what reaches the command's own output (a child's never should)."""
    return subprocess.run(KVKIT + list(args), cwd=ROOT, capture_output=True, text=True, **kwargs)


def test_syntax_error_is_a_graded_zero_with_the_reason(tmp_path):
    sub = make_submission(PART1, tmp_path / "sub", {1: "todo1_syntax_error"})
    out = tmp_path / "results.json"
    run = kvkit(None, "grade", sub, "--json", out)
    assert run.returncode == 0, run.stderr
    results = json.loads(out.read_text())
    assert results["score"] == 0 and results["max_score"] > 0
    assert all("importing kvcache failed: SyntaxError" in t["output"] for t in results["tests"])
    assert "cache.py" in results["tests"][0]["output"]  # where the error is


def test_import_failure_is_a_graded_zero_with_the_reason(tmp_path):
    report = grade(PART1, make_submission(PART1, tmp_path, at_import=["import_fails"]))
    assert report.score == 0 and report.max_score > 0
    assert all(m.startswith("importing kvcache failed: ModuleNotFoundError") for m in failures(report))


def test_an_exception_in_one_todo_costs_only_that_todos_points(tmp_path):
    report = grade(PART1, make_submission(PART1, tmp_path, {3: "todo3_raises"}))
    assert full(report, 1) and full(report, 2)
    assert scores(report)[4][0] > 0  # TODO 4's checks on a scripted model do not need TODO 3
    assert scores(report)[3][0] == 0
    assert all("RuntimeError: oops in Transformer.forward" in m for m in failures(report, 3))


def test_an_endless_loop_in_one_todo_times_out_quickly_and_the_rest_is_graded(tmp_path, warm):
    started = time.perf_counter()
    report = grade(PART1, make_submission(PART1, tmp_path, {4: "todo4_endless_loop"}), warm=warm)
    seconds = time.perf_counter() - started
    assert full(report, 1) and full(report, 2) and full(report, 3)
    assert scores(report)[4][0] == 0
    assert all("timed out after" in m for m in failures(report, 4))
    assert len([r for r in report.results if r.todo == 4]) >= 10
    assert seconds < 45, f"a looping TODO took {seconds:.0f} s to grade"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_unbounded_memory_meets_the_childs_limit_and_the_grader_survives(tmp_path, warm):
    before = peak_mb()
    report = grade(PART1, make_submission(PART1, tmp_path, {2: "todo2_eats_memory"}), warm=warm)
    assert full(report, 1)
    assert scores(report)[2][0] == 0
    assert any("raised MemoryError" in m and "MB of memory" in m for m in failures(report, 2))
    assert peak_mb() - before < 300, f"the grader itself grew by {peak_mb() - before:.0f} MB"


def test_hundreds_of_megabytes_of_output_leave_a_short_report(tmp_path):
    sub = make_submission(PART1, tmp_path / "sub", {1: "todo1_prints_a_lot", 4: "stub"},
                          at_import=["import_prints_a_lot"])
    out = tmp_path / "results.json"
    run = cli("grade", str(sub), "--json", str(out), timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads(out.read_text())
    got = {todo: sum(t["score"] for t in results["tests"] if t["name"].startswith(f"TODO {todo}:")) for todo in (1, 4)}
    assert got[1] > 0 and got[4] == 0  # printing costs nothing; the stub still fails
    printed = int(re.search(r"printed (\d+) bytes", run.stdout).group(1))
    assert printed > 300_000_000
    assert len(run.stdout) < 40_000 and len(json.dumps(results)) < 200_000
    lines = run.stdout.splitlines()
    assert [line for line in lines if line.startswith("Total:")][-1].startswith(
        f"Total: {results['score']:g} / {results['max_score']:g}")
    assert not any(line.startswith("Total: 94 / 94") for line in lines)  # the student's imitation stays quoted


@pytest.mark.parametrize("hostile", ["import_sys_exit", "import_os_exit"])
def test_leaving_at_import_time_is_a_zero_never_a_pass(tmp_path, hostile):
    started = time.perf_counter()
    report = grade(PART1, make_submission(PART1, tmp_path, at_import=[hostile]))
    assert report.score == 0 and report.max_score > 0 and len(report.results) == len(failures(report))
    assert all(m.startswith("importing kvcache failed:") for m in failures(report))
    assert time.perf_counter() - started < 20


def test_leaving_inside_a_todo_fails_that_todos_checks(tmp_path, graded):
    report = grade(PART1, make_submission(PART1, tmp_path, {3: "todo3_sys_exit", 4: "todo4_os_exit"}))
    assert len(report.results) == len(graded(PART1, "reference").results)  # every check has a result
    assert full(report, 1) and full(report, 2)
    assert scores(report)[3][0] == 0 and scores(report)[4][0] == 0
    assert any("TODO 3 (Transformer.forward) raised SystemExit: 0" in m for m in failures(report, 3))
    assert any("process ended (exit code 0)" in m for m in failures(report, 4))


def test_patched_comparisons_in_the_child_do_not_change_any_verdict(tmp_path):
    originals = (torch.allclose, torch.equal, torch.isclose, torch.testing.assert_close, torch.Tensor.__eq__,
                 np.allclose, np.array_equal)
    garbage = {1: "todo1_returns_garbage", 2: "todo2_returns_garbage"}
    patched = grade(PART1, make_submission(PART1, tmp_path / "patched", garbage,
                                           at_import=["import_patches_comparisons"]))
    honest = grade(PART1, make_submission(PART1, tmp_path / "honest", garbage))
    verdicts = lambda report: {r.name: r.passed for r in report.results}  # noqa: E731
    assert verdicts(patched) == verdicts(honest)  # the same wrong code, patched or not: the same verdicts
    assert scores(patched)[1][0] < scores(patched)[1][1] / 2 and scores(patched)[2][0] == 0
    assert (torch.allclose, torch.equal, torch.isclose, torch.testing.assert_close, torch.Tensor.__eq__,
            np.allclose, np.array_equal) == originals  # the grader's own functions were never touched


def test_fake_results_files_and_printed_scores_are_ignored(tmp_path):
    sub = make_submission(PART1, tmp_path / "sub", {n: "stub" for n in (1, 2, 3, 4)},
                          at_import=["import_fake_results"])
    out_dir = tmp_path / "results"
    out_dir.mkdir()
    out = out_dir / "results.json"
    run = cli("grade", str(sub), "--json", str(out))
    assert run.returncode == 0, run.stderr
    results = json.loads(out.read_text())
    assert results["score"] == 0 and all(t["status"] == "failed" for t in results["tests"])
    assert sorted(p.name for p in out_dir.iterdir()) == ["results.json"]
    assert not (ROOT / "results.json").exists()
    lines = run.stdout.splitlines()
    assert [line for line in lines if line.startswith("Total:")][-1].startswith("Total: 0 / ")
    assert not [line for line in lines if "94 passed" in line and not line.startswith("  | ")]
    assert not [line for line in lines if line.startswith("Total: 94")]


def test_always_equal_objects_and_lying_tensor_subclasses_earn_nothing_extra(tmp_path):
    liar = grade(PART1, make_submission(PART1, tmp_path / "liar",
                                        {1: "todo1_always_equal", 2: "todo2_tensor_subclass"}))
    plain = grade(PART1, make_submission(PART1, tmp_path / "plain",
                                         {1: "todo1_returns_garbage", 2: "todo2_returns_garbage"}))
    for todo in (1, 2):
        assert scores(liar)[todo][0] <= scores(plain)[todo][0], (todo, scores(liar), scores(plain))
    assert scores(liar)[2][0] == 0
    returned = [r for r in liar.results if r.name.endswith("test_update_returns_the_filled_prefix")]
    assert returned and not returned[0].passed


@needs_root
def test_the_reference_and_hidden_tests_are_out_of_the_childs_reach(tmp_path, monkeypatch):
    sub = make_submission(PART1, tmp_path / "sub", {n: "stub" for n in (1, 2, 3, 4)},
                          at_import=["import_steals_solution"])
    report = grade(PART1, sub)
    assert isolation_mode() in ("namespace", "uid")
    assert report.score == 0, "the submission found and used the reference"
    notes = "\n".join(report.notes)
    assert "FOUND []" in notes, notes
    assert "WARNING" not in notes
    # the same submission, graded without confinement, steals the reference: the attack is real
    monkeypatch.setenv("KVKIT_ISOLATION", "none")
    unconfined = grade(PART1, sub)
    assert unconfined.score == unconfined.max_score
    assert any("could read" in note for note in unconfined.notes)


def _digest(paths) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(str(path).encode() + path.read_bytes())
    return h.hexdigest()


@needs_root
def test_the_child_cannot_delete_or_edit_files_around_it(tmp_path, graded):
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("keep me\n")
    kit = [p for p in (*PART1.public_tests.rglob("*"), *PART1.hidden_tests.rglob("*"))
           if p.is_file() and "__pycache__" not in p.parts]
    before = _digest(kit)
    sub = make_submission(PART1, tmp_path / "sub", at_import=["import_vandal"], __KVKIT_SENTINEL__=str(sentinel))
    own = sub / "kvcache" / "cache.py"
    own_before = own.read_bytes()
    report = grade(PART1, sub)
    assert report.score == report.max_score == graded(PART1, "reference").max_score  # its code still ran as written
    notes = "\n".join(report.notes)
    assert "VANDAL succeeded 0 times out of 21" in notes, notes
    assert _digest(kit) == before and sentinel.read_text() == "keep me\n" and own.read_bytes() == own_before


@needs_root
def test_processes_left_behind_are_killed(tmp_path):
    mark = f"kvd{uuid.uuid4().hex[:12]}"  # the detached process's name (the pid it prints is its namespace's)
    report = grade(PART1, make_submission(PART1, tmp_path, at_import=["import_detached_child"], __KVKIT_MARK__=mark))
    assert "DETACHED" in "\n".join(report.notes), report.notes
    time.sleep(0.2)
    named = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/status") as f:
                status = dict(line.split(":", 1) for line in f if line.startswith(("Name:", "State:")))
        except (OSError, ValueError):
            continue
        if status.get("Name", "").strip() == mark and not status.get("State", "").strip().startswith(("Z", "X")):
            named.append(pid)
    assert named == [], "the detached process outlived its grading"


@needs_root
def test_no_network_and_bounded_disk_for_the_child(tmp_path):
    report = grade(PART1, make_submission(PART1, tmp_path, at_import=["import_network", "import_fills_disk"]))
    assert report.score == report.max_score  # the rest of its code still runs
    notes = "\n".join(report.notes)
    assert "NETWORK blocked" in notes, notes
    written = int(re.search(r"DISK wrote (\d+) MB", notes).group(1))
    assert written <= 3 * 64, f"the child wrote {written} MB"


def test_a_failure_of_the_grader_itself_is_raised_not_scored_as_a_zero(tmp_path, monkeypatch):
    from kvkit.errors import GraderError
    from kvkit.grading.child import boot

    monkeypatch.setattr(boot, "BOOT", "import sys; print('broken grader'); sys.exit(3)")
    with pytest.raises(GraderError, match="did not start.*exit code 3"):
        grade(PART1, make_submission(PART1, tmp_path, {}))


def test_forged_replies_cannot_make_the_grader_allocate_or_crash(tmp_path, warm):
    before = peak_mb()
    report = grade(PART1, make_submission(PART1, tmp_path, {3: "todo3_nested_reply", 4: "todo4_forged_reply"}),
                   warm=warm)
    assert full(report, 1) and full(report, 2)
    assert scores(report)[3][0] == 0 and scores(report)[4][0] == 0
    messages = "\n".join(failures(report, 3) + failures(report, 4))
    assert "unreadable reply" in messages and "tensor of 1000000000000 elements" in messages
    assert "broken reply" in messages
    assert peak_mb() - before < 300, f"the grader itself grew by {peak_mb() - before:.0f} MB"

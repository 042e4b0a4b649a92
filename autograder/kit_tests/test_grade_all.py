"""``kvkit grade-all``: a folder of submissions into a CSV, in parallel, resumable after a kill."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from cli_support import kvkit as in_process
from hostile_support import make_submission
from kvkit.errors import UsageError
from kvkit.examples import write_example, write_package
from kvkit.grading.grade_all import find_submissions
from kvkit.registry import ROOT
from layouts_support import PART1

pytestmark = pytest.mark.slow


def kvkit(layout) -> list[str]:
    """The ``kvkit`` command line for ``layout``'s assignment (in a process of its own: the tests that stop it)."""
    return [sys.executable, "-m", "kvkit.cli", "--assignment", layout.assignment.name]


def make_class(layout, folder: Path) -> Path:
    """Six students of ``layout``'s assignment: full marks, partial, skeleton, a zip of full marks, an empty folder,
    and a skeleton that replays the published goldens."""
    package = layout.assignment.package
    write_package(layout, folder / "ada", {})
    write_example(layout, "partial", folder / "bert")
    shutil.copytree(layout.skeleton / package, folder / "cleo" / package, ignore=shutil.ignore_patterns("__pycache__"))
    with zipfile.ZipFile(folder / "dana.zip", "w") as zf:
        for path in sorted((folder / "ada" / package).glob("*.py")):
            zf.write(path, f"dana/{package}/{path.name}")
    (folder / "emil").mkdir()
    make_submission(layout, folder / "finn", {n: "stub" for n in layout.assignment.todos},
                    at_import=["import_replays_goldens"])
    shutil.copy(layout.public_tests / "goldens.json", folder / "finn" / package / "goldens.json")
    (folder / "notes.txt").write_text("not a submission\n")
    return folder


def read_csv(path: Path) -> dict[str, dict]:
    with open(path, newline="") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


def test_grade_all_writes_a_csv_and_one_results_json_per_student_then_regrades_only_changes(tmp_path, layout):
    subs = make_class(layout, tmp_path / "subs")
    out, results = tmp_path / "grades.csv", tmp_path / "results"
    run = in_process(layout, "grade-all", subs, "--out", out, "--jobs", "2", "--results-dir", results)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "5 graded, 0 already graded (skipped), 1 not gradable" in run.stdout  # emil: an empty folder
    assert "grading" in run.stderr and "6/6" in run.stderr  # the progress bar
    rows = read_csv(out)
    assert list(rows) == ["ada", "bert", "cleo", "dana", "emil", "finn"]
    full = rows["ada"]["max_score"]
    assert rows["ada"]["score"] == full == rows["dana"]["score"] and float(full) > 0
    assert rows["cleo"]["score"] == "0" and rows["cleo"]["status"] == "graded"
    assert rows["finn"]["score"] == "0" and rows["finn"]["status"] == "graded"  # the replay earns what cleo earns
    columns = [f"todo{n}" for n in layout.assignment.todos]
    assert columns == [name for name in rows["ada"] if name.startswith("todo")]
    assert 0 < float(rows["bert"]["score"]) < float(full)
    assert sum(float(rows["bert"][c]) for c in columns) == float(rows["bert"]["score"])  # a column per TODO
    assert any(rows["bert"][c] != rows["ada"][c] for c in columns)
    assert rows["emil"]["status"] == "not graded" and "is empty" in rows["emil"]["notes"]
    for student in rows:
        data = json.loads((results / student / "results.json").read_text())
        assert {"score", "max_score", "tests"} <= data.keys()
        if student != "emil":
            assert {t["visibility"] for t in data["tests"]} == {"visible", "after_published"}
    # a student resubmits: only that submission is graded again
    module = subs / "cleo" / layout.assignment.package / layout.assignment.modules[0]
    module.write_text(module.read_text() + "\n# changed\n")
    before = {s: (results / s / "meta.json").stat().st_mtime_ns for s in rows}
    run = in_process(layout, "grade-all", subs, "--out", out, "--results-dir", results, "--no-progress")
    assert run.returncode == 0 and "1 graded, 5 already graded" in run.stdout, run.stdout + run.stderr[-2000:]
    after = {s: (results / s / "meta.json").stat().st_mtime_ns for s in rows}
    assert [s for s in rows if before[s] != after[s]] == ["cleo"]
    assert read_csv(out) == rows


def finished(results: Path) -> list[str]:
    return sorted(p.parent.name for p in results.glob("*/meta.json"))


def run_until(command: list[str], env: dict, results: Path, count: int) -> subprocess.Popen:
    """``command`` started in a session of its own, once ``count`` grades are finished in ``results``."""
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while len(finished(results)) < count and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before it had {count} grades: {proc.communicate()}"
    return proc


def processes_of(proc: subprocess.Popen, temp: Path) -> list[str]:
    """What still runs of ``proc``'s run, after up to 10 s: its process group (the command, its workers) and
    anything started from its temporary folder (zygotes and the children they fork)."""
    deadline, left = time.monotonic() + 10, ["?"]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                group = os.getpgid(int(pid))
            except (OSError, ProcessLookupError):
                continue
            if group == proc.pid or str(temp) in cmdline:
                left.append(f"{pid}: {cmdline[:150]}")
    return left


def test_a_stopped_or_killed_run_leaves_nothing_running_and_resumes(tmp_path, killed_runs_temp):
    """SIGTERM (``kill``, a batch system's limit; SIGHUP and Ctrl-C take the same path) stops the command and its
    workers through their cleanup: one line, status 143, the CSV of the finished grades, no process and no sandbox
    left. SIGKILL of the command alone: its workers follow it and remove their sandboxes. A rerun grades only what is left."""
    subs = tmp_path / "subs"
    for i in range(8):
        write_example(PART1, "partial" if i % 2 else "alternative", subs / f"student{i}")
    out, results = tmp_path / "grades.csv", tmp_path / "results"
    temp = killed_runs_temp
    env = {**os.environ, "TMPDIR": str(temp)}
    command = kvkit(PART1) + ["grade-all", str(subs), "--out", str(out), "--jobs", "2", "--results-dir",
                              str(results), "--no-progress"]
    proc = run_until(command, env, results, 2)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, stdout + stderr
    assert stderr.strip().splitlines()[-1] == (f"kvkit: stopped by SIGTERM; the grades finished so far are in "
                                               f"{out}; the same command grades the rest"), stderr
    assert "Traceback" not in stdout + stderr
    assert processes_of(proc, temp) == [] and list(temp.iterdir()) == []
    first = finished(results)
    assert 2 <= len(first) < 8, first
    rows = read_csv(out)
    assert {s for s, row in rows.items() if row["status"] == "graded"} == set(first)

    proc = run_until(command, env, results, len(first) + 1)
    os.kill(proc.pid, signal.SIGKILL)  # the command alone
    proc.communicate(timeout=60)
    assert processes_of(proc, temp) == []
    assert [p.name for p in temp.iterdir() if not p.name.startswith(("kvkit-grade-all-", "pymp-"))] == []  # a
    # SIGKILL leaves only the command's own scratch folder and that of its forkserver's socket (multiprocessing's)
    for path in results.glob("*/*.json"):  # nothing half written
        json.loads(path.read_text())
    second = finished(results)
    stamps = {s: (results / s / "meta.json").stat().st_mtime_ns for s in second}

    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr[-2000:]
    assert f"{8 - len(second)} graded, {len(second)} already graded" in run.stdout
    assert {s: (results / s / "meta.json").stat().st_mtime_ns for s in second} == stamps
    rows = read_csv(out)
    assert sorted(rows) == [f"student{i}" for i in range(8)]
    assert all(row["status"] == "graded" for row in rows.values())
    assert rows["student0"]["score"] == rows["student0"]["max_score"]


def test_two_entries_for_one_student_cost_only_that_student(tmp_path):
    write_package(PART1, tmp_path / "ada", {})
    (tmp_path / "ada.zip").write_bytes(b"")
    write_package(PART1, tmp_path / "bert", {})
    entries, skipped = find_submissions(tmp_path)
    assert [(e.student, e.refused is not None) for e in entries] == [("ada", True), ("ada", True), ("bert", False)]
    assert "2 submissions for ada (ada, ada.zip): keep one" in entries[0].refused and not skipped


def test_a_folder_without_submissions_is_a_usage_error(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(UsageError, match="holds no submissions"):
        find_submissions(tmp_path)

"""``kvkit grade-all --scheduler``: a class graded on a real Dask cluster on the loopback interface.

A scheduler and two workers start here (``dask scheduler``, ``dask worker``); one worker is killed mid-run, and
every grade is still there and equal to local grading's. A worker that runs another copy of the kit, whose checks
differ (another kit fingerprint), is refused in one line and grades nothing.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hostile_support import make_submission
from kvkit.examples import write_example, write_package
from kvkit.registry import ROOT
from layouts_support import PART1

pytestmark = pytest.mark.slow  # once, for part 1: the cluster path does not depend on the assignment
DASK = Path(sys.executable).parent / "dask"
KVKIT = [sys.executable, "-m", "kvkit.cli", "--assignment", PART1.assignment.name]
PACKAGE = PART1.assignment.package


def make_class(folder: Path) -> Path:
    """Eight students: full marks, partial, skeleton, a zip of full marks, an empty folder (not graded), a link to
    the reference (refused), the replay of the published goldens (0), and full marks again."""
    write_package(PART1, folder / "ada", {})
    write_example(PART1, "partial", folder / "bert")
    shutil.copytree(PART1.skeleton / PACKAGE, folder / "cleo" / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.make_archive(str(folder / "dana"), "zip", folder / "ada")
    (folder / "emil").mkdir()
    (folder / "fay").mkdir()
    (folder / "fay" / PACKAGE).symlink_to(ROOT / "reference" / PACKAGE)
    make_submission(PART1, folder / "finn", {n: "stub" for n in PART1.assignment.todos},
                    at_import=["import_replays_goldens"])
    write_package(PART1, folder / "gus", {})
    return folder


def other_kit(folder: Path) -> dict:
    """The environment of a worker that runs another copy of the kit, whose public goldens differ by a byte."""
    for part in ("autograder/kvkit", "autograder/material", "tests", "reference"):
        shutil.copytree(ROOT / part, folder / part, ignore=shutil.ignore_patterns("__pycache__"))
    goldens = folder / PART1.public_tests.relative_to(ROOT) / "goldens.json"
    goldens.write_text(goldens.read_text() + "\n")
    return {"PYTHONPATH": f"{folder / 'autograder'}{os.pathsep}{folder / 'tests'}"}


def read_csv(path: Path) -> dict[str, dict]:
    with open(path, newline="") as f:
        return {row["student"]: {k: v for k, v in row.items() if k != "notes"} for row in csv.DictReader(f)}


def start(argv: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(argv, stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=ROOT,
                            env={**os.environ, **(env or {})}, start_new_session=True)


def kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the worker and its nanny: a machine that goes away
    except ProcessLookupError:
        pass
    process.wait(timeout=30)


def wait_for(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture
def cluster(tmp_path, killed_runs_temp):
    """A scheduler on 127.0.0.1 and a way to start workers (their temporary folder: ``killed_runs_temp``); everything
    is killed at the end."""
    file = tmp_path / "scheduler.json"
    processes = [start([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                        "--scheduler-file", str(file)], tmp_path / "scheduler.log")]
    wait_for(lambda: file.is_file() and file.stat().st_size > 0, 60, "the scheduler")
    address = json.loads(file.read_text())["address"]
    assert address.startswith("tcp://127.0.0.1:")

    def worker(name: str, env: dict | None = None) -> subprocess.Popen:
        process = start([str(DASK), "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--no-dashboard",
                         "--name", name], tmp_path / f"{name}.log", {"TMPDIR": str(killed_runs_temp), **(env or {})})
        processes.append(process)
        wait_for(lambda: "Registered to" in (tmp_path / f"{name}.log").read_text(), 90, f"worker {name}")
        return process

    yield address, worker
    for process in processes:
        kill(process)


def test_a_class_on_a_loopback_cluster_with_a_killed_worker_gets_the_local_grades(tmp_path, cluster):
    address, worker = cluster
    klass = make_class(tmp_path / "class")
    local = tmp_path / "local.csv"
    run = subprocess.run([*KVKIT, "grade-all", str(klass), "--out", str(local), "--jobs", "2", "--no-progress"],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]

    doomed = worker("doomed")
    worker("steady")
    worker("other-kit", other_kit(tmp_path / "other-kit"))  # its kit fingerprint differs
    out, results = tmp_path / "cluster.csv", tmp_path / "cluster-results"
    grading = subprocess.Popen([*KVKIT, "grade-all", str(klass), "--out", str(out), "--results-dir", str(results),
                                "--scheduler", address, "--no-progress"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    graded = lambda: [p for p in results.glob("*/meta.json") if json.loads(p.read_text())["status"] == "graded"]  # noqa: E731
    wait_for(lambda: graded() or grading.poll() is not None, 600, "a first grade")
    done_before_the_kill = len(graded())
    kill(doomed)  # mid-run: its submissions in flight are graded by the other worker
    stdout, stderr = grading.communicate(timeout=900)
    assert grading.returncode == 0, stdout + stderr[-3000:]
    assert 1 <= done_before_the_kill < 6, "the worker was not killed mid-run: the test proves nothing"
    refused = [line for line in stderr.splitlines() if line.startswith("refused Dask worker")]
    assert len(refused) == 1 and "its kit or checks differ" in refused[0], stderr[-2000:]
    assert read_csv(out) == read_csv(local)
    rows = read_csv(out)
    assert rows["ada"]["score"] == rows["ada"]["max_score"] == rows["gus"]["score"] == rows["dana"]["score"]
    assert rows["cleo"]["score"] == rows["finn"]["score"] == "0" and rows["fay"]["status"] == "not graded"

    rerun = subprocess.run([*KVKIT, "grade-all", str(klass), "--out", str(out), "--results-dir", str(results),
                            "--scheduler", address, "--no-progress"], cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0 and "0 graded, 8 already graded" in rerun.stdout, rerun.stdout + rerun.stderr


def test_no_scheduler_at_the_address_is_one_line(tmp_path):
    write_package(PART1, tmp_path / "class" / "ada", {})
    run = subprocess.run([*KVKIT, "grade-all", str(tmp_path / "class"), "--out", str(tmp_path / "g.csv"),
                          "--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "2", "--no-progress"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1 and "no Dask scheduler answers" in lines[0], run.stderr[-2000:]

"""``kvkit grade`` run by an instructor without root: the student's code is still confined.

The kit's tests run as root (as CI does); each test here runs the grader as another user (uid 65534) with
``setpriv``. That user must reach the interpreter: where a folder on its way is closed to other users (``/root``
holds pyenv's Python here), the grader runs in a mount namespace of the test's own in which only the needed
folders are bound into an open one, as they would be on an instructor's machine. Each non-root isolation mode
(``userns``: unprivileged user namespaces; ``bwrap``: bubblewrap) is graded on the same hostile submissions.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from hostile_support import make_submission
from layouts_support import PART1
from nonroot_support import USER, reachable_kit_lines, the_user_to_ourselves

TODOS = PART1.assignment.todos

IS_ROOT = os.geteuid() == 0
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not IS_ROOT, reason="dropping to another user needs root (as CI has)")]
MODES = [pytest.param("userns", id="userns"),
         pytest.param("bwrap", id="bwrap", marks=pytest.mark.skipif(
             not shutil.which("bwrap"), reason="bubblewrap is not installed (make setup installs it as root)"))]


def as_unprivileged(argv: list[str], env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    """``argv`` as user 65534, with the interpreter's and the kit's folders reachable by it."""
    script = reachable_kit_lines("stash")
    script.append(f"exec setpriv --reuid={USER} --regid={USER} --clear-groups -- {shlex.join(argv)}")
    return subprocess.run(["unshare", "--mount", "sh", "-c", "\n".join(script)], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd="/")


@pytest.fixture(autouse=True)
def alone_as_the_user():
    """Each test here runs things as another user and looks for that user's processes: one such test at a time."""
    with the_user_to_ourselves():
        yield


@pytest.fixture
def workspace():
    """A folder the unprivileged user owns (pytest's own temporary folders are closed to it)."""
    folder = Path(tempfile.mkdtemp(prefix="kvkit-nonroot-"))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def grade_as_unprivileged(workspace: Path, submission: Path, mode: str) -> tuple[subprocess.CompletedProcess, dict]:
    for path in [workspace, *workspace.rglob("*")]:
        os.chown(path, USER, USER, follow_symlinks=False)
    results = workspace / "results.json"
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(workspace), "LANG": "C.UTF-8",
           "KVKIT_ISOLATION": mode}
    run = as_unprivileged([sys.executable, "-m", "kvkit.cli", "grade", str(submission), "--json", str(results)], env)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return run, json.loads(results.read_text())


def processes_of(uid: int, settle: float = 3.0) -> list[int]:
    """The live processes of ``uid`` (waiting up to ``settle`` seconds for dying ones to go; zombies are gone)."""
    deadline = time.monotonic() + settle
    while True:
        found = []
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/status") as f:
                    status = dict(line.split(":", 1) for line in f if ":" in line)
                if int(status["Uid"].split()[0]) == uid and not status["State"].strip().startswith(("Z", "X")):
                    found.append(int(entry))
            except (OSError, ValueError, KeyError):
                continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.mark.parametrize("mode", MODES)
def test_a_stealing_submission_gains_nothing_without_root(workspace, mode):
    sub = make_submission(PART1, workspace / "sub", {n: "stub" for n in TODOS},
                          at_import=["import_steals_solution", "import_network", "import_fills_disk",
                                     "import_detached_child"])
    assert processes_of(USER) == []
    run, results = grade_as_unprivileged(workspace, sub, mode)
    assert results["score"] == 0, "the submission found the reference and used it"
    notes = results["output"]
    assert "FOUND []" in notes and "WARNING" not in notes and "WARNING" not in run.stdout, notes
    assert "NETWORK blocked" in notes
    assert int(re.search(r"DISK wrote (\d+) MB", notes).group(1)) <= 3 * 64
    assert "DETACHED" in notes and processes_of(USER) == [], "a process of the submission outlived its grading"


def test_the_same_submission_steals_full_marks_unconfined(workspace):
    sub = make_submission(PART1, workspace / "sub", {n: "stub" for n in TODOS}, at_import=["import_steals_solution"])
    run, results = grade_as_unprivileged(workspace, sub, "none")
    assert results["score"] == results["max_score"] > 0  # the attack is real
    assert "WARNING: no isolation" in run.stdout and "WARNING: no isolation" in results["output"]


@pytest.mark.parametrize("mode", MODES)
def test_vandalism_changes_nothing_outside_the_childs_scratch_space(workspace, mode):
    sentinel = workspace / "sentinel.txt"
    sentinel.write_text("keep me\n")
    kit = sorted(p for p in (*PART1.public_tests.rglob("*"), *PART1.hidden_tests.rglob("*")) if p.is_file()
                 and "__pycache__" not in p.parts)
    before = {p: p.read_bytes() for p in kit}
    sub = make_submission(PART1, workspace / "sub", at_import=["import_vandal"], __KVKIT_SENTINEL__=str(sentinel))
    own = {p: p.read_bytes() for p in (sub / "kvcache").glob("*.py")}
    run, results = grade_as_unprivileged(workspace, sub, mode)
    assert re.search(r"^Total: ", run.stdout, re.M), "the grader did not finish its report"
    assert sentinel.read_text() == "keep me\n"
    assert {p: p.read_bytes() for p in kit} == before
    assert {p: p.read_bytes() for p in own} == own
    edits = [line for line in results["output"].splitlines() if "DONE" in line and ("edit" in line or "delete" in line
                                                                                   or "rmtree" in line)]
    assert not edits, edits


@pytest.mark.parametrize("mode", MODES)
def test_one_worker_grading_a_class_without_root_lets_no_child_reach_the_next(workspace, mode):
    """``grade-all`` on one job: in ``userns`` mode its worker forks each child from its zygote and shares a draw
    of fresh inputs (in ``bwrap`` mode each child starts cold); a child that leaves traces everywhere it can is
    followed by one that looks for them and for the reference, and finds neither."""
    mark = f"kvkit-nonroot-{os.getpid()}"
    make_submission(PART1, workspace / "class" / "a_leaves", at_import=["import_leaves_traces"], __KVKIT_MARK__=mark)
    make_submission(PART1, workspace / "class" / "b_finds", {n: "stub" for n in TODOS},
                    at_import=["import_finds_traces", "import_steals_solution"], __KVKIT_MARK__=mark)
    for path in [workspace, *workspace.rglob("*")]:
        os.chown(path, USER, USER, follow_symlinks=False)
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(workspace), "LANG": "C.UTF-8",
           "KVKIT_ISOLATION": mode}
    run = as_unprivileged([sys.executable, "-m", "kvkit.cli", "grade-all", str(workspace / "class"), "--out",
                           str(workspace / "grades.csv"), "--jobs", "1", "--no-progress"], env)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    results = {name: json.loads((workspace / "grades-results" / name / "results.json").read_text())
               for name in ("a_leaves", "b_finds")}
    assert results["a_leaves"]["score"] == results["a_leaves"]["max_score"] > 0
    assert "LEFT [" in results["a_leaves"]["output"]
    found = results["b_finds"]["output"]
    assert results["b_finds"]["score"] == 0 and "TRACES FOUND []" in found and re.search(r"\| FOUND \[\]", found), found
    assert "WARNING" not in found and processes_of(USER) == []


@pytest.mark.parametrize("mode", MODES)
def test_no_child_reaches_the_workers_forkserver(workspace, mode):
    """``grade-all``'s workers are forked by a forkserver whose socket lies in the temporary folder: whoever connects
    to it as the grader's user can have it fork a process outside the jail, and a child in ``userns`` or ``bwrap``
    mode is that user. Here the temporary folder lies under ``/var``, which a child still sees (read-only): the
    socket's folder is hidden from every child all the same."""
    temp = Path(tempfile.mkdtemp(prefix="kvkit-nonroot-temp-", dir="/var/lib"))
    try:
        make_submission(PART1, workspace / "class" / "ada", at_import=["import_reaches_forkserver"],
                        __KVKIT_TEMP__=str(temp))
        for path in [workspace, temp, *workspace.rglob("*")]:
            os.chown(path, USER, USER, follow_symlinks=False)
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(workspace), "LANG": "C.UTF-8",
               "KVKIT_ISOLATION": mode, "TMPDIR": str(temp)}
        run = as_unprivileged([sys.executable, "-m", "kvkit.cli", "grade-all", str(workspace / "class"), "--out",
                               str(workspace / "grades.csv"), "--jobs", "1", "--no-progress"], env)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    results = json.loads((workspace / "grades-results" / "ada" / "results.json").read_text())
    assert "FORKSERVER 0 0" in results["output"], results["output"][-1000:]
    assert results["score"] == results["max_score"] > 0

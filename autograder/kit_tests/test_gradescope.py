"""``kvkit gradescope``: the autograder zip, run locally under a folder that imitates Gradescope's ``/autograder``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hostile_support import make_submission, reference_body
from kvkit.cli import main
from kvkit.registry import ROOT
from layouts_support import PART1
from shared_support import shared

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def zips(tmp_path_factory):
    """``zips(layout)``: ``kvkit --assignment NAME gradescope`` of ``layout``'s assignment (built once per session,
    shared by the xdist workers)."""
    def build(name: str, folder: Path) -> Path:
        out = folder / "autograder.zip"
        assert main(["--assignment", name, "gradescope", str(out)]) == 0
        return out

    def get(layout) -> Path:
        name = layout.assignment.name
        return shared(tmp_path_factory, f"gradescope-{name}", lambda folder: build(name, folder))

    return get


def gradescope_root(tmp_path: Path, autograder_zip: Path, submission: Path) -> Path:
    """``ROOT/source`` (the unpacked zip), ``ROOT/submission`` (the student's files), ``ROOT/results``."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(autograder_zip) as zf:
        zf.extractall(root / "source")
    for name in ("setup.sh", "run_autograder"):
        os.chmod(root / "source" / name, 0o755)
    shutil.copytree(submission, root / "submission", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "results").mkdir()
    return root


def run_autograder(root: Path, **extra_env: str) -> tuple[subprocess.CompletedProcess, dict]:
    env = {**os.environ, "KVKIT_GRADESCOPE_ROOT": str(root), "KVKIT_PYTHON": sys.executable, **extra_env}
    env.pop("PYTHONPATH", None)
    run = subprocess.run([str(root / "source" / "run_autograder")], env=env, cwd="/", capture_output=True, text=True,
                         timeout=300)
    return run, json.loads((root / "results" / "results.json").read_text())


def test_the_zip_holds_the_scripts_checks_and_the_reference_for_fresh_inputs(zips, layout):
    with zipfile.ZipFile(zips(layout)) as zf:
        names = zf.namelist()
        texts = {n: zf.read(n).decode(errors="replace") for n in names}
        modes = {n: zf.getinfo(n).external_attr >> 16 for n in ("setup.sh", "run_autograder")}
    assert {"setup.sh", "run_autograder", "requirements.txt"} <= set(names)
    assert all(mode & 0o111 for mode in modes.values())
    hidden, public = (f"kit/{folder.relative_to(ROOT).as_posix()}"
                      for folder in (layout.hidden_tests, layout.public_tests))
    assert any(n.startswith(f"{hidden}/") and n.endswith(".py") for n in names)
    assert f"{hidden}/goldens.json" in names and f"{public}/goldens.json" in names
    assert not [n for n in names if "/examples/" in n or "source/" in n or "kit_tests" in n]
    todos = layout.assignment.todos
    for todo in todos:  # the solution is there, in the reference only (kvkit.grading.fresh needs it)
        body = reference_body(layout, todo).strip().splitlines()
        longest = max(body, key=len).strip()
        assert [n for n, text in texts.items() if longest in text] == [f"kit/reference/{todos[todo].file}"]
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in texts["setup.sh"]
    assert all("==" in line for line in texts["requirements.txt"].split())


def test_run_autograder_gives_the_reference_full_marks(tmp_path, zips, layout):
    root = gradescope_root(tmp_path, zips(layout), layout.reference)
    run, results = run_autograder(root)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert f"kvkit from {root / 'source' / 'kit' / 'autograder' / 'kvkit'}" in run.stdout  # the zip's grader
    assert results["score"] == results["max_score"] > 0
    visibility = {t["visibility"] for t in results["tests"]}
    assert visibility == {"visible", "after_published"}
    hidden = [t for t in results["tests"] if t["visibility"] == "after_published"]
    assert hidden and all("test_hidden" in t["name"] for t in hidden)
    assert results["stdout_visibility"] == "hidden"
    if os.geteuid() == 0:  # confined as in kvkit grade: the kit under ROOT/source is out of the child's reach
        assert "could read" not in results["output"] and "WARNING" not in results["output"]


def test_run_autograder_gives_the_skeleton_zero(tmp_path, zips, layout):
    root = gradescope_root(tmp_path, zips(layout), layout.skeleton)
    run, results = run_autograder(root)
    assert run.returncode == 0, run.stderr[-3000:]
    assert results["score"] == 0 and results["max_score"] > 0
    assert all(t["status"] == "failed" and "is not implemented yet (NotImplementedError" in t["output"]
               for t in results["tests"])


def test_run_autograder_turns_an_empty_submission_into_a_zero_with_a_reason(tmp_path, zips, layout):
    empty = tmp_path / "empty"
    empty.mkdir()
    root = gradescope_root(tmp_path, zips(layout), empty)
    run, results = run_autograder(root)
    assert run.returncode == 0, run.stderr[-3000:]
    assert results["score"] == 0 and results["tests"] == []
    assert results["output"].startswith("Your submission could not be graded:") and "is empty" in results["output"]


def test_the_reference_in_the_zip_is_out_of_the_childs_reach(tmp_path, zips):
    if os.geteuid() != 0:
        pytest.skip("Gradescope runs the autograder as root; this checks that confinement")
    kit = tmp_path / "autograder" / "source" / "kit"  # where gradescope_root unpacks the zip
    sub = make_submission(PART1, tmp_path / "sub", {n: "stub" for n in PART1.assignment.todos},
                          at_import=["import_steals_solution"], __KVKIT_ROOT__=str(kit))
    root = gradescope_root(tmp_path, zips(PART1), sub / "kvcache")
    run, results = run_autograder(root)
    assert run.returncode == 0, run.stderr[-3000:]
    assert results["score"] == 0, "the submission found the zip's reference and used it"
    assert "FOUND []" in results["output"] and "could read" not in results["output"]
    # unconfined, the same submission finds the zip's reference and takes full marks: the attack is real
    run, results = run_autograder(root, KVKIT_ISOLATION="none")
    assert results["score"] == results["max_score"] > 0, results["output"]

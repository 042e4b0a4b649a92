"""A second assignment made from a manifest alone, graded on every path.

The kit's files are copied into a scratch folder, the toy assignment of ``toy/`` (a manifest, a reference,
public and hidden tests with their probes, a one-cell notebook template, a student README) is added and listed
in the copy's ``pyproject.toml``, and the copy's own commands build it: ``kvkit --assignment toy build``,
``goldens`` and ``notebook``. Each grading path then gives the reference full marks and the skeleton zero:
the student's self-check in the bundle, ``kvkit grade``, ``grade-all``, the Gradescope autograder and real
``nbgrader autograde``. A last test adds a third TODO by touching the manifest, the reference and one new test
file, nothing else.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kvkit.paths import ROOT

pytestmark = pytest.mark.slow

TOY = Path(__file__).parent / "toy"
FULL, PUBLIC = 8, 7  # TODO 1: 2 + 2 + 1, TODO 2: 2 public + 1 hidden
STUB = "NotImplementedError"


def kit_files() -> list[str]:
    """The kit's files as a fresh clone has them (and new ones not yet committed), relative to the root."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    return [name for name in listed if name and (ROOT / name).is_file() and not name.startswith("autograder/kit_tests/")]


def kit_env(kit: Path, **extra: str) -> dict:
    """The copy's own ``kvkit`` and ``kvchecks`` before the installed ones."""
    env = {**os.environ, "PYTHONPATH": f"{kit / 'autograder'}:{kit / 'tests'}",
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}", **extra}
    env.pop("KVKIT_ASSIGNMENT", None)
    return env


def run(kit: Path, argv: list[str], cwd: Path | None = None, env: dict | None = None,
        expect_ok: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, cwd=cwd or kit, env=env or kit_env(kit), capture_output=True, text=True,
                          timeout=600)
    if expect_ok:
        assert done.returncode == 0, f"{' '.join(argv[:6])}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def kvkit(kit: Path, *args: str, expect_ok: bool = True) -> subprocess.CompletedProcess:
    return run(kit, [sys.executable, "-m", "kvkit.cli", "--assignment", "toy", *args], expect_ok=expect_ok)


def add_assignment(kit: Path, manifest: str) -> None:
    pyproject = kit / "pyproject.toml"
    text = pyproject.read_text()
    listed = re.search(r"^assignments = \[(.*)\]", text, re.MULTILINE)
    pyproject.write_text(text[:listed.end(1)] + f', "{manifest}"' + text[listed.end(1):])


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> Path:
    kit = tmp_path_factory.mktemp("kit")
    for name in kit_files():
        (kit / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, kit / name)
    shutil.copytree(TOY, kit / "toy")
    add_assignment(kit, "toy/tests/assignment.toml")
    for command in ("build", "goldens", "notebook"):
        kvkit(kit, command)
    return kit


def copy_package(kit: Path, which: str, dest: Path) -> Path:
    """``dest/toyops/``: the toy's reference or skeleton package."""
    folder = {"reference": kit / "toy" / "reference", "skeleton": kit / "toy" / "assignments"}[which]
    shutil.copytree(folder / "toyops", dest / "toyops", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_the_commands_build_the_skeleton_goldens_and_course_from_the_manifest(kit):
    skeleton = (kit / "toy" / "assignments" / "toyops" / "ops.py").read_text()
    assert "raise NotImplementedError(\"TODO 1: Scaler.apply - return x times the factor" in skeleton
    assert "raise NotImplementedError('TODO 2: RunningSum.add" in skeleton and "self.total += value" not in skeleton
    assert json.loads((kit / "toy" / "tests" / "goldens.json").read_text())
    assert json.loads((kit / "toy" / "hidden" / "goldens.json").read_text())
    source = json.loads((kit / "source" / "toy" / "toy.ipynb").read_text())
    points = sum(c["metadata"].get("nbgrader", {}).get("points", 0) for c in source["cells"])
    assert points == FULL
    assert (kit / "release" / "toy" / "toy.ipynb").is_file()
    assert (kit / "release" / "toy" / "tests" / "toy_probes.py").is_file()
    assert kvkit(kit, "build", "--check").stdout.strip() == "toy/assignments/ is up to date with toy/reference/"


def graded(kit: Path, folder: Path, out: Path) -> dict:
    kvkit(kit, "grade", str(folder), "--json", str(out))
    return json.loads(out.read_text())


def test_kvkit_grade_gives_the_reference_full_marks_and_the_skeleton_zero(kit, tmp_path):
    full = graded(kit, copy_package(kit, "reference", tmp_path / "ref"), tmp_path / "ref.json")
    assert full["score"] == FULL
    zero = graded(kit, copy_package(kit, "skeleton", tmp_path / "skel"), tmp_path / "skel.json")
    assert zero["score"] == 0 and len(zero["tests"]) == 5
    assert all(STUB in t["output"] or "not implemented" in t["output"] for t in zero["tests"] if "output" in t)


def test_grade_all_writes_each_students_score(kit, tmp_path):
    copy_package(kit, "reference", tmp_path / "subs" / "ada")
    copy_package(kit, "skeleton", tmp_path / "subs" / "bo")
    kvkit(kit, "grade-all", str(tmp_path / "subs"), "--out", str(tmp_path / "grades.csv"), "--no-progress")
    rows = {row["student"]: row for row in csv.DictReader((tmp_path / "grades.csv").open())}
    assert float(rows["ada"]["score"]) == FULL and float(rows["bo"]["score"]) == 0
    assert {"todo1", "todo2"} <= set(rows["ada"]) and "todo3" not in rows["ada"]


def test_the_students_bundle_self_checks_with_a_score_per_todo(kit, tmp_path):
    kvkit(kit, "bundle", str(tmp_path / "toy.zip"))
    with zipfile.ZipFile(tmp_path / "toy.zip") as zf:
        names = zf.namelist()
        zf.extractall(tmp_path / "student")
    assert "toy-exercise/tests/assignment.toml" in names and "toy-exercise/tests/toy_probes.py" in names
    assert not [n for n in names if "hidden" in n or "reference" in n or "speed.py" in n]
    folder = tmp_path / "student" / "toy-exercise"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KVKIT_ASSIGNMENT")}
    first = run(kit, [sys.executable, "-m", "pytest"], cwd=folder, env=env, expect_ok=False)
    assert first.returncode == 1 and re.search(rf"Total\s+0 / {PUBLIC}\b", first.stdout), first.stdout[-2000:]
    assert "TODO 1" in first.stdout and ("not implemented" in first.stdout or STUB in first.stdout)
    shutil.rmtree(folder / "assignments" / "toyops")
    copy_package(kit, "reference", folder / "assignments")
    done = run(kit, [sys.executable, "-m", "pytest"], cwd=folder, env=env)
    assert re.search(rf"Total\s+{PUBLIC} / {PUBLIC}\b", done.stdout), done.stdout[-2000:]


def test_the_gradescope_autograder_grades_it(kit, tmp_path):
    kvkit(kit, "gradescope", str(tmp_path / "autograder.zip"))
    for which, score in (("reference", FULL), ("skeleton", 0)):
        root = tmp_path / which
        with zipfile.ZipFile(tmp_path / "autograder.zip") as zf:
            zf.extractall(root / "source")
        os.chmod(root / "source" / "run_autograder", 0o755)
        copy_package(kit, which, root / "submission")
        (root / "results").mkdir()
        env = {**os.environ, "KVKIT_GRADESCOPE_ROOT": str(root), "KVKIT_PYTHON": sys.executable}
        env.pop("PYTHONPATH", None)
        run(kit, [str(root / "source" / "run_autograder")], cwd=Path("/"), env=env)
        assert json.loads((root / "results" / "results.json").read_text())["score"] == score, which


def answered(release: dict, source: dict) -> dict:
    """The release notebook with each answer cell as the source notebook has it (the reference's code)."""
    answers = {c["metadata"]["nbgrader"]["grade_id"]: c["source"] for c in source["cells"]
               if c["metadata"].get("nbgrader", {}).get("solution")}
    filled = json.loads(json.dumps(release))
    for cell in filled["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell["source"] = answers[grade_id]
    return filled


def test_real_nbgrader_autograde_gives_the_kits_scores(kit, tmp_path):
    pytest.importorskip("nbgrader")
    course = tmp_path / "course"
    shutil.copytree(kit / "source" / "toy", course / "source" / "toy")
    shutil.copyfile(kit / "nbgrader_config.py", course / "nbgrader_config.py")
    nbgrader = [sys.executable, "-m", "nbgrader"]
    run(kit, [*nbgrader, "generate_assignment", "toy", "--force"], cwd=course)
    release = json.loads((course / "release" / "toy" / "toy.ipynb").read_text())
    source = json.loads((kit / "source" / "toy" / "toy.ipynb").read_text())
    for student, notebook in (("full", answered(release, source)), ("untouched", release)):
        target = course / "submitted" / student / "toy" / "toy.ipynb"
        target.parent.mkdir(parents=True)
        target.write_text(json.dumps(notebook))
    run(kit, [*nbgrader, "autograde", "toy", "--force"], cwd=course)  # adds the students to the gradebook
    from nbgrader.api import Gradebook

    course_id = re.search(r'course_id = "([^"]+)"', (course / "nbgrader_config.py").read_text()).group(1)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id) as gb:
        scores = {s: (gb.find_submission("toy", s).score, gb.find_submission("toy", s).max_score)
                  for s in ("full", "untouched")}
    assert scores == {"full": (FULL, FULL), "untouched": (0, FULL)}


THIRD_TODO_MANIFEST = '''
[[todos]]
number = 3
module = "ops.py"
function = "Doubler.twice"
task = "return the value doubled"
'''
THIRD_TODO_CLASS = '''

class Doubler:
    """Doubles numbers."""

    def twice(self, value: float) -> float:
        """``2 * value``."""
        ### BEGIN SOLUTION
        return 2 * value
        ### END SOLUTION
'''
THIRD_TODO_TEST = '''"""TODO 3: Doubler.twice doubles."""

import pytest

from kvchecks import expect

pytestmark = pytest.mark.todo3


@pytest.mark.points(2)
def test_twice_doubles(probe, expected):
    expect.equal(probe("twice", value=2.5), expected("twice", value=2.5), "Doubler().twice(2.5)")
'''
THIRD_TODO_PROBE = '''

def twice(package, value: float) -> float:
    return package.Doubler().twice(value)


PROBES["twice"] = twice
'''


def test_a_new_todo_needs_the_manifest_the_reference_and_a_test_file_only(kit, tmp_path):
    """Everything else (skeleton, goldens, notebook cells, score columns) comes from the commands."""
    other = tmp_path / "kit"
    shutil.copytree(kit, other, ignore=shutil.ignore_patterns("__pycache__"))
    toy = other / "toy"
    with (toy / "tests" / "assignment.toml").open("a") as f:
        f.write(THIRD_TODO_MANIFEST)
    with (toy / "reference" / "toyops" / "ops.py").open("a") as f:
        f.write(THIRD_TODO_CLASS)
    init = toy / "reference" / "toyops" / "__init__.py"
    init.write_text(init.read_text().replace("from .ops import RunningSum, Scaler",
                                             "from .ops import Doubler, RunningSum, Scaler"))
    (toy / "tests" / "test_todo3_twice.py").write_text(THIRD_TODO_TEST)
    with (toy / "tests" / "toy_probes.py").open("a") as f:  # a new probe, for a new kind of call
        f.write(THIRD_TODO_PROBE)
    for command in (["build"], ["goldens"], ["notebook", "--no-release"]):
        kvkit(other, *command)
    assert "NotImplementedError('TODO 3: Doubler.twice" in (toy / "assignments" / "toyops" / "ops.py").read_text()
    assert graded(other, copy_package(other, "reference", tmp_path / "ref"), tmp_path / "ref.json")["score"] == FULL + 2
    assert graded(other, copy_package(other, "skeleton", tmp_path / "skel"), tmp_path / "skel.json")["score"] == 0
    source = json.loads((other / "source" / "toy" / "toy.ipynb").read_text())
    todo3 = [c for c in source["cells"] if c["metadata"].get("kvkit", {}).get("todo") == 3]
    assert len(todo3) == 1 and todo3[0]["metadata"]["nbgrader"]["points"] == 2

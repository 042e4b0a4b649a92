"""The student bundle holds what a student needs and nothing that gives the answers away."""

from __future__ import annotations

import ast
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from kvkit.commands.bundle import write_bundle
from layouts_support import PART1
from shared_support import shared

REFERENCE = PART1.reference  # part 1's: speed.py is part 1's


def in_bundle(root: Path, *args: str, **options) -> subprocess.CompletedProcess:
    """``python ARGS`` in the unzipped bundle ``root``, as a student runs it."""
    return subprocess.run([sys.executable, *args], cwd=root, capture_output=True, text=True, **options)


def test_bundle_holds_no_solution_and_no_hidden_check(tmp_path, layout):
    archive = zipfile.ZipFile(write_bundle(layout, tmp_path / "bundle.zip"))
    names, top, hidden = archive.namelist(), layout.assignment.bundle, layout.hidden_tests
    assert f"{top}/assignments/{layout.assignment.todos[1].file}" in names and f"{top}/tests/goldens.json" in names
    assert not any("reference" in n or "hidden" in n or "autograder" in n for n in names), names
    hidden_names = {line.split("(")[0][4:] for path in hidden.glob("test_*.py")
                    for line in path.read_text().splitlines() if line.startswith("def test_")}
    hidden_keys = set(json.loads((hidden / "goldens.json").read_text()))
    for name in names:
        text = archive.read(name).decode(errors="replace")  # a compiled catalogue (.mo) is binary: its text too
        # (that no file holds a line of the solution is a requirement: the_students_files_hold_no_solution_line)
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text, name
        assert not any(h in text for h in hidden_names), f"{name} names a hidden check"
        if name.endswith("goldens.json"):
            assert not hidden_keys & set(json.loads(text)), "hidden goldens in the bundle"


@pytest.mark.slow
def test_student_runs_pytest_in_the_unzipped_bundle(first_runs, layout):
    root, runs = first_runs(layout)
    skeleton = runs["skeleton"]
    total = [line for line in skeleton.stdout.splitlines() if line.startswith("Total")]
    assert skeleton.returncode == 1 and total and "0 / " in total[-1]
    solved = in_bundle(root, "-m", "pytest", "-q", f"--impl={layout.reference}")
    assert solved.returncode == 0, solved.stdout[-2000:]


def unzipped_bundle(tmp_path: Path, layout=PART1) -> Path:
    zipfile.ZipFile(write_bundle(layout, tmp_path / "bundle.zip")).extractall(tmp_path)
    return tmp_path / layout.assignment.bundle


@pytest.fixture(scope="session")
def first_runs(tmp_path_factory):
    """``first_runs(layout)``: ``(bundle, runs)``: ``layout``'s bundle unzipped once per session and what a student
    gets there from ``pytest`` (the untouched skeleton) and ``pytest --help``, each run once (shared by the xdist
    workers); the bundle is not to be changed."""
    def get(layout):
        def runs(folder: Path):
            root = unzipped_bundle(folder, layout)
            return root, {name: in_bundle(root, "-m", "pytest", *args)
                          for name, args in (("skeleton", ()), ("help", ("--help",)))}

        return shared(tmp_path_factory, f"bundle-first-runs-{layout.assignment.name}", runs)

    return get


def run_speed(root: Path, *args: str) -> subprocess.CompletedProcess:
    """``python speed.py ARGS`` in the unzipped bundle, as a student runs it."""
    return in_bundle(root, "speed.py", *args, timeout=300)


def test_speed_script_needs_only_the_standard_library_and_torch():
    tree = ast.parse((PART1.student / "speed.py").read_text())
    nodes = list(ast.walk(tree))
    imported = {alias.name.split(".")[0] for node in nodes if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in nodes if isinstance(node, ast.ImportFrom)}
    extra = imported - set(sys.stdlib_module_names) - {"__future__", "torch"}
    assert not extra, f"speed.py imports {sorted(extra)}: a student's install has only torch, numpy and pytest"


@pytest.mark.slow
def test_speed_script_on_the_skeleton_is_one_line_naming_the_todo(tmp_path):
    run = run_speed(unzipped_bundle(tmp_path))
    lines = run.stderr.strip().splitlines()
    assert run.returncode != 0 and run.stdout == "", run.stdout
    assert len(lines) == 1 and "Traceback" not in lines[0], run.stderr[-2000:]
    assert re.search(r"not finished: TODO \d: ", lines[0]) and "pytest -m todo" in lines[0], lines[0]


@pytest.mark.slow
def test_speed_script_shows_the_speed_up_of_the_students_finished_code(tmp_path):
    root = unzipped_bundle(tmp_path)
    shutil.rmtree(root / "assignments" / "kvcache")
    shutil.copytree(REFERENCE / "kvcache", root / "assignments" / "kvcache")
    run = run_speed(root, "--lengths", "64", "256")
    assert run.returncode == 0, run.stderr[-2000:]
    assert str(root / "assignments" / "kvcache") in run.stdout
    rows = re.findall(r"^ +(\d+) +\d+ tok/s +\d+ tok/s +([\d.]+)x +(yes|NO)$", run.stdout, re.MULTILINE)
    assert [row[0] for row in rows] == ["64", "256"] and all(row[2] == "yes" for row in rows), run.stdout
    speed_up = float(re.search(r"your cache makes generation ([\d.]+)x faster", run.stdout).group(1))
    assert speed_up > 1, run.stdout


@pytest.mark.slow
def test_speed_script_takes_another_folder_with_impl(tmp_path):
    root = unzipped_bundle(tmp_path)
    run = run_speed(root, "--impl", str(REFERENCE), "--lengths", "32")
    assert run.returncode == 0 and f"({REFERENCE / 'kvcache'})" in run.stdout, run.stderr[-2000:]
    run = run_speed(root, "--impl", str(tmp_path / "nowhere"))
    assert run.returncode != 0 and len(run.stderr.strip().splitlines()) == 1 and "no kvcache package" in run.stderr


def with_bodies(root: Path, **bodies: str) -> Path:
    """The bundle's assignments/kvcache replaced by the reference with some TODO bodies swapped (hostile pieces)."""
    from hostile_support import make_submission

    package = root / "assignments" / "kvcache"
    shutil.rmtree(package)
    made = make_submission(PART1, root / "_made", {int(todo[4:]): name for todo, name in bodies.items()})
    shutil.move(str(made / "kvcache"), package)
    shutil.rmtree(made)
    return root


@pytest.mark.slow
def test_a_student_cannot_record_or_erase_the_expected_outputs(tmp_path, first_runs, layout):
    root = unzipped_bundle(tmp_path, layout)
    goldens = (root / "tests" / "goldens.json").read_bytes()
    helped = first_runs(layout)[1]["help"]
    assert "--impl" in helped.stdout and "record" not in helped.stdout.lower()
    tried = in_bundle(root, "-m", "pytest", "--record-goldens")
    assert tried.returncode == 4 and "unrecognized arguments: --record-goldens" in tried.stderr
    assert (root / "tests" / "goldens.json").read_bytes() == goldens


@pytest.mark.slow
def test_the_first_run_on_the_skeleton_is_short(first_runs, layout):
    run = first_runs(layout)[1]["skeleton"]
    lines = run.stdout.splitlines()
    assert run.returncode == 1 and any(line.startswith("Total") for line in lines[-3:])
    checks = int(re.search(r"(\d+) failed", run.stdout).group(1))
    # part 1: 111 lines for 45 checks, part 2: 203 for 87 (each failure is its name and its reason; the score table
    # replaces pytest's second list of the failures)
    assert len(lines) <= min(250, 3 * checks + 30), f"{len(lines)} lines for {checks} checks"
    assert "Traceback" not in run.stdout and "kvchecks/" not in run.stdout  # no frames of the checks' own code


@pytest.mark.slow
def test_the_students_files_never_name_the_reference_folder(first_runs, layout):
    """Students have no reference solution: neither the bundle's files nor the self-check's usage texts point at one."""
    root, runs = first_runs(layout)
    for path in [root / "conftest.py", root / "pytest.ini", *root.glob("README*.md")]:
        text = path.read_text()
        for name in ("`reference`", "--impl reference", "--impl=reference", "reference/"):
            assert name not in text, f"{path.name} names {name}"
    helped = runs["help"]
    assert "reference" not in helped.stdout[helped.stdout.index("--impl"):].split("\n\n")[0]


@pytest.mark.slow
def test_impl_takes_a_folder_with_a_space_in_its_name(tmp_path):
    """The self-check's ``--impl`` (``kvchecks.plugin``, the same in every bundle; that each bundle's takes the
    reference is ``test_student_runs_pytest_in_the_unzipped_bundle``'s)."""
    layout = PART1
    root = unzipped_bundle(tmp_path, layout)
    package = layout.assignment.package
    shutil.copytree(root / "assignments" / package, root / "my work" / package)
    for option in (["--impl", "my work"], ["--impl=my work"], [f"--impl={root / 'my work'}"]):
        run = in_bundle(root, "-m", "pytest", *option)
        assert run.returncode == 1 and "Total" in run.stdout, option  # the skeleton's checks ran (and fail)
    wrong = in_bundle(root, "-m", "pytest", "--impl=no such folder")
    assert wrong.returncode == 4 and "reference" not in wrong.stderr and "no such folder" in wrong.stderr


@pytest.mark.slow
def test_an_endless_loop_ends_in_the_self_check_with_the_score_table(tmp_path):
    root = with_bodies(unzipped_bundle(tmp_path), todo4="todo4_endless_loop")
    started = time.monotonic()
    run = in_bundle(root, "-m", "pytest", timeout=120)
    assert time.monotonic() - started < 120
    lines = run.stdout.splitlines()
    assert lines[-1].startswith("Total") and "timed out after 4 s" in run.stdout
    earned = {int(m.group(1)): (float(m.group(2)), float(m.group(3)))
              for m in (re.match(r"TODO (\d) .*?(\d+) / (\d+)", line) for line in lines) if m}
    assert earned[4][0] == 0 and all(earned[n][0] == earned[n][1] > 0 for n in (1, 2, 3)), earned


def ctrl_c_as_in_a_terminal() -> None:
    """In the student's pytest, before it starts: SIGINT as a shell gives it (the kit tests' process may have come to
    ignore it, which a child inherits; the xdist workers of a whole ``make test`` do)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@pytest.mark.slow
def test_ctrl_c_still_prints_the_score_table(tmp_path):
    root = with_bodies(unzipped_bundle(tmp_path), todo3="todo4_endless_loop")
    proc = subprocess.Popen([sys.executable, "-m", "pytest"], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=ctrl_c_as_in_a_terminal)
    printed: list[str] = []  # read as it comes: torch's import, then the checks of TODOs 1 and 2, then TODO 3's
    reader = threading.Thread(target=lambda: printed.extend(iter(lambda: proc.stdout.read(1), "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120  # however busy the machine
    while "test_todo3" not in "".join(printed) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1)  # inside TODO 3's first check, whose loop runs until its time limit
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    reader.join(timeout=10)
    out = "".join(printed)
    assert "KeyboardInterrupt" in out and "score per TODO" in out
    assert re.search(r"\d+ of the \d+ selected checks did not run \(interrupted\)", out), out[-1500:]

"""The intake matrix: what a student hands in, as a folder, a zip and a notebook, is adversary data.

Each attack is handed in beside a control. What the intake takes in is either
a one-line refusal or exactly the honest code it holds (the package's bytes
equal the honest package's), so it grades as the honest code does; the
end-to-end tests at the bottom grade such classes on every path (``kvkit
grade``, ``grade-all``, Gradescope's ``run_autograder``) and compare the
scores with ``kvkit grade`` of the honest code. nbgrader's own intake is in
``test_nbgrader_intake.py``.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cli_support import kvkit
from kvkit.course.submission import fill_notebook
from kvkit.courses import english
from kvkit.errors import UsageError
from kvkit.examples import write_package
from kvkit.grading.grade import grade
from kvkit.grading.intake import MAX_ZIP_MEMBERS, fingerprint_of, received, take_in
from kvkit.grading.notebooks import read_notebook
from kvkit.registry import ROOT


def stubs(layout) -> dict[str, str]:
    """The skeleton's bodies."""
    return {todo.function: "stub" for todo in layout.assignment.todos.values()}


@pytest.fixture(autouse=True)
def no_hang(request):
    """Nothing the intake reads may block it (a pipe opened for reading waits for a writer): 20 s at most."""
    def hung(*_):
        raise TimeoutError("the intake blocked")
    if request.node.get_closest_marker("slow"):  # the end-to-end test grades a class: its subprocesses time out
        yield
        return
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def files_of(package: Path) -> dict[str, bytes]:
    return {str(p.relative_to(package)): p.read_bytes() for p in sorted(package.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def honest(layout, folder: Path, bodies: dict | None = None) -> Path:
    """``folder/<package>``: ``layout``'s reference (or the given bodies); the package an attack must be graded as."""
    write_package(layout, folder, bodies or {})
    return folder / layout.assignment.package


def refusal(layout, path: Path) -> str:
    """The one line the intake refuses ``path`` with."""
    with pytest.raises(UsageError) as caught, received(layout, path):
        pass
    line = str(caught.value)
    assert "\n" not in line and "Traceback" not in line, line
    return line


def zipped(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink() and "__pycache__" not in path.parts:
                zf.write(path, str(path.relative_to(folder)))
    return archive


def one_line_from_the_command_line(layout, path: Path) -> str:
    run = kvkit(layout, "grade", path)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1 and "Traceback" not in run.stderr, run.stderr[-2000:]
    return lines[0]


# --- links ---------------------------------------------------------------------------------------------------------

def test_a_package_folder_that_is_a_link_to_the_reference_is_refused(tmp_path, layout):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / layout.assignment.package).symlink_to(layout.reference / layout.assignment.package)
    assert "is a symbolic link" in refusal(layout, tmp_path / "sub")
    nested = tmp_path / "copy" / "assignments"  # a copy of the exercise, the package deeper down
    nested.mkdir(parents=True)
    (nested / layout.assignment.package).symlink_to(layout.reference / layout.assignment.package)
    assert "is a symbolic link" in refusal(layout, tmp_path / "copy")
    assert "is a symbolic link" in one_line_from_the_command_line(layout, tmp_path / "sub")


def test_a_submission_path_that_is_a_link_is_refused(tmp_path, layout):
    (tmp_path / "mine").symlink_to(layout.reference)
    assert "is a symbolic link" in refusal(layout, tmp_path / "mine")
    (tmp_path / "mine.zip").symlink_to(zipped(layout.reference, tmp_path / "real.zip"))
    assert "is a symbolic link" in refusal(layout, tmp_path / "mine.zip")
    (tmp_path / "mine.ipynb").symlink_to(english(layout).source_notebook)
    assert "is a symbolic link" in refusal(layout, tmp_path / "mine.ipynb")


def test_a_link_inside_the_package_is_refused_in_a_folder_and_in_a_zip(tmp_path, layout):
    package = honest(layout, tmp_path / "folder", stubs(layout))
    (package / "solution.py").symlink_to(layout.reference / layout.assignment.package / "__init__.py")
    assert "symbolic link" in refusal(layout, tmp_path / "folder")
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"{layout.assignment.package}/__init__.py", "")
        info = zipfile.ZipInfo(f"{layout.assignment.package}/cache.py")
        info.external_attr = (0o120777) << 16
        zf.writestr(info, str(layout.reference / layout.assignment.package / "__init__.py"))
    assert "symbolic link" in refusal(layout, archive)


def test_links_pipes_and_sockets_beside_the_package_are_left_out_with_a_note(tmp_path, layout):
    package = honest(layout, tmp_path / "sub")
    (tmp_path / "sub" / "answers.py").symlink_to(layout.reference / layout.assignment.package / "__init__.py")
    (tmp_path / "sub" / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / "sub" / "pipe")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "sub" / "sock"))
    try:
        with received(layout, tmp_path / "sub") as taken:
            assert files_of(taken.package) == files_of(package)
            notes = "\n".join(taken.notes)
    finally:
        server.close()
    for name, kind in (("answers.py", "symbolic link"), ("dangling", "symbolic link"), ("pipe", "pipe"),
                       ("sock", "socket")):
        assert f"Left out '{name}': it is a {kind}" in notes


# --- special files and sizes ---------------------------------------------------------------------------------------

def test_a_pipe_or_socket_inside_the_package_is_refused_without_blocking(tmp_path, layout):
    package = honest(layout, tmp_path / "pipe")
    os.mkfifo(package / "model_weights.py")
    assert "is a pipe (FIFO): submit plain files only" in refusal(layout, tmp_path / "pipe")
    package = honest(layout, tmp_path / "sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(package / "s.py"))
    try:
        assert "is a socket" in refusal(layout, tmp_path / "sock")
    finally:
        server.close()
    os.mkfifo(tmp_path / "handed_in.ipynb")
    assert "is a pipe (FIFO)" in refusal(layout, tmp_path / "handed_in.ipynb")


def test_a_hard_link_in_the_package_is_refused(tmp_path, layout):
    """Where the kernel does not protect hard links, one can name a file its maker cannot read (the reference)."""
    package = honest(layout, tmp_path / "sub", stubs(layout))
    solution = tmp_path / "elsewhere.py"
    solution.write_text((layout.reference / layout.assignment.package / "__init__.py").read_text())
    (package / "solution.py").hardlink_to(solution)
    assert "hard links" in refusal(layout, tmp_path / "sub")
    notebook = tmp_path / "mine.ipynb"
    notebook.write_text(english(layout).source_notebook.read_text())  # say, a classmate's under a second name
    (tmp_path / "classmate.ipynb").hardlink_to(notebook)
    assert "hard links" in refusal(layout, notebook)


def test_a_huge_sparse_file_beside_the_package_is_never_read(tmp_path, layout):
    package = honest(layout, tmp_path / "sub")
    with open(tmp_path / "sub" / "dataset.bin", "wb") as f:
        f.truncate(6 * 1024 ** 3)  # 6 GB, no disk used; reading it whole would exhaust the memory
    with received(layout, tmp_path / "sub") as taken:
        assert files_of(taken.package) == files_of(package)
    with open(package / "weights.bin", "wb") as f:
        f.truncate(6 * 1024 ** 3)
    assert "holds more than" in refusal(layout, tmp_path / "sub")


def test_names_that_are_not_utf8_are_refused_inside_and_left_out_beside(tmp_path, layout):
    package = honest(layout, tmp_path / "sub")
    weird = os.fsdecode(b"\xff\xfe notes")
    (tmp_path / "sub" / weird).write_text("x")
    with received(layout, tmp_path / "sub") as taken:
        assert files_of(taken.package) == files_of(package)
        assert any("not valid UTF-8" in note and "\\xff\\xfe notes" in note for note in taken.notes)
    (package / os.fsdecode(b"\xff.py")).write_text("x = 1\n")
    line = refusal(layout, tmp_path / "sub")
    assert "is not valid" in line and "rename it" in line
    line.encode("utf-8")  # printable: no lone surrogates from the raw name


# --- zips ----------------------------------------------------------------------------------------------------------

def _zip(tmp_path: Path, entries: list[tuple[str, bytes]], name: str = "evil.zip") -> Path:
    archive = tmp_path / name
    with zipfile.ZipFile(archive, "w") as zf:
        for entry, data in entries:
            zf.writestr(entry, data)
    return archive


def test_an_encrypted_zip_is_one_line(tmp_path, layout):
    archive = _zip(tmp_path, [(f"{layout.assignment.package}/__init__.py", b"x = 1\n")])
    data = bytearray(archive.read_bytes())
    data[6] |= 1  # the local header's and the central directory's "encrypted" flag, as zip -e sets them
    central = data.find(b"PK\x01\x02")
    data[central + 8] |= 1
    archive.write_bytes(bytes(data))
    assert "is encrypted" in refusal(layout, archive)
    assert "is encrypted" in one_line_from_the_command_line(layout, archive)


@pytest.mark.parametrize("entries, words", [
    ([("{package}/cache.py", b"a"), ("{package}/cache.py/inner.py", b"b")], "both as a file and as a folder"),
    ([("{package}/__init__.py", b""), ("{package}/__init__.py", b"import os")], "twice"),
    ([("{package}/__init__.py", b""), ("{package}/" + "a" * 300 + ".py", b"")], "over 255 bytes"),
], ids=["file-and-folder", "duplicate", "300-byte-name"])
def test_zip_entries_that_clash_or_cannot_be_written_are_one_line(tmp_path, entries, words, layout):
    entries = [(name.format(package=layout.assignment.package), data) for name, data in entries]
    with pytest.warns(UserWarning) if words == "twice" else _nothing():
        archive = _zip(tmp_path, entries)
    assert words in refusal(layout, archive)


def test_a_zip_entry_with_an_empty_name_is_one_line(tmp_path, layout):
    archive = _zip(tmp_path, [(f"{layout.assignment.package}/__init__.py", b""), ("placeholder", b"x")])
    data = archive.read_bytes().replace(b"placeholder", b"./././././.")  # a name of dots only: empty
    archive.write_bytes(data)
    assert "empty name" in refusal(layout, archive)


def test_a_zip_with_too_many_entries_names_the_limit(tmp_path, layout):
    archive = _zip(tmp_path, [(f"{layout.assignment.package}/f{i}.py", b"") for i in range(MAX_ZIP_MEMBERS + 1)])
    assert f"over the limit of {MAX_ZIP_MEMBERS}" in refusal(layout, archive)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# --- notebooks -----------------------------------------------------------------------------------------------------

def _answer_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("solution")]


def _solved(layout, tmp_path: Path) -> dict:
    """The release notebook with every answer cell solved (the reference's code)."""
    return read_notebook(fill_notebook(layout, english(layout).release_notebook, tmp_path / "solved.ipynb", {}))


def _take(layout, tmp_path: Path, nb: dict, name: str):
    path = tmp_path / f"{name}.ipynb"
    path.write_text(json.dumps(nb))
    return take_in(layout, path, tmp_path / f"{name}-scratch")


def _stub_package(layout, tmp_path: Path) -> Path:
    """The package the untouched release notebook gives: every answer cell its stub."""
    release = read_notebook(english(layout).release_notebook)
    return take_in(layout, _write(tmp_path / "release.ipynb", release), tmp_path / "release-scratch").package


def _write(path: Path, nb: dict) -> Path:
    path.write_text(json.dumps(nb))
    return path


@pytest.mark.parametrize("damage", ["deleted", "untagged", "renamed", "duplicated", "retyped"])
def test_damaged_answer_cells_count_as_the_releases_stubs_never_the_solution(tmp_path, damage, layout):
    """The answer cells of the release, damaged: the grader's template is the release, which holds no solution."""
    nb = read_notebook(english(layout).release_notebook)
    cells = _answer_cells(nb)
    for cell in cells:
        if damage == "deleted":
            nb["cells"].remove(cell)
        elif damage == "untagged":
            del cell["metadata"]["nbgrader"]
        elif damage == "renamed":
            cell["metadata"]["nbgrader"]["grade_id"] += "-mine"
        elif damage == "duplicated":
            nb["cells"].append(json.loads(json.dumps(cell)))
        elif damage == "retyped":
            cell["cell_type"] = "markdown"
    taken = _take(layout, tmp_path, nb, damage)
    stub_package = _stub_package(layout, tmp_path)
    assert files_of(taken.package) == files_of(stub_package)
    assert len(taken.notes) >= 1 and all("graded as unanswered" in n or "more note" in n for n in taken.notes)


def test_solved_cells_damaged_the_same_ways_lose_exactly_that_cells_code(tmp_path, layout):
    """The same damage to one solved cell: that cell counts as its stub, every other cell keeps the student's code."""
    solved = _solved(layout, tmp_path)
    first = _answer_cells(solved)[0]
    grade_id = first["metadata"]["nbgrader"]["grade_id"]
    damaged = json.loads(json.dumps(solved))
    damaged["cells"] = [c for c in damaged["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                        != grade_id]
    taken = _take(layout, tmp_path, damaged, "one-deleted")
    release = {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"]) for c in _answer_cells(
        read_notebook(english(layout).release_notebook))}
    text = "".join(taken.package.joinpath(m).read_text() for m in layout.assignment.modules)
    assert release[grade_id].strip() in text  # the stub, never the solution
    assert len(taken.notes) == 1 and "missing" in taken.notes[0]


def test_reordered_answer_cells_keep_the_students_code(tmp_path, layout):
    solved = _solved(layout, tmp_path)
    reordered = json.loads(json.dumps(solved))
    reordered["cells"] = list(reversed(reordered["cells"]))
    assert files_of(_take(layout, tmp_path, reordered, "reordered").package) == \
        files_of(_take(layout, tmp_path, solved, "solved").package)


def test_the_students_notebook_metadata_decides_nothing(tmp_path, layout):
    """A layout or cell list in the student's metadata, or locked cells edited, change nothing."""
    solved = _solved(layout, tmp_path)
    tampered = json.loads(json.dumps(read_notebook(english(layout).release_notebook)))
    tampered["metadata"]["kvkit"]["package"] = {"__init__.py": "from .solution import *\n"}
    for cell in tampered["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("locked"):
            cell["source"] = "raise SystemExit\n"
    assert files_of(_take(layout, tmp_path, tampered, "tampered").package) == files_of(_stub_package(layout, tmp_path))
    assert _take(layout, tmp_path, solved, "again").places  # the places come from the release's layout


@pytest.mark.parametrize("text", ["{ not json", "[]", '{"cells": 3}', "[" * 100_000 + "]" * 100_000, "\udcff"],
                         ids=["broken", "list", "cells-not-a-list", "deep", "not-utf8"])
def test_a_notebook_that_is_no_notebook_is_one_line(tmp_path, text, layout):
    path = tmp_path / "mine.ipynb"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    assert "notebook" in refusal(layout, path)


def test_a_places_file_beside_the_package_is_ignored(tmp_path, layout):
    """notebook-cells.json was once read back by the grader: now places travel with the submission only."""
    package = honest(layout, tmp_path / "sub", stubs(layout))
    (tmp_path / "sub" / "notebook-cells.json").write_text("{ broken")
    with received(layout, tmp_path / "sub") as taken:
        assert taken.places == {} and files_of(taken.package) == files_of(package)


# --- what is graded is what was fingerprinted ------------------------------------------------------------------------

@pytest.mark.slow
def test_what_is_graded_is_the_copy_that_was_fingerprinted(tmp_path, layout):
    honest(layout, tmp_path / "sub")
    taken = take_in(layout, tmp_path / "sub", tmp_path / "scratch")
    assert taken.fingerprint == fingerprint_of(taken.folder, taken.places)
    write_package(layout, tmp_path / "sub", stubs(layout))  # changed after it was taken in
    report = grade(layout, taken, hidden=False)
    assert report.score == report.max_score > 0
    assert take_in(layout, tmp_path / "sub", tmp_path / "again").fingerprint != taken.fingerprint


# --- every path, end to end ----------------------------------------------------------------------------------------

@pytest.mark.slow
def test_every_path_grades_the_attacks_as_their_code_deserves(tmp_path, graded, layout):
    """One class of attacks beside controls: ``grade-all`` grades every control as ``kvkit grade`` does, refuses
    every attack in one line, and writes the CSV for everyone; Gradescope's runner refuses the linked package."""
    full = graded(layout, "reference").score
    zero = graded(layout, "assignments").score
    klass = tmp_path / "class"
    honest(layout, klass / "ada")
    honest(layout, klass / "bert", stubs(layout))
    (klass / "eve").mkdir()
    package = layout.assignment.package
    (klass / "eve" / package).symlink_to(layout.reference / package)  # the link to the kit's own reference
    (klass / "link-entry").symlink_to(klass / "ada")
    os.mkfifo(klass / "pipe.zip")
    (klass / os.fsdecode(b"\xffname")).mkdir()
    honest(layout, klass / "gina")
    with open(klass / "gina" / "huge.bin", "wb") as f:
        f.truncate(6 * 1024 ** 3)
    honest(layout, klass / "hugo")
    (klass / "hugo.zip").write_bytes(b"")  # two entries for one student
    nb = read_notebook(english(layout).release_notebook)
    nb["cells"] = [c for c in nb["cells"] if c not in _answer_cells(nb)]
    _write(klass / "ivan.ipynb", nb)  # every answer cell deleted
    (klass / "readme.txt").write_text("not a submission")
    out = tmp_path / "grades.csv"
    run = kvkit(layout, "grade-all", klass, "--out", out, "--jobs", "2", "--no-progress")
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert "skipped 1 entries" in run.stdout and "readme.txt" in run.stdout
    with open(out, newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert float(rows["ada"]["score"]) == full == float(rows["gina"]["score"])
    assert float(rows["bert"]["score"]) == zero == float(rows["ivan"]["score"])
    for student, words in (("eve", "symbolic link"), ("link-entry", "symbolic link"), ("pipe", "pipe"),
                           ("\\xffname", "not valid UTF-8"), ("hugo", "2 submissions for hugo")):
        assert rows[student]["status"] == "not graded" and words in rows[student]["notes"], (student, rows[student])

    root = tmp_path / "gradescope"
    (root / "submission").mkdir(parents=True)
    (root / "submission" / package).symlink_to(layout.reference / package)
    env = {**os.environ, "KVKIT_GRADESCOPE_ROOT": str(root)}
    run = subprocess.run([sys.executable, "-m", "kvkit.grading.gradescope", "run", "--root", str(root), "--assignment",
                          layout.assignment.name], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    results = json.loads((root / "results" / "results.json").read_text())
    assert run.returncode == 0 and results["score"] == 0 and "symbolic link" in results["output"], run.stderr[-2000:]

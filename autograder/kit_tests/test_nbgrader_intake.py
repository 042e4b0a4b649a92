"""Everything a student hands in is an adversary's data, under real ``nbgrader autograde`` (nbgrader 0.9.6, its SQLite
gradebook, a real kernel).

One course of part 1 (``kv_cache``) is autograded once with real nbgrader, hostile students beside controls in the same
run:

- links beside the notebook (to the source notebook, ``gradebook.db``, a file of ``reference/``, the hidden checks,
  a classmate's notebook, one inside the ``tests/`` folder the kernel's support files come from), a named pipe, a
  device, a hard link, an oversized file and a name that is not UTF-8: none is copied, each is one line of the log,
  nothing of them reaches the kernel, the autograded folder or notebook, or the feedback; the student keeps the
  grade of their code;
- a notebook that is a link to a classmate's, or sits in a folder that is one: refused in one line, 0;
- answer cells deleted or stripped of their nbgrader metadata count as the release's stubs (0), never the solution;
  of a notebook only its cells' types, sources and grade ids are read: nbgrader metadata, cell ids, outputs and
  the kernelspec edited by hand neither stop the class's run nor move a score
  (also in ``kv_cache_ja`` and ``kv_serving``, whose classes ``nbgrader_support`` builds once per session);
  one deleted answer cell of the reference scores what ``kvkit grade`` gives the same notebook;
- the kernel's own stdout and stderr reach the log only quoted; a 30 MB line is cut to the cell's bound, with a note;
- a student cell holding the hidden-test marker text (twice, and unbalanced) does not stop ``generate_feedback``;

and the controls keep their scores: the reference full marks, the partial code what ``kvkit grade`` gives it; so does
every course's class (every assignment, every edition). Without confinement, the kernel's warning is logged:
``test_nbgrader_e2e.py``'s unconfined run checks it.
"""

from __future__ import annotations

import ast
import html
import json
import logging
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from kvkit.course.folders import NBGRADER_CONFIG, ensure_kernel, write_support
from kvkit.course.submission import fill_notebook
from kvkit.course.template import notebook_points
from kvkit.courses import course_named, courses_of
from kvkit.examples import example_texts
from kvkit.grading.notebooks import read_notebook
from kvkit.paths import Layout
from kvkit.registry import ROOT
from layouts_support import LAYOUTS, NEEDS_NBGRADER, PART1
from nbgrader_support import (cell_source, class_group, delete_answers, edited, is_answer, nbgrader_ok, run_nbgrader,
                              untag_answers)
from nbgrader_support import submission as shared_submission

pytestmark = NEEDS_NBGRADER

# the students below are part 1's code (part 2's and the editions' come with it)
HIDDEN_TESTS, REFERENCE, PACKAGE = PART1.hidden_tests, PART1.reference, PART1.assignment.package
PARTIAL = example_texts(PART1, "partial")
COURSE_ID = re.search(r'course_id = "([^"]+)"', NBGRADER_CONFIG.read_text()).group(1)
FAKE_LINE = "kvkit grade of c_partial: 115 / 115"  # a line the kernel prints, as if it were the kit's
BIG_LINE = 30_000_000  # bytes of one printed line
SECRETS = ["SQLite format 3", "BEGIN SOLUTION", "run_hidden", "goldens="]  # gradebook.db, source/, reference/, hidden
# every course of every assignment: its class (nbgrader_support), read by the tests of the assignment's xdist group
COURSES = [pytest.param(layout, course, id=course.name, marks=pytest.mark.xdist_group(class_group(layout)))
           for layout in LAYOUTS for course in courses_of(layout)]


def code_cell(source: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}


KERNEL_LOOKS = (
    "import os\n"
    "_seen = sorted(os.path.join(d, f) for d, _, fs in os.walk('.') for f in fs)\n"
    "print('KERNEL-SEES', _seen)\n"
    "print('KERNEL-READS', [open(p, 'rb').read(64) for p in _seen if 'sneak' in p or 'secret' in p])\n")


def submission(course: Path, student: str, assignment: str = "kv_cache") -> Path:
    return shared_submission(course, student, assignment)


def write_kv_cache(course: Path, kit: Path, scratch: Path) -> dict[str, Path]:
    release = course / "release" / "kv_cache" / "kv_cache.ipynb"
    made = {}
    made["c_reference"] = fill_notebook(PART1, release, submission(course, "c_reference"), {})
    made["c_partial"] = fill_notebook(PART1, release, submission(course, "c_partial"), PARTIAL)

    # links of every kind beside a notebook of partial code; its extra cell lists what the kernel sees
    notebook = fill_notebook(PART1, release, submission(course, "l_links"), PARTIAL)
    nb = read_notebook(notebook)
    nb["cells"].append(code_cell(KERNEL_LOOKS))
    notebook.write_text(json.dumps(nb, indent=1))
    folder = notebook.parent
    hidden_file = sorted(HIDDEN_TESTS.glob("test_*.py"))[0]
    (folder / "source_secret.txt").symlink_to(course / "source" / "kv_cache" / "kv_cache.ipynb")
    (folder / "gradebook.db").symlink_to(course / "gradebook.db")
    (folder / "reference_secret.py").symlink_to(REFERENCE / PACKAGE / "cache.py")
    (folder / "hidden_secret").symlink_to(HIDDEN_TESTS, target_is_directory=True)
    (folder / "classmate_secret.txt").symlink_to(made["c_reference"])
    (folder / "tests").mkdir()  # merges with the course's tests/, which the kernel gets
    (folder / "tests" / "test_sneak.py").symlink_to(hidden_file)
    (folder / "tests" / "sneak_gradebook.db").symlink_to(course / "gradebook.db")
    (folder / "notes.txt").write_text("my own notes\n")  # a plain file: copied
    (folder / "timestamp.txt").symlink_to(course / "gradebook.db")  # nbgrader reads it itself

    # a named pipe, a device, a hard link, an oversized (sparse) file and a name that is not UTF-8
    notebook = fill_notebook(PART1, release, submission(course, "l_specials"), PARTIAL)
    folder = notebook.parent
    os.mkfifo(folder / "pipe")
    (folder / "null").symlink_to("/dev/null")
    os.link(course / "gradebook.db", folder / "hard.db")
    with open(folder / "big.bin", "wb") as f:
        f.truncate(30 * 1000 * 1000)
    (folder / "data").mkdir()
    with open(os.path.join(os.fsencode(folder / "data"), b"bad\xff.txt"), "wb") as f:
        f.write(b"x")

    # the notebook itself a link to a classmate's, and a student folder that is a link to a classmate's
    target = course / "submitted" / "n_notebook_link" / "kv_cache" / "kv_cache.ipynb"
    target.parent.mkdir(parents=True)
    target.symlink_to(made["c_reference"])
    (course / "submitted" / "n_folder_link").mkdir()
    (course / "submitted" / "n_folder_link" / "kv_cache").symlink_to(made["c_reference"].parent,
                                                                     target_is_directory=True)

    # answer cells deleted, untagged, one deleted from the reference
    made["a_deleted"] = edited(release, submission(course, "a_deleted"), delete_answers)
    made["a_untagged"] = edited(release, submission(course, "a_untagged"), untag_answers)
    full = fill_notebook(PART1, release, scratch / "full.ipynb", {})
    made["a_one_deleted"] = edited(full, submission(course, "a_one_deleted"), lambda nb: delete_answers(
        nb, keep=lambda c: c["metadata"]["nbgrader"]["grade_id"] != "generate_transformergenerator"))

    # the notebook edited by hand around the reference's code: claims in the test cells' nbgrader metadata, metadata
    # that is no mapping, cell ids invalid and repeated, outputs and a kernelspec nbformat rejects, odd attachments
    def claims(nb):
        tests = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade") and not is_answer(c)]
        tests[0]["metadata"]["nbgrader"]["points"] = "lots"
        tests[1]["metadata"]["nbgrader"]["schema_version"] = 99
        del tests[2]["metadata"]["nbgrader"]["grade_id"]
        tests[3].update(cell_type="markdown")
        tests[3].pop("outputs", None)
        tests[3].pop("execution_count", None)
        tests[4]["metadata"] = "not a mapping"
        for number, cell in enumerate(nb["cells"]):
            cell["id"] = "same" if number % 2 else "not/a valid*id"
            if cell["cell_type"] == "code":
                cell.update(outputs=[{"output_type": "forged", "text": "passed"}], execution_count="many")
            else:
                cell["attachments"] = {"x.png": {"image/png": 123}}
        nb["metadata"] = {"kernelspec": {"name": "../../bin/sh", "display_name": 1}, "nbgrader": "not a mapping"}
        nb["nbformat_minor"] = 99
    made["m_claims"] = edited(full, submission(course, "m_claims"), claims)

    # points claimed beside the skeleton's code
    def points(nb):
        for cell in nb["cells"]:
            if cell["metadata"].get("nbgrader", {}).get("grade"):
                cell["metadata"]["nbgrader"]["points"] = 1000
    made["m_points"] = edited(release, submission(course, "m_points"), points)

    # beside the reference's code: one answer cell's nbgrader metadata no mapping, another answer cell copied
    def answer_claims(nb):
        answers = [(i, c) for i, c in enumerate(nb["cells"]) if is_answer(c)]
        answers[0][1]["metadata"]["nbgrader"] = "not a mapping"
        index, cell = answers[1]
        nb["cells"].insert(index + 1, dict(json.loads(json.dumps(cell)), id="a-copy"))
    made["m_answer_claims"] = edited(full, submission(course, "m_answer_claims"), answer_claims)

    # what the kernel prints: raw to its stdout and stderr, one 30 MB line
    def loud(nb):
        nb["cells"].append(code_cell(f"import os\nos.write(1, b'\\n{FAKE_LINE}\\n')\n"
                                     f"os.write(2, b'\\r{FAKE_LINE}\\n')"))
        nb["cells"].append(code_cell(f"print('x' * {BIG_LINE})"))
    made["o_outputs"] = edited(full, submission(course, "o_outputs"), loud)

    # the hidden-test markers in the student's own cells: twice in one, unbalanced in another
    def markers(nb):
        answers = [c for c in nb["cells"] if is_answer(c)]
        answers[0]["source"] = cell_source(answers[0]) + "\n# ### BEGIN HIDDEN TESTS\n# ### BEGIN HIDDEN TESTS\n"
        answers[1]["source"] = cell_source(answers[1]) + "\n# ### END HIDDEN TESTS\n"
    made["f_markers"] = edited(full, submission(course, "f_markers"), markers)
    return made


def gradebook_scores(course: Path, assignment: str, students: list[str]) -> dict[str, tuple[float, float]]:
    from nbgrader.api import Gradebook, MissingEntry

    scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gb:
        for student in students:
            try:
                found = gb.find_submission(assignment, student)
            except MissingEntry:
                continue
            scores[student] = (found.score, found.max_score)
    return scores


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """One course of part 1 with the hostile students beside controls, autograded once; the tests read what it left
    behind."""
    ensure_kernel()
    root = tmp_path_factory.mktemp("intake") / "course"
    scratch = tmp_path_factory.mktemp("intake-scratch")
    shutil.copytree(ROOT / "source" / "kv_cache", root / "source" / "kv_cache")
    write_support(PART1, root / "source" / "kv_cache")
    shutil.copyfile(NBGRADER_CONFIG, root / "nbgrader_config.py")
    nbgrader_ok(root, "generate_assignment", "kv_cache", "--force")
    made = write_kv_cache(root, ROOT, scratch)

    runs, seconds = {}, {}
    for name in ("kv_cache",):
        started = time.perf_counter()
        runs[name] = run_nbgrader(root, "autograde", name, "--force")
        seconds[name] = time.perf_counter() - started
        (root / f"autograde-{name}.log").write_text(runs[name].stdout + runs[name].stderr)
        print(f"\nnbgrader autograde {name}: {seconds[name]:.1f} s, exit {runs[name].returncode}")
    feedback = run_nbgrader(root, "generate_feedback", "kv_cache", "--force")
    students = sorted(p.name for p in (root / "submitted").iterdir())
    scores = {name: gradebook_scores(root, name, students) for name in runs}
    for name, table in scores.items():
        for student, (score, out_of) in sorted(table.items()):
            print(f"  {name:<12} {student:<18} {score:g} / {out_of:g}")
    full = {name: (points, points) for name in runs
            for points in [notebook_points(read_notebook(root / "release" / name / f"{name}.ipynb"))]}
    return {"root": root, "made": made, "runs": runs, "seconds": seconds, "scores": scores, "feedback": feedback,
            "full": full,
            "log": {name: run.stdout + run.stderr for name, run in runs.items()}}


def autograded(course, student: str, assignment: str = "kv_cache") -> Path:
    return course["root"] / "autograded" / student / assignment


def outputs_text(nb: dict) -> str:
    """Every output's text; a cell's streams joined as printed (the kernel may send one print in several parts)."""
    parts = []
    for cell in nb["cells"]:
        outputs = cell.get("outputs", [])
        parts.append("".join("".join(o.get("text", "")) for o in outputs if o.get("output_type") == "stream"))
        parts += [json.dumps(o.get("data", {})) + "\n".join(o.get("traceback", []))
                  for o in outputs if o.get("output_type") != "stream"]
    return "\n".join(parts)


def feedback_html(course, student: str) -> str:
    return (course["root"] / "feedback" / student / "kv_cache" / "kv_cache.html").read_text()


@pytest.fixture(scope="module")
def kvkit_grade(tmp_path_factory):
    """``kvkit grade`` of a notebook (the kit's release gives the layout): its report."""
    from kvkit.grading.grade import grade

    return lambda notebook: grade(PART1, Path(notebook))


@pytest.mark.slow
@pytest.mark.xdist_group("nbgrader-intake")
def test_every_run_finishes_without_a_traceback(course):
    for name, log in course["log"].items():
        assert course["runs"][name].returncode == 0, f"{name}:\n{log[-3000:]}"
        assert "Traceback" not in log, f"{name}:\n{log[-3000:]}"
    assert course["feedback"].returncode == 0, course["feedback"].stdout[-2000:] + course["feedback"].stderr[-3000:]


@pytest.mark.slow
@pytest.mark.xdist_group("nbgrader-intake")
def test_controls_keep_their_scores(course, graded):
    total = notebook_points(read_notebook(course["root"] / "release" / "kv_cache" / "kv_cache.ipynb"))
    scores = course["scores"]
    assert scores["kv_cache"]["c_reference"] == (total, total) == course["full"]["kv_cache"]
    assert scores["kv_cache"]["c_partial"] == (graded(PART1, "partial").score, total)
    assert 0 < scores["kv_cache"]["c_partial"][0] < total


@pytest.mark.slow
@pytest.mark.parametrize("layout,course", COURSES)
def test_every_courses_class_autogrades_cleanly_to_kvkit_grades_scores(nbgrader_class, graded, layout, course):
    """Each course (every assignment, every edition) autograded by real nbgrader: no traceback, the reference full
    marks, the untouched release 0, the partial code what ``kvkit grade`` gives it."""
    done = nbgrader_class(course)
    assert "Traceback" not in done.log, done.log[-3000:]
    assert done.scores["s1_reference"] == (done.full, done.full) and done.full > 0
    assert done.scores["s2_untouched"] == (0, done.full)
    assert done.scores["s3_partial"] == (graded(layout, "partial").score, done.full)


@pytest.mark.slow
@pytest.mark.parametrize("layout,course", COURSES)
def test_the_demos_that_nbgrader_execution_guards_are_skipped_while_grading(nbgrader_class, layout, course):
    """nbgrader sets ``NBGRADER_EXECUTION=autograde`` for the notebook it autogrades; the confined kernel gets it too
    (its environment is otherwise the sandbox's), so each demo cell that checks it printed its one line and ran
    nothing more (part 1's timing, parts 2 and 3's demos)."""
    guarded = [c for c in nbgrader_class(course).notebook("s1_reference")["cells"]
               if "NBGRADER_EXECUTION" in cell_source(c)]
    assert guarded
    for cell in guarded:
        note = re.search(r'NBGRADER_EXECUTION"\) == "autograde":\n\s+print\("([^"]+)"\)', cell_source(cell)).group(1)
        printed = "".join("".join(o.get("text", "")) for o in cell.get("outputs", []))
        assert printed == note + "\n", (course.name, printed[:500])


@pytest.mark.slow
@pytest.mark.xdist_group("nbgrader-intake")
def test_links_and_special_files_beside_the_notebook_are_not_copied(course):
    """Only plain files are copied from a submitted folder; every link, pipe, device, hard link, oversized file and
    name that is not UTF-8 is one line of the log, and the student keeps the grade of their code."""
    source = course["root"] / "source" / "kv_cache"
    course_files = {p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file()} - {"kv_cache.ipynb"}
    log = course["log"]["kv_cache"]
    for student, own in (("l_links", {"notes.txt"}), ("l_specials", set())):
        folder = autograded(course, student)
        found = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink()}
        assert found == course_files | own | {"kv_cache.ipynb"}, sorted(found - course_files)
        for path in folder.rglob("*"):
            assert not path.is_symlink(), path
            if path.is_file():
                data = path.read_bytes()
                assert not any(secret.encode() in data for secret in SECRETS[:1]), path
        assert course["scores"]["kv_cache"][student] == course["scores"]["kv_cache"]["c_partial"], student
    assert re.search(r"timestamp.txt ignored: a symbolic link", log)
    for name, why in (("gradebook.db", "a symbolic link"), ("hidden_secret", "a symbolic link"),
                      ("tests/test_sneak.py", "a symbolic link"), ("classmate_secret.txt", "a symbolic link"),
                      ("source_secret.txt", "a symbolic link"), ("reference_secret.py", "a symbolic link")):
        assert re.search(rf"not copied from l_links's submitted folder: {re.escape(name)}: {why}", log), name
    for name, why in (("pipe", "a named pipe"), ("null", "a symbolic link"), ("hard.db", "2 hard links"),
                      ("big.bin", "30000000 bytes, over the limit of 20000000"),
                      ("data/bad\\udcff.txt", "not valid UTF-8")):
        assert re.search(rf"not copied from l_specials's submitted folder: {re.escape(name)}: [^\n]*{why}", log), name


@pytest.mark.slow
@pytest.mark.xdist_group("nbgrader-intake")
def test_nothing_a_link_points_at_reaches_the_kernel_the_notebook_or_the_feedback(course):
    nb = read_notebook(autograded(course, "l_links") / "kv_cache.ipynb")
    printed = outputs_text(nb)
    assert "KERNEL-SEES" in printed and "test_todo1_cache.py" in printed  # the course's own tests/ are there ...
    assert "sneak" not in printed and "KERNEL-READS []" in printed, printed[-2000:]  # ... the student's links not
    for secret in SECRETS:
        assert secret not in printed, secret
    nbgrader_ok(course["root"], "generate_feedback", "kv_cache", "--force", "--student", "l_links")
    html = feedback_html(course, "l_links")
    for secret in SECRETS:
        assert secret not in html, secret


@pytest.mark.slow
@pytest.mark.xdist_group("nbgrader-intake")
def test_the_kernels_support_files_come_from_the_course(course):
    """The kernel's ``tests/`` is the course's (generated by ``kvkit notebook``), not the student's copy of it."""
    printed = outputs_text(read_notebook(autograded(course, "l_links") / "kv_cache.ipynb"))
    seen = re.search(r"KERNEL-SEES (\[.*?\])", printed).group(1)
    source = course["root"] / "source" / "kv_cache"
    expected = sorted(f"./{p.relative_to(source).as_posix()}" for p in (source / "tests").rglob("*")
                      if p.is_file() and "__pycache__" not in p.parts)
    assert [p for p in ast.literal_eval(seen) if p.startswith("./tests/") and "__pycache__" not in p] == expected


@pytest.mark.slow
@pytest.mark.xdist_group("nbgrader-intake")
@pytest.mark.parametrize("student", ["n_notebook_link", "n_folder_link"])
def test_a_linked_notebook_is_refused_in_one_line_and_scores_zero(course, student):
    log = course["log"]["kv_cache"]
    total = course["full"]["kv_cache"][1]
    assert course["scores"]["kv_cache"][student] == (0, total)
    lines = [line for line in log.splitlines() if f"{student}'s kv_cache.ipynb refused" in line]
    assert len(lines) == 1 and "symbolic link" in lines[0], lines
    assert f"kvkit grade of {student}: 0 / {total:g}" in log
    nb = read_notebook(autograded(course, student) / "kv_cache.ipynb")
    assert "refused" in outputs_text(nb)
    assert course["scores"]["kv_cache"]["c_reference"] == course["full"]["kv_cache"]  # the classmate keeps theirs


@pytest.mark.slow
@pytest.mark.xdist_group("nbgrader-intake")
def test_deleted_or_untagged_answer_cells_count_as_the_release_stubs(course):
    scores = course["scores"]
    zero = {name: (0, full[1]) for name, full in course["full"].items()}
    assert scores["kv_cache"]["a_deleted"] == zero["kv_cache"]
    assert scores["kv_cache"]["a_untagged"] == zero["kv_cache"]


@pytest.mark.slow
@pytest.mark.xdist_group("nbgrader-intake")
def test_a_notebook_edited_by_hand_is_graded_by_its_code_and_stops_no_class(course, kvkit_grade):
    """Of a submitted notebook only its cells' types, sources and grade ids are read: nbgrader metadata claimed by hand
    (points, schema versions, cell types), metadata that is no mapping, invalid or repeated cell ids, forged outputs,
    a kernelspec and attachments nbformat rejects neither crash the class's run
    (``test_every_run_finishes_without_a_traceback``) nor move a score; an answer cell whose metadata is no mapping,
    or that is there twice, counts as its stub, as ``kvkit grade`` says."""
    scores, (total, _) = course["scores"]["kv_cache"], course["full"]["kv_cache"]
    assert scores["m_claims"] == (total, total) == (kvkit_grade(course["made"]["m_claims"]).score, total)
    assert scores["m_points"] == (0, total) == (kvkit_grade(course["made"]["m_points"]).score, total)
    report = kvkit_grade(course["made"]["m_answer_claims"])
    assert scores["m_answer_claims"] == (report.score, report.max_score) and 0 < report.score < total
    assert "2 times" in " ".join(report.notes)
    log = course["log"]["kv_cache"]
    for student in ("m_claims", "m_answer_claims"):
        assert re.search(rf"kvkit: {student}'s kv_cache\.ipynb: cell [\d, ]+ carries nbgrader metadata that is no "
                         r"cell's of the release", log), log[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("layout,course,student", [
    pytest.param(Layout.named("kv_cache"), course_named("kv_cache_ja"), "ja_untagged", id="kv_cache_ja-untagged",
                 marks=pytest.mark.xdist_group(class_group(Layout.named("kv_cache")))),
    pytest.param(Layout.named("kv_serving"), course_named("kv_serving"), "s_todo6_deleted", id="kv_serving-deleted",
                 marks=pytest.mark.xdist_group(class_group(Layout.named("kv_serving"))))])
def test_deleted_or_untagged_answer_cells_count_as_the_release_stubs_in_other_courses(nbgrader_class, layout, course,
                                                                                     student):
    """The same in an edition and in part 2 (their classes: ``nbgrader_support.EXTRAS``)."""
    done = nbgrader_class(course)
    assert done.scores[student] == (0, done.full) and done.full > 0


@pytest.mark.slow
@pytest.mark.xdist_group("nbgrader-intake")
def test_one_deleted_answer_cell_scores_what_kvkit_grade_gives(course, kvkit_grade):
    """The reference with TODO 4's answer cell deleted: what ``kvkit grade`` gives the same notebook; the grader's
    notes (which answer cell was missing) open the autograded notebook and the feedback."""
    report = kvkit_grade(course["made"]["a_one_deleted"])
    score = course["scores"]["kv_cache"]["a_one_deleted"]
    assert score == (report.score, report.max_score) and 0 < report.score < report.max_score
    notes = read_notebook(autograded(course, "a_one_deleted") / "kv_cache.ipynb")["cells"][0]
    assert report.notes and notes["metadata"].get("kvkit", {}).get("notes")
    page = html.unescape(feedback_html(course, "a_one_deleted"))
    for note in report.notes:
        assert note.splitlines()[0] in outputs_text({"cells": [notes]}) and note.splitlines()[0] in page, note


@pytest.mark.slow
@pytest.mark.xdist_group("nbgrader-intake")
def test_the_kernels_own_output_reaches_the_log_only_quoted(course):
    log = course["log"]["kv_cache"]
    for line in log.splitlines():
        assert not line.lstrip("\r").startswith(FAKE_LINE), line
    assert "\r" + FAKE_LINE not in log
    quoted = [line for line in log.splitlines() if FAKE_LINE in line]  # (nbgrader indents a record's later lines)
    assert len(quoted) == 2 and all(re.match(r"\s*  \| kvkit grade", line) for line in quoted), quoted
    assert course["scores"]["kv_cache"]["o_outputs"] == course["full"]["kv_cache"]


@pytest.mark.slow
@pytest.mark.xdist_group("nbgrader-intake")
def test_outputs_are_bounded_in_bytes_with_a_note(course):
    path = autograded(course, "o_outputs") / "kv_cache.ipynb"
    assert path.stat().st_size < 3_000_000, path.stat().st_size
    nb = read_notebook(path)
    big = next(c for c in nb["cells"] if cell_source(c).startswith("print('x' *"))
    text = outputs_text({"cells": [big]})
    assert "[kvkit: output cut" in text and "x" * 1000 in text
    assert re.search(r"the outputs of cell \d+ were cut: \d+ bytes not kept", course["log"]["kv_cache"])


@pytest.mark.slow
@pytest.mark.xdist_group("nbgrader-intake")
def test_feedback_survives_the_hidden_test_markers_in_a_students_cell(course):
    assert course["feedback"].returncode == 0, course["feedback"].stderr[-3000:]
    assert course["scores"]["kv_cache"]["f_markers"] == course["full"]["kv_cache"]
    hidden_names = [line.split("(")[0][4:] for line in
                    "\n".join(path.read_text() for path in HIDDEN_TESTS.glob("test_*.py")).splitlines()
                    if line.startswith("def test_")]
    for student in ("f_markers", "c_reference", "c_partial"):
        html = feedback_html(course, student)
        assert "Hidden check of TODO" in html
        for secret in ["run_hidden", "goldens=", "WIDE_CACHE", "def test_", *hidden_names]:
            assert secret not in html, f"{student}'s feedback shows {secret!r}"
    assert "BEGIN HIDDEN TESTS" in feedback_html(course, "f_markers")  # the student's own text stays
    assert "BEGIN HIDDEN TESTS" not in feedback_html(course, "c_reference")


# -- the same pieces without nbgrader (fast) ----------------------------------------------------------------------


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, message: str, *args) -> None:
        self.lines.append(message % args)

    info = warning


def kept_log(name: str) -> tuple[Lines, logging.Logger]:
    lines, log = Lines(), logging.getLogger(f"kvkit-test-{name}")
    log.addHandler(type("Keep", (logging.Handler,), {"emit": lambda self, record: lines.lines.append(
        record.getMessage())})())
    return lines, log


def test_a_timestamp_file_is_read_as_a_plain_file_or_ignored_in_one_line(tmp_path):
    from nbgrader.coursedir import CourseDirectory

    from kvkit.course.autograde import KitAutograde

    lines, log = kept_log("timestamp")
    converter = KitAutograde(coursedir=CourseDirectory(root=str(tmp_path)), log=log)
    for name, make in (("fine", lambda p: p.write_text("2026-12-01 10:00:00.000000 UTC")),
                       ("pipe", os.mkfifo), ("link", lambda p: p.symlink_to("/dev/zero")),
                       ("garbage", lambda p: p.write_bytes(b"\xff" * 500)),
                       ("huge", lambda p: p.write_text("1" * 5000))):
        (tmp_path / name).mkdir()
        make(tmp_path / name / "timestamp.txt")
    assert converter.existing_timestamp(str(tmp_path / "fine")).year == 2026
    assert [converter.existing_timestamp(str(tmp_path / name)) for name in ("pipe", "link", "garbage", "huge")] == [
        None] * 4
    assert [line.split(" ignored: ")[1].split(" (")[0] for line in lines.lines] == [
        "a named pipe", "a symbolic link", "not a timestamp", "5000 bytes, over the limit of 1000"], lines.lines


def test_folder_intake_copies_plain_files_only(tmp_path):
    from kvkit.course.autograde import FolderIntake

    folder, dest = tmp_path / "submitted", tmp_path / "autograded"
    (folder / "data" / "deep").mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    (folder / "data" / "deep" / "table.csv").write_text("1,2")
    (folder / "secret.txt").symlink_to(REFERENCE / PACKAGE / "cache.py")
    (folder / "hidden").symlink_to(HIDDEN_TESTS, target_is_directory=True)
    (folder / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(folder / "pipe")
    (tmp_path / "elsewhere.txt").write_text("theirs")
    os.link(tmp_path / "elsewhere.txt", folder / "hard.txt")
    with open(folder / "big.bin", "wb") as f:
        f.truncate(2000)
    with open(os.path.join(os.fsencode(folder), b"bad\xff.txt"), "wb") as f:
        f.write(b"x")
    (folder / "other.ipynb").write_text("{}")  # notebooks are nbgrader's to read
    (folder / "__pycache__").mkdir()
    log = Lines()
    FolderIntake(log, "alice", ["__pycache__"], max_file=1000, max_total=10_000).copy(folder, dest)
    copied = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert copied == ["data/deep/table.csv", "notes.txt"]
    refused = dict(re.match(r"kvkit: not copied from alice's submitted folder: (.*?): (.*)$", line).groups()
                   for line in log.lines)
    assert refused == {"bad\\udcff.txt": "a name that is not valid UTF-8",
                       "big.bin": "2000 bytes, over the limit of 1000",
                       "dangling": "a symbolic link (links are not followed)",
                       "hard.txt": "a file with 2 hard links (a copy of another file: hand in the file itself)",
                       "hidden": "a symbolic link (links are not followed)", "pipe": "a named pipe",
                       "secret.txt": "a symbolic link (links are not followed)"}, log.lines


def test_a_submitted_folder_that_is_a_link_is_not_copied(tmp_path):
    from kvkit.course.autograde import FolderIntake

    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "notes.txt").write_text("x")
    (tmp_path / "linked").symlink_to(tmp_path / "real", target_is_directory=True)
    log = Lines()
    FolderIntake(log, "bob", [], 1000, 1000).copy(tmp_path / "linked", tmp_path / "out")
    assert not (tmp_path / "out").exists() and len(log.lines) == 1 and "symbolic link" in log.lines[0]


def test_a_students_cell_may_hold_any_text_for_feedback():
    from nbformat.v4 import new_code_cell, new_notebook

    from kvkit.course.autograde import ClearHiddenRegions

    grade = {"grade": True, "solution": False, "locked": True, "grade_id": "hidden_x", "points": 1}
    answer = {"grade": False, "solution": True, "locked": False, "grade_id": "answer"}
    nb = new_notebook(cells=[
        new_code_cell("x = 1\n# ### BEGIN HIDDEN TESTS\n# ### BEGIN HIDDEN TESTS\n# ### END HIDDEN TESTS",
                      metadata={"nbgrader": answer}),
        new_code_cell("### END HIDDEN TESTS\nprint(1)", metadata={}),
        new_code_cell("checks.run('a')\n### BEGIN HIDDEN TESTS\nsecret()\n### END HIDDEN TESTS\nafter()",
                      metadata={"nbgrader": grade}),
        new_code_cell("### BEGIN HIDDEN TESTS\nsecret()\n### BEGIN HIDDEN TESTS\nmore_secret()",
                      metadata={"nbgrader": dict(grade, grade_id="hidden_y")})])
    out, _ = ClearHiddenRegions().preprocess(nb, {})
    assert out.cells[0].source.count("BEGIN HIDDEN TESTS") == 2 and "END" in out.cells[1].source
    assert out.cells[2].source == "checks.run('a')\nafter()"
    assert out.cells[3].source == ""


def test_the_kernels_lines_are_quoted_with_control_characters_escaped():
    from kvkit.course.autograde import quote_block, quoted

    assert quoted("a\rb\x1b[2Kc\n") == "a\\rb\\x1b[2Kc\\n"
    block = quote_block("one\n\x1b[1Gkvkit grade of x: 115 / 115\rtwo\n" + "z" * 500)
    assert all(line.startswith("  | ") for line in block.splitlines())
    assert "\x1b" not in block and len(block.splitlines()[-1]) <= 4 + 150


def test_outputs_are_cut_to_their_byte_bounds_with_a_note():
    from nbformat.v4 import new_code_cell, new_output

    from kvkit.course.autograde import ConfinedExecute

    lines, log = kept_log("outputs")
    run = ConfinedExecute(max_cell_output_bytes=1000, max_output_bytes=1500, log=log)
    run._kept, run._dropped, run._noted = {}, {}, set()
    first = new_code_cell("print(...)", outputs=[new_output("stream", name="stdout", text="x" * 5000)])
    second = new_code_cell("display(...)", outputs=[
        new_output("display_data", data={"text/plain": "y" * 400}),
        new_output("display_data", data={"text/plain": "z" * 4000})])
    run._bound(first, 0)
    run._bound(second, 1)
    assert len(first.outputs[0].text) == 1000 - 50 and "[kvkit: output cut: 4050 bytes" in first.outputs[-1].text
    assert second.outputs[1].data == {} and "[kvkit: output cut" in second.outputs[-1].text
    assert sum(run._kept.values()) <= 1500 + 100  # an output cut to nothing keeps its JSON frame
    assert len(lines.lines) == 2 and "cell 1 were cut" in lines.lines[0], lines.lines

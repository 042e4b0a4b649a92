"""Every edition of an assignment (the manifest's ``[editions.LANG]``) is the same exercise in another language.

Its notebook has the same check cells (grade ids, points, the checks they run) as the English one, its prose is in
its language, its student README states the same points, the student's zip holds it; and with real nbgrader the
same notebooks get the same scores in both editions, with the edition's verdicts in its language.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kvkit.build import readmes
from kvkit.bundle import write_bundle
from kvkit.course.checks import collect_checks
from kvkit.course.courses import courses_of, english
from kvkit.course.folders import nbgrader_command, nbgrader_env, write_support
from kvkit.course.submission import fill_notebook, read_notebook
from kvkit.examples import example_texts
from kvkit.registry import ROOT
from layouts_support import per_assignment

EDITIONS = per_assignment(lambda layout: [(course,) for course in courses_of(layout) if course.lang != "en"],
                          lambda value: value[0].name)
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")  # kana and kanji
POINTS_JA = r"合計\s*(\d+)\s*点（うち公開チェックで\s*(\d+)\s*点）"


def test_every_assignment_has_a_japanese_edition(layout):
    assert "ja" in layout.assignment.editions, f"{layout.assignment.manifest} has no [editions.ja]"
    for todo in layout.assignment.todos.values():
        assert JAPANESE.search(todo.task_in("ja")) and JAPANESE.search(todo.contract_in("ja")), (
            f"TODO {todo.number} has no Japanese task and contract ([todos.ja] in the manifest)")


def graded_cells(notebook: dict) -> list[tuple]:
    """What grading depends on in a notebook: each graded cell's grade id, points, check and the line it runs."""
    found = []
    for cell in notebook["cells"]:
        nbgrader = cell["metadata"].get("nbgrader", {})
        if nbgrader.get("grade"):
            code = [line for line in "".join(cell["source"]).splitlines() if not line.startswith("#")]
            found.append((nbgrader["grade_id"], nbgrader["points"], cell["metadata"]["kvkit"]["check"], code))
    return found


@pytest.mark.parametrize("layout,course", EDITIONS)
@pytest.mark.parametrize("folder", ["source", "release"])
def test_an_edition_has_the_same_checks_and_points(layout, course, folder):
    own = english(layout)
    english_notebook = read_notebook(getattr(own, folder) / own.notebook_name)
    edition = read_notebook(getattr(course, folder) / course.notebook_name)
    assert graded_cells(edition) == graded_cells(english_notebook), \
        f"{course.name}'s {folder} notebook checks differently"
    answers = lambda nb: [c["metadata"]["nbgrader"]["grade_id"] for c in nb["cells"]  # noqa: E731
                          if c["metadata"].get("nbgrader", {}).get("solution")]
    assert answers(edition) == answers(english_notebook)
    assert edition["metadata"]["kvkit"]["package"] == english_notebook["metadata"]["kvkit"]["package"]


def prose(notebook: dict) -> str:
    """The markdown cells' text without code spans, code blocks and formulas."""
    text = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown")
    return re.sub(r"```.*?```|`[^`]*`|\$\$.*?\$\$|\$[^$]*\$", " ", text, flags=re.S)


@pytest.mark.parametrize("layout,course", EDITIONS)
def test_an_editions_prose_is_mostly_in_its_language(layout, course):
    text = prose(read_notebook(course.release / course.notebook_name))
    letters = [ch for ch in text if ch.isalpha()]
    share = sum(bool(JAPANESE.match(ch)) for ch in letters) / max(1, len(letters))
    assert course.lang == "ja" and share > 0.5, f"{course.name}: {share:.0%} of the prose's letters are Japanese"


def test_the_japanese_readme_states_the_graded_points_and_the_python(layout):
    items = collect_checks(layout)
    total, public = sum(i.points for i in items), sum(i.points for i in items if not i.hidden)
    readme = readmes(layout)["ja"]
    found = re.search(POINTS_JA, readme.read_text())
    assert found, f"{readme} must say '合計 N 点（うち公開チェックで M 点）'"
    assert (int(found.group(1)), int(found.group(2))) == (total, public)
    minimum = re.search(r'requires-python = ">=(\d+\.\d+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert f"Python {minimum} 以降" in readme.read_text()
    assert "KVKIT_LANG=ja" in readme.read_text() and "KVKIT_LANG=ja" in readmes(layout)["en"].read_text()


def test_the_students_zip_holds_every_readme(tmp_path, layout):
    names = zipfile.ZipFile(write_bundle(layout, tmp_path / "bundle.zip")).namelist()
    top = layout.assignment.bundle
    assert {f"{top}/{readme.name}" for readme in readmes(layout).values()} <= set(names)


def nbgrader(course_root: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([*nbgrader_command(), *args], cwd=course_root, capture_output=True, text=True,
                          env=nbgrader_env(), timeout=900)
    assert done.returncode == 0, f"nbgrader {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def autograded(tmp_path: Path, course, notebooks: dict[str, Path]) -> tuple[dict, dict]:
    """Real ``nbgrader autograde`` of ``notebooks`` (student -> notebook) in a course of ``course``: each student's
    (score, max score), and each student's autograded notebook."""
    from nbgrader.api import Gradebook

    root = tmp_path / course.name
    shutil.copytree(course.source, root / "source" / course.name)
    write_support(course.layout, root / "source" / course.name)  # the check files (a fresh clone has none)
    shutil.copyfile(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    nbgrader(root, "generate_assignment", course.name, "--force")
    for student, notebook in notebooks.items():
        target = root / "submitted" / student / course.name / course.notebook_name
        target.parent.mkdir(parents=True)
        shutil.copyfile(notebook, target)
    nbgrader(root, "autograde", course.name, "--force")
    course_id = re.search(r'course_id = "([^"]+)"', (root / "nbgrader_config.py").read_text()).group(1)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id) as gb:
        scores = {s: (gb.find_submission(course.name, s).score, gb.find_submission(course.name, s).max_score)
                  for s in notebooks}
    outputs = {s: read_notebook(root / "autograded" / s / course.name / course.notebook_name) for s in notebooks}
    return scores, outputs


def failure_texts(notebook: dict) -> list[str]:
    """The failure reasons of the graded cells (the verdicts the grader wrote)."""
    return [o.get("evalue", "") for c in notebook["cells"] if c["metadata"].get("nbgrader", {}).get("grade")
            for o in c.get("outputs", []) if o["output_type"] == "error"]


@pytest.mark.slow
@pytest.mark.parametrize("layout,course", EDITIONS)
def test_real_nbgrader_gives_an_edition_the_english_editions_scores(tmp_path, layout, course):
    """Source answers: full marks; the release untouched: zero; the ``partial`` example: the English score; verdicts
    in the edition's language."""
    pytest.importorskip("nbgrader")
    own, partial = english(layout), example_texts(layout, "partial")
    scores, verdicts = {}, {}
    for edition in (own, course):
        release = edition.release_notebook
        notebooks = {"full": fill_notebook(layout, release, tmp_path / edition.name / "full.ipynb", {}),
                     "untouched": release,
                     "partial": fill_notebook(layout, release, tmp_path / edition.name / "partial.ipynb", partial)}
        scores[edition.name], verdicts[edition.name] = autograded(tmp_path / "courses", edition, notebooks)
    in_english, edition = scores[own.name], scores[course.name]
    full = in_english["full"][1]
    assert in_english["full"] == edition["full"] == (full, full)
    assert in_english["untouched"] == edition["untouched"] == (0, full)
    assert in_english["partial"] == edition["partial"] and 0 < edition["partial"][0] < full
    failed = failure_texts(verdicts[course.name]["partial"])
    assert failed and not [text for text in failed if not JAPANESE.search(text)], (
        [text for text in failed if not JAPANESE.search(text)][:3])
    assert not any(JAPANESE.search(text) for text in failure_texts(verdicts[own.name]["partial"]))


@pytest.mark.slow
def test_the_same_code_gets_the_same_points_in_both_languages_with_japanese_messages(tmp_path, layout):
    """``kvkit grade`` of one unfinished package, in English and with ``--lang ja``: the same verdicts."""
    from kvkit.examples import write_package

    todos = layout.assignment.todos
    folder = write_package(layout, tmp_path / "sub", {todos[max(todos)].function: "stub"})
    reports = {}
    for lang in ("en", "ja"):
        out = tmp_path / f"{lang}.json"
        done = subprocess.run([sys.executable, "-m", "kvkit.cli", "--assignment", layout.assignment.name, "--lang",
                               lang, "grade", str(folder), "--json", str(out)], capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        reports[lang] = (json.loads(out.read_text()), done.stdout)
    (en, en_table), (ja, ja_table) = reports["en"], reports["ja"]
    assert en["score"] == ja["score"] < en["max_score"] == ja["max_score"]
    assert [(t["name"], t["score"]) for t in en["tests"]] == [(t["name"], t["score"]) for t in ja["tests"]]
    failed = [t["output"] for t in ja["tests"] if t["status"] == "failed"]
    assert failed and all(JAPANESE.search(text) for text in failed)
    totals = [line for line in ja_table.splitlines() if line.startswith("合計")]
    assert totals and JAPANESE.search(ja_table) and not JAPANESE.search(en_table)

"""Every edition of an assignment (the manifest's ``[editions.LANG]``) is the same exercise in another language.

Its notebook has the same check cells (grade ids, points, the checks they run) as the English one, its prose is in
its language, the student's zip holds its README; and with real nbgrader the same notebooks get the same scores in
both editions, with the edition's verdicts in its language (each course's class, built once per session:
``nbgrader_support``). That every assignment has a Japanese edition, with its task and contract per TODO, and that
its README states the points, the Python and ``KVKIT_LANG=ja`` are requirements (``kvkit.requirements``, run by
``test_requirements.py``; the points are ``kvkit build --check``'s).
"""

from __future__ import annotations

import json
import re
import zipfile

import pytest

from cli_support import kvkit
from kvkit.commands.bundle import write_bundle
from kvkit.courses import courses_of, english
from kvkit.grading.notebooks import read_notebook
from kvkit.skeleton import readmes
from layouts_support import per_assignment
from nbgrader_support import class_group

EDITIONS = per_assignment(lambda layout: [(course,) for course in courses_of(layout) if course.lang != "en"],
                          lambda value: value[0].name)
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")  # kana and kanji


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


def test_the_students_zip_holds_every_readme(tmp_path, layout):
    names = zipfile.ZipFile(write_bundle(layout, tmp_path / "bundle.zip")).namelist()
    top = layout.assignment.bundle
    assert {f"{top}/{readme.name}" for readme in readmes(layout).values()} <= set(names)


def failure_texts(notebook: dict) -> list[str]:
    """The failure reasons of the graded cells (the verdicts the grader wrote)."""
    return [o.get("evalue", "") for c in notebook["cells"] if c["metadata"].get("nbgrader", {}).get("grade")
            for o in c.get("outputs", []) if o["output_type"] == "error"]


# the edition's and the English course's classes are built once per session by one xdist worker (nbgrader_support)
CLASSES = [pytest.param(*param.values, id=param.id, marks=pytest.mark.xdist_group(class_group(param.values[0])))
           for param in EDITIONS]


@pytest.mark.slow
@pytest.mark.parametrize("layout,course", CLASSES)
def test_real_nbgrader_gives_an_edition_the_english_editions_scores(nbgrader_class, layout, course):
    """Real ``nbgrader autograde`` of each course's class: the release filled with the reference (``s1_reference``):
    full marks; the release untouched: zero; the ``partial`` example: the English score; verdicts in the edition's
    language."""
    pytest.importorskip("nbgrader")
    in_english, edition = nbgrader_class(english(layout)), nbgrader_class(course)
    full = in_english.full
    assert in_english.scores["s1_reference"] == edition.scores["s1_reference"] == (full, full)
    assert in_english.scores["s2_untouched"] == edition.scores["s2_untouched"] == (0, full)
    assert in_english.scores["s3_partial"] == edition.scores["s3_partial"] and (
        0 < edition.scores["s3_partial"][0] < full)
    failed = failure_texts(edition.notebook("s3_partial"))
    assert failed and not [text for text in failed if not JAPANESE.search(text)], (
        [text for text in failed if not JAPANESE.search(text)][:3])
    assert not any(JAPANESE.search(text) for text in failure_texts(in_english.notebook("s3_partial")))


@pytest.mark.slow
def test_the_same_code_gets_the_same_points_in_both_languages_with_japanese_messages(tmp_path, layout):
    """``kvkit grade`` of one unfinished package, in English and with ``--lang ja``: the same verdicts."""
    from kvkit.examples import write_package

    todos = layout.assignment.todos
    folder = write_package(layout, tmp_path / "sub", {todos[max(todos)].function: "stub"})
    reports = {}
    for lang in ("en", "ja"):
        out = tmp_path / f"{lang}.json"
        done = kvkit(layout, "--lang", lang, "grade", folder, "--json", out)
        assert done.returncode == 0, done.stderr[-3000:]
        reports[lang] = (json.loads(out.read_text()), done.stdout)
    (en, en_table), (ja, ja_table) = reports["en"], reports["ja"]
    assert en["score"] == ja["score"] < en["max_score"] == ja["max_score"]
    assert [(t["name"], t["score"]) for t in en["tests"]] == [(t["name"], t["score"]) for t in ja["tests"]]
    failed = [t["output"] for t in ja["tests"] if t["status"] == "failed"]
    assert failed and all(JAPANESE.search(text) for text in failed)
    totals = [line for line in ja_table.splitlines() if line.startswith("合計")]
    assert totals and JAPANESE.search(ja_table) and not JAPANESE.search(en_table)

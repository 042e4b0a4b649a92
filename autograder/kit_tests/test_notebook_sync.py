"""The nbgrader course is generated, not kept by hand: in sync with the reference and the tests, and clean.

- ``source/<name>/`` equals a fresh ``kvkit notebook`` (``kvkit notebook --check --no-release``, here; with the release,
  a fresh ``nbgrader generate_assignment``, the requirement ``the_course_is_generated`` in ``test_requirements.py``);
- the release holds no solution code and no hidden test, and nothing in ``source/<name>/`` besides the
  notebook does either (nbgrader copies those files into every graded folder);
- the notebook has one test cell per graded pytest item, with the same points;
- ``notebook_to_package`` turns the source notebook back into the reference's code.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from kvkit.cli import main
from kvkit.course.checks import check_key, check_name, collect_checks
from kvkit.course.submission import notebook_to_package
from kvkit.course.template import notebook_points
from kvkit.courses import courses_of, english
from kvkit.grading.notebooks import read_notebook
from kvkit.requirements import solution_lines
from kvchecks import assignment as kvchecks_assignment
from layouts_support import per_assignment

COURSES = per_assignment(lambda layout: [(course,) for course in courses_of(layout)], lambda value: value[0].name)


@pytest.fixture(scope="module")
def checks_of():
    """``checks_of(layout)``: its graded items, collected once."""
    found = {}

    def get(layout):
        if layout.assignment.name not in found:
            found[layout.assignment.name] = collect_checks(layout)
        return found[layout.assignment.name]

    return get


def hidden_secrets(layout) -> tuple[set[str], set[str]]:
    """Distinctive text of the hidden tests: ``(code lines, substrings)``; substrings are markers, test names
    and the keys of their saved outputs. A line the public checks share with the hidden ones is no secret."""
    public = {line.strip() for path in [*layout.public_tests.rglob("*.py"),
                                        *Path(kvchecks_assignment.__file__).parent.glob("*.py")]
              for line in path.read_text().splitlines()}
    lines, substrings = set(), {"BEGIN HIDDEN TESTS", "END HIDDEN TESTS"}
    for path in layout.hidden_tests.glob("test_*.py"):
        for line in path.read_text().splitlines():
            if line.startswith("def test_"):
                substrings.add(line.split("(")[0][4:])
            elif len(line.strip()) >= 30 and not line.strip().startswith(("#", '"""', "import", "from")):
                lines.add(line.strip())
    for path in layout.hidden_tests.glob("goldens.json"):
        substrings |= set(json.loads(path.read_text()))
    return lines - public, substrings


def lines_of(path: Path) -> set[str]:
    """Stripped lines of a file; for a notebook, of its cells' sources and outputs."""
    text = path.read_bytes().decode(errors="replace")
    if path.suffix != ".ipynb":
        return {line.strip() for line in text.splitlines()}
    found = set()
    for cell in json.loads(text)["cells"]:
        chunks = [cell["source"]] + [o.get("text", "") for o in cell.get("outputs", [])]
        for chunk in chunks:
            found |= {line.strip() for line in ("".join(chunk) if isinstance(chunk, list) else chunk).splitlines()}
    return found


def leaks(layout, folder: Path, skip_notebook: str | None = None) -> dict[str, list[str]]:
    """Per file of ``folder`` (but the notebook ``skip_notebook`` names): ``layout``'s solution lines, hidden-test
    lines and hidden-test substrings it holds."""
    solution = solution_lines(layout)
    hidden_lines, hidden_strings = hidden_secrets(layout)
    assert solution and hidden_lines and hidden_strings  # the scan has something to look for
    found = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or (path.name == skip_notebook):
            continue
        text = path.read_bytes().decode(errors="replace")  # a compiled catalogue (.mo) is binary: scan its text too
        lines = lines_of(path)
        bad = sorted((solution | hidden_lines) & lines) + sorted(s for s in hidden_strings if s in text)
        bad += [m for m in ("BEGIN SOLUTION", "END SOLUTION") if m in text]
        if bad:
            found[path.relative_to(folder).as_posix()] = bad
    return found


def test_kvkit_notebook_check_passes(capsys, layout):
    assert main(["--assignment", layout.assignment.name, "notebook", "--check", "--no-release"]) == 0
    assert "up to date" in capsys.readouterr().out


@pytest.mark.slow  # real nbgrader generate_assignment
@pytest.mark.parametrize("layout,edition", COURSES)
def test_release_has_no_solution_and_no_hidden_test(written_courses, layout, edition):
    assert leaks(layout, written_courses(layout) / "release" / edition.name) == {}


@pytest.mark.slow  # real nbgrader generate_assignment
@pytest.mark.parametrize("layout,edition", COURSES)
def test_source_support_files_hold_no_solution_and_no_hidden_test(written_courses, layout, edition):
    # nbgrader copies every file of source/<name>/ but the notebook into each graded folder
    assert leaks(layout, written_courses(layout) / "source" / edition.name, skip_notebook=edition.notebook_name) == {}


@pytest.mark.slow  # real nbgrader generate_assignment
@pytest.mark.parametrize("layout,edition", COURSES)
def test_the_scan_finds_what_it_looks_for(written_courses, layout, edition):
    found = leaks(layout, written_courses(layout) / "source" / edition.name)  # the source notebook itself holds both
    assert any("BEGIN SOLUTION" in bad for bad in found.get(edition.notebook_name, []))
    assert any("BEGIN HIDDEN TESTS" in bad for bad in found.get(edition.notebook_name, []))
    solution = solution_lines(layout)  # and it finds the solution's own lines, not only the markers
    assert solution <= set(found[edition.notebook_name]), sorted(solution - set(found[edition.notebook_name]))[:5]


def test_hidden_tests_live_only_in_hidden_regions(layout):
    nb = read_notebook(english(layout).source_notebook)
    hidden_lines, hidden_strings = hidden_secrets(layout)
    secrets = (hidden_lines | hidden_strings) - {"BEGIN HIDDEN TESTS", "END HIDDEN TESTS"}
    for cell in nb["cells"]:
        text = "".join(cell["source"])
        outside, inside = [], False
        for line in text.splitlines():
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif not inside:
                outside.append(line)
        outside_text = "\n".join(outside)
        assert not [s for s in secrets if s in outside_text], cell["id"]
        if "BEGIN HIDDEN TESTS" in text:
            assert cell["metadata"]["nbgrader"]["grade"] and cell["metadata"]["nbgrader"]["locked"]


def test_one_test_cell_per_graded_item_with_its_points(checks_of, layout):
    items = checks_of(layout)
    nb = read_notebook(english(layout).source_notebook)
    cells = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
    assert len(cells) == len(items)
    assert notebook_points(nb) == sum(item.points for item in items)
    keys = {c["metadata"]["kvkit"]["check"]: c["metadata"]["nbgrader"]["points"] for c in cells}
    assert keys == {check_key(check_name(i), i.hidden): i.points for i in items}
    for todo in layout.assignment.todos:
        mine = [c for c in cells if c["metadata"]["kvkit"]["todo"] == todo]
        assert sum(c["metadata"]["nbgrader"]["points"] for c in mine) == sum(i.points for i in items if i.todo == todo)
    hidden = [c for c in cells if c["metadata"]["kvkit"]["check"].startswith("hidden-")]
    assert len(hidden) == sum(i.hidden for i in items)
    assert all(c["metadata"]["nbgrader"]["grade_id"] == f"hidden_todo{c['metadata']['kvkit']['todo']}_"
               f"{c['metadata']['kvkit']['check'][7:17]}" for c in hidden)


def test_cell_ids_do_not_move_when_a_check_is_added(checks_of, layout):
    """Grade ids come from the checks' names, not their positions: a running course keeps its cells."""
    from kvkit.course.checks import check_cells

    items, todos = checks_of(layout), layout.assignment.todos
    before = {c["metadata"]["nbgrader"]["grade_id"] for todo in todos for c in check_cells(layout, items, todo)}
    extra = [i for i in items if i.hidden][0]
    added = [*items, type(extra)(extra.nodeid.replace("::test_", "::test_a_new_"), extra.path, extra.function,
                                 extra.params, extra.todo, extra.points, True)]
    after = {c["metadata"]["nbgrader"]["grade_id"] for todo in todos for c in check_cells(layout, added, todo)}
    assert before < after and len(after - before) == 1


def test_answer_cells_keep_the_solution_markers_and_provided_cells_are_locked(layout):
    nb = read_notebook(english(layout).source_notebook)
    answers = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution")]
    assert sorted(t for c in answers for t in c["metadata"]["kvkit"]["todos"]) == list(layout.assignment.todos)
    for cell in answers:
        text = "".join(cell["source"])
        assert text.count("### BEGIN SOLUTION") == text.count("### END SOLUTION") == len(cell["metadata"]["kvkit"]["todos"])
    provided = [c for c in nb["cells"] if "module" in c["metadata"].get("kvkit", {}) and c not in answers]
    assert provided and all(c["metadata"]["nbgrader"]["locked"] for c in provided)


def test_source_notebook_back_to_the_reference(tmp_path, layout):
    folder = notebook_to_package(layout, english(layout).source_notebook, tmp_path)
    package = layout.assignment.package
    for module in (*layout.assignment.modules, "__init__.py"):
        got = ast.dump(ast.parse((folder / package / module).read_text()))
        assert got == ast.dump(ast.parse((layout.reference / package / module).read_text())), module


def test_notebook_to_package_ignores_edits_to_read_only_cells(tmp_path, layout):
    nb = read_notebook(english(layout).release_notebook)
    provided = next(c for c in nb["cells"] if c["metadata"].get("kvkit", {}).get("classes")
                    and c["metadata"]["nbgrader"].get("locked"))
    module, names = provided["metadata"]["kvkit"]["module"], provided["metadata"]["kvkit"]["classes"]
    provided["source"] = [f"class {name}: pass\n" for name in names]
    edited = tmp_path / "edited.ipynb"
    edited.write_text(json.dumps(nb))
    text = (notebook_to_package(layout, edited, tmp_path / "out") / layout.assignment.package / module).read_text()
    assert not [name for name in names if f"class {name}: pass" in text]
    assert all(f"class {name}" in text or f"def {name}" in text for name in names)

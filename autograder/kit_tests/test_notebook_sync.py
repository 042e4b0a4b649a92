"""The nbgrader course is generated, not kept by hand: in sync with the reference and the tests, and clean.

- ``source/kv_cache/`` equals a fresh ``kvkit notebook`` (notebook and shipped support files);
- ``release/kv_cache/`` equals a fresh ``nbgrader generate_assignment`` of it;
- the release holds no solution code and no hidden test, and nothing in ``source/kv_cache/`` besides the
  notebook does either (nbgrader copies those files into every graded folder);
- the notebook has one test cell per graded pytest item, with the same points;
- ``notebook_to_package`` turns the source notebook back into the reference's code.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from kvkit.build import solution_regions
from kvkit.cli import main
from kvkit.notebook import (MODULES, NOTEBOOK_NAME, RELEASE_DIR, SOURCE_DIR, SOURCE_NOTEBOOK, collect_checks,
                            notebook_points, notebook_to_package, read_notebook, stale_paths)
from kvkit.paths import HIDDEN_TESTS, REFERENCE


@pytest.fixture(scope="module")
def items():
    return collect_checks()


def reference_solution_lines(min_length: int = 24) -> set[str]:
    """Stripped lines inside the reference's solution regions, long enough to be distinctive."""
    found = set()
    for path in (REFERENCE / "kvcache").glob("*.py"):
        lines = path.read_text().splitlines()
        for _, begin, end in solution_regions(path.read_text(), str(path)):
            found |= {line.strip() for line in lines[begin:end - 1] if len(line.strip()) >= min_length}
    return found


def hidden_secrets() -> set[str]:
    """Distinctive text of the hidden tests: their code lines, names and the keys of their saved outputs."""
    secrets = {"BEGIN HIDDEN TESTS", "END HIDDEN TESTS"}
    for path in HIDDEN_TESTS.glob("test_*.py"):
        for line in path.read_text().splitlines():
            if line.startswith("def test_"):
                secrets.add(line.split("(")[0][4:])
            elif len(line.strip()) >= 30 and not line.strip().startswith(("#", '"""', "import", "from")):
                secrets.add(line.strip())
    for path in HIDDEN_TESTS.glob("goldens.json"):
        secrets |= set(json.loads(path.read_text()))
    return secrets


def texts(folder: Path, skip_notebook: bool = False) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and not (skip_notebook and p.name == NOTEBOOK_NAME)}


def test_committed_course_is_up_to_date():
    assert stale_paths(release=True) == [], "run `kvkit notebook`"


def test_kvkit_notebook_check_passes(capsys):
    assert main(["notebook", "--check", "--no-release"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_release_has_no_solution_and_no_hidden_test():
    solution, hidden = reference_solution_lines(), hidden_secrets()
    assert len(solution) > 10 and len(hidden) > 10
    for name, text in texts(RELEASE_DIR).items():
        for marker in ("BEGIN SOLUTION", "END SOLUTION"):
            assert marker not in text, f"release/{name} holds {marker!r}"
        leaked = sorted(line for line in solution | hidden if line in text)
        assert not leaked, f"release/{name} holds solution or hidden-test text: {leaked[:3]}"


def test_source_support_files_hold_no_solution_and_no_hidden_test():
    solution, hidden = reference_solution_lines(), hidden_secrets()
    for name, text in texts(SOURCE_DIR, skip_notebook=True).items():
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text, name
        leaked = sorted(line for line in solution | hidden if line in text)
        assert not leaked, f"source/kv_cache/{name} is copied into graded folders but holds: {leaked[:3]}"


def test_hidden_tests_live_only_in_hidden_regions():
    nb = read_notebook(SOURCE_NOTEBOOK)
    secrets = hidden_secrets() - {"BEGIN HIDDEN TESTS", "END HIDDEN TESTS"}
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


def test_one_test_cell_per_graded_item_with_its_points(items):
    nb = read_notebook(SOURCE_NOTEBOOK)
    cells = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
    assert len(cells) == len(items)
    assert notebook_points(nb) == sum(item.points for item in items)
    public = {c["metadata"]["kvkit"]["check"]: c["metadata"]["nbgrader"]["points"] for c in cells
              if c["metadata"]["kvkit"]["check"] != "hidden"}
    assert public == {item.nodeid: item.points for item in items if not item.hidden}
    for todo in (1, 2, 3, 4):
        mine = [c for c in cells if c["metadata"]["kvkit"]["todo"] == todo]
        assert sum(c["metadata"]["nbgrader"]["points"] for c in mine) == sum(i.points for i in items if i.todo == todo)
        hidden = [c for c in mine if c["metadata"]["kvkit"]["check"] == "hidden"]
        assert len(hidden) == sum(1 for i in items if i.todo == todo and i.hidden)


def test_answer_cells_keep_the_solution_markers_and_provided_cells_are_locked():
    nb = read_notebook(SOURCE_NOTEBOOK)
    answers = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution")]
    assert sorted(t for c in answers for t in c["metadata"]["kvkit"]["todos"]) == [1, 2, 3, 4]
    for cell in answers:
        text = "".join(cell["source"])
        assert text.count("### BEGIN SOLUTION") == text.count("### END SOLUTION") == len(cell["metadata"]["kvkit"]["todos"])
    provided = [c for c in nb["cells"] if "module" in c["metadata"].get("kvkit", {}) and c not in answers]
    assert provided and all(c["metadata"]["nbgrader"]["locked"] for c in provided)


def test_source_notebook_back_to_the_reference(tmp_path):
    folder = notebook_to_package(SOURCE_NOTEBOOK, tmp_path)
    for module in (*MODULES, "__init__.py"):
        got = ast.dump(ast.parse((folder / "kvcache" / module).read_text()))
        assert got == ast.dump(ast.parse((REFERENCE / "kvcache" / module).read_text())), module


def test_notebook_to_package_ignores_edits_to_read_only_cells(tmp_path):
    nb = read_notebook(RELEASE_DIR / NOTEBOOK_NAME)
    for cell in nb["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "model_mlp_block":
            cell["source"] = ["class MLP: pass\n", "class Block: pass\n"]
    edited = tmp_path / "edited.ipynb"
    edited.write_text(json.dumps(nb))
    model = (notebook_to_package(edited, tmp_path / "out") / "kvcache" / "model.py").read_text()
    assert "class MLP: pass" not in model and "class Block(nn.Module):" in model

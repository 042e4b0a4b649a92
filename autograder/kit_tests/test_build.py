"""The skeleton is generated from the reference and stays in sync with it."""

from __future__ import annotations

import re
import shutil

import pytest

from kvkit.skeleton import build_skeleton, signature, solution_regions, stale_files, strip_solutions, todo_table


def test_committed_skeleton_equals_a_fresh_build(layout):
    assert stale_files(layout) == [], \
        f"{layout.skeleton} is stale: run `kvkit --assignment {layout.assignment.name} build`"


def test_skeleton_has_one_stub_per_todo_and_no_solution(tmp_path, layout):
    build_skeleton(layout, tmp_path)
    text = "\n".join(p.read_text() for p in sorted((tmp_path / layout.assignment.package).glob("*.py")))
    for todo in layout.assignment.todos.values():
        assert text.count(todo.stub_message) == 1
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text


def test_everything_outside_the_todos_is_identical(layout):
    package = layout.assignment.package
    for ref in sorted((layout.reference / package).glob("*.py")):
        skeleton = (layout.skeleton / package / ref.name).read_text().splitlines()
        reference = ref.read_text().splitlines()
        regions = solution_regions(ref.read_text(), str(ref))
        outside = [line for i, line in enumerate(reference, start=1)
                   if not any(begin <= i <= end for _, begin, end in regions)]
        assert [line for line in skeleton if not re.search(r"raise NotImplementedError\(['\"]TODO", line)] == outside


@pytest.mark.parametrize("source,problem", [
    ("def f():\n    x = 1\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n", "whole body"),
    ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "without"),
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", "whole body"),
])
def test_malformed_solution_regions_are_refused(source, problem):
    with pytest.raises(ValueError, match=problem):
        solution_regions(source, "example.py")


def test_a_region_outside_the_todo_functions_is_refused(layout):
    # a name no assignment gives a TODO (were it a TODO's, the test would say nothing)
    source = 'class NotATodo:\n    def helper(self):\n        """Doc."""\n        ### BEGIN SOLUTION\n        pass\n        ### END SOLUTION\n'
    assert "NotATodo.helper" not in {todo.function for todo in layout.assignment.todos.values()}
    with pytest.raises(ValueError, match="not one of the TODO functions"):
        strip_solutions(layout.assignment.todos, source, "cache.py")


def test_the_student_readmes_todo_table_comes_from_the_manifest(tmp_path, layout):
    shutil.copytree(layout.skeleton, tmp_path / "assignments")
    readme = tmp_path / "assignments" / "README.md"
    table = todo_table(layout)
    todos = layout.assignment.todos
    assert table in readme.read_text()
    for todo in todos.values():
        assert f"`{signature(todo, layout.reference)}` | {todo.contract} |" in table
    readme.write_text(readme.read_text().replace(todos[max(todos)].contract, "do it somehow"))
    assert stale_files(layout, tmp_path / "assignments") == ["README.md"]

"""Every clause of the student's contract has a graded check that fails when the clause is broken.

The map is the tables of ``autograder/material/<assignment>/contract.md``: one row per clause, naming the checks and an example
body that breaks the clause. Each row is a test here.
"""

from __future__ import annotations

import re

import pytest

from layouts_support import per_assignment
from message_rules import internal_identifiers, wrong_plurals
from selfcheck_support import checks_in_process, example_package

pytestmark = pytest.mark.slow

ROW = re.compile(r"^\| (\d+) \| (.+?) \| (.+?) \| `([\w/]+)` \|$")


def rows(layout) -> list[tuple[int, str, list[str], str]]:
    """The rows of ``layout``'s contract table: ``(todo, clause, checks, body)``."""
    found = []
    for line in layout.contract.read_text().splitlines():
        match = ROW.match(line)
        if match:
            todo, clause, checks, body = match.groups()
            found.append((int(todo), clause, re.findall(r"`(test_\w+(?:\[\*\])?)`", checks), body))
    return found


def test_the_table_covers_every_todo_and_names_real_checks(layout):
    found, todos = rows(layout), layout.assignment.todos
    assert {todo for todo, *_ in found} == set(todos) and len(found) >= 3 * len(todos)
    for _, clause, checks, body in found:
        assert checks, f"row {clause!r} names no check"
        assert int(re.match(r"todo(\d+)_", body.split("/")[-1]).group(1)) in todos, body


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Check results of each example body named in a table (each graded once)."""
    cache = {}

    def get(layout, body: str):
        key = (layout.assignment.name, body)
        if key not in cache:
            folder = tmp_path_factory.mktemp(f"{key[0]}-{body.replace('/', '_')}")
            cache[key] = checks_in_process(layout, example_package(layout, body, folder))
        return cache[key]

    return get


@pytest.mark.parametrize("layout,todo,clause,checks,body",
                         per_assignment(rows, lambda row: f"todo{row[0]}:{row[3].split('/')[-1]}"))
def test_breaking_the_clause_fails_its_checks(outcomes, layout, todo, clause, checks, body):
    results = outcomes(layout, body)
    for check in checks:
        if check.endswith("[*]"):
            cases = [r for name, r in results.items() if name.startswith(check[:-3] + "[")]
        else:
            cases = [results[check]] if check in results else []
        assert cases, f"{check} is not a graded check"
        assert not all(r.passed for r in cases), f"{body} breaks {clause!r}, yet {check} passes"
        assert all(r.todo == todo for r in cases), f"{check} belongs to another TODO than {clause!r}"
    internal = internal_identifiers(layout)
    for name, result in results.items():  # what the student reads: no internal names, no "1 positions"
        if not result.passed:
            assert not internal.search(result.message), f"{body}, {name}: {result.message}"
            assert not wrong_plurals(result.message), f"{body}, {name}: {result.message}"

"""Every clause of the student's contract has a graded check that fails when the clause is broken.

The map is the tables of ``autograder/material/<assignment>/contract.md``: one row per clause, naming the checks and an example
body that breaks the clause. Each row is a test here.
"""

from __future__ import annotations

import re

import pytest

from kvkit.paths import DEFAULT, TODOS
from message_rules import internal_identifiers, wrong_plurals
from selfcheck_support import checks_in_process, example_package

pytestmark = [pytest.mark.slow, pytest.mark.every_assignment]

CONTRACT = DEFAULT.contract
ROW = re.compile(r"^\| (\d+) \| (.+?) \| (.+?) \| `([\w/]+)` \|$")


def rows() -> list[tuple[int, str, list[str], str]]:
    found = []
    for line in CONTRACT.read_text().splitlines():
        match = ROW.match(line)
        if match:
            todo, clause, checks, body = match.groups()
            found.append((int(todo), clause, re.findall(r"`(test_\w+(?:\[\*\])?)`", checks), body))
    return found


ROWS = rows()


def test_the_table_covers_every_todo_and_names_real_checks():
    assert {todo for todo, *_ in ROWS} == set(TODOS) and len(ROWS) >= 3 * len(TODOS)
    for _, clause, checks, body in ROWS:
        assert checks, f"row {clause!r} names no check"
        assert int(re.match(r"todo(\d+)_", body.split("/")[-1]).group(1)) in TODOS, body


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Check results of each example body named in the table (each graded once)."""
    cache = {}

    def get(body: str):
        if body not in cache:
            cache[body] = checks_in_process(example_package(body, tmp_path_factory.mktemp(body.replace("/", "_"))))
        return cache[body]

    return get


@pytest.mark.parametrize("todo,clause,checks,body", ROWS, ids=[f"todo{r[0]}:{r[3].split('/')[-1]}" for r in ROWS])
def test_breaking_the_clause_fails_its_checks(outcomes, todo, clause, checks, body):
    results = outcomes(body)
    for check in checks:
        if check.endswith("[*]"):
            cases = [r for name, r in results.items() if name.startswith(check[:-3] + "[")]
        else:
            cases = [results[check]] if check in results else []
        assert cases, f"{check} is not a graded check"
        assert not all(r.passed for r in cases), f"{body} breaks {clause!r}, yet {check} passes"
        assert all(r.todo == todo for r in cases), f"{check} belongs to another TODO than {clause!r}"
    internal = internal_identifiers()
    for name, result in results.items():  # what the student reads: no internal names, no "1 positions"
        if not result.passed:
            assert not internal.search(result.message), f"{body}, {name}: {result.message}"
            assert not wrong_plurals(result.message), f"{body}, {name}: {result.message}"

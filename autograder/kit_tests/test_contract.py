"""Every clause of the student's contract has a graded check that fails when the clause is broken.

The map is the tables of ``autograder/material/<assignment>/contract.md``: one row per clause, naming the checks and an example
body that breaks the clause. Each row is a test here. That the table covers every TODO and names real checks of its
TODO and existing examples is a requirement (``kvkit.requirements.the_contract_table_covers_every_todo``, run by
``test_requirements.py``).
"""

from __future__ import annotations

import re

import pytest

from kvkit.requirements import CONTRACT_ROW
from layouts_support import per_assignment
from message_rules import internal_identifiers, wrong_plurals
from selfcheck_support import pinned_hints

pytestmark = pytest.mark.slow

def rows(layout) -> list[tuple[int, str, list[str], str]]:
    """The rows of ``layout``'s contract table: ``(todo, clause, checks, body)``."""
    found = []
    for line in layout.contract.read_text().splitlines():
        match = CONTRACT_ROW.match(line)
        if match:
            todo, clause, checks, body = match.groups()
            found.append((int(todo), clause, re.findall(r"`(test_\w+(?:\[\*\])?)`", checks), body))
    return found


@pytest.fixture
def outcomes(body_checks):
    """Check results of each example body named in a table: those of the checks that run the body's TODO, or every
    check's where ``test_feedback.py`` checks the body too (each checked once per session)."""
    def results(layout, body):
        return body_checks(layout, body, only_its_todo=body not in pinned_hints(layout))[1]

    return results


@pytest.mark.parametrize("layout,todo,clause,checks,body",
                         per_assignment(rows, lambda row: f"todo{row[0]}:{row[3].split('/')[-1]}"))
def test_breaking_the_clause_fails_its_checks(outcomes, layout, todo, clause, checks, body):
    results = outcomes(layout, body)
    for check in checks:
        if check.endswith("[*]"):
            cases = [r for name, r in results.items() if name.startswith(check[:-3] + "[")]
        else:
            cases = [results[check]] if check in results else []
        assert cases, f"{check} is not a graded check that runs TODO {todo}"
        assert not all(r.passed for r in cases), f"{body} breaks {clause!r}, yet {check} passes"
        assert all(r.todo == todo for r in cases), f"{check} belongs to another TODO than {clause!r}"
    internal = internal_identifiers(layout)
    for name, result in results.items():  # what the student reads: no internal names, no "1 positions"
        if not result.passed:
            assert not internal.search(result.message), f"{body}, {name}: {result.message}"
            assert not wrong_plurals(result.message), f"{body}, {name}: {result.message}"

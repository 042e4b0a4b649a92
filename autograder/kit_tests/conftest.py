"""Shared fixtures of the kit's own tests: grade reports computed once per session.

One session checks one assignment (``KVKIT_ASSIGNMENT``, else the first listed): ``make test`` runs every kit test
for part 1, then the ``every_assignment`` ones for each other assignment.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kvkit.examples import write_example
from kvkit.grade import grade
from kvkit.paths import ASSIGNMENTS, REFERENCE


collect_ignore = ["toy"]  # a second assignment's files, which test_second_assignment.py builds a kit with


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: an end-to-end kit test (real nbgrader, kernels, a grader per "
                                       "submission); `make check` leaves it to `make test`")
    config.addinivalue_line("markers", "every_assignment: a promise every assignment keeps; `make test` runs these "
                                       "once per assignment (KVKIT_ASSIGNMENT chooses it), the rest for part 1")


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """``graded(name)``: the report of ``kvkit grade`` on ``reference``, ``assignments`` or an example."""
    reports = {}

    def get(name: str):
        if name not in reports:
            if name == "reference":
                folder = REFERENCE
            elif name == "assignments":
                folder = ASSIGNMENTS
            else:
                folder = write_example(name, tmp_path_factory.mktemp(name))
            reports[name] = grade(Path(folder))
        return reports[name]

    return get

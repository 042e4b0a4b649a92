"""Shared fixtures of the kit's own tests: the assignment a test is about, and grade reports computed once per session.

One session checks every assignment: a test that every assignment must pass takes the ``layout`` fixture,
parametrized over :func:`kvkit.paths.layouts` (its ids are the assignments' names, e.g. ``[kv_serving]``); a test
about one assignment's own material names it (``Layout.named("kv_cache")``, :data:`layouts_support.PART1`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kvkit.examples import write_example
from kvkit.grade import grade
from kvkit.paths import Layout
from layouts_support import LAYOUTS


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: an end-to-end kit test (real nbgrader, kernels, a grader per "
                                       "submission); `make check` leaves it to `make test`")


@pytest.fixture(params=LAYOUTS, ids=lambda layout: layout.assignment.name)
def layout(request) -> Layout:
    """Each of the kit's assignments in turn."""
    return request.param


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """``graded(layout, name)``: the report of ``kvkit grade`` on ``layout``'s ``reference``, ``assignments`` or an
    example, computed once per session and assignment."""
    reports = {}

    def get(layout: Layout, name: str):
        key = (layout.assignment.name, name)
        if key not in reports:
            if name == "reference":
                folder = layout.reference
            elif name == "assignments":
                folder = layout.skeleton
            else:
                folder = write_example(layout, name, tmp_path_factory.mktemp(f"{key[0]}-{name}"))
            reports[key] = grade(layout, Path(folder))
        return reports[key]

    return get

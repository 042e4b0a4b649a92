"""The kit's assignments as test parameters: a test that every assignment must pass runs once per assignment."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable

import pytest

from kvkit.paths import Layout, layouts

LAYOUTS = layouts()
PART1 = Layout.named("kv_cache")  # the first assignment, whose own material some tests are about
# for the tests that run nbgrader: a skip when it is not installed, without importing it at collection (seconds)
NEEDS_NBGRADER = pytest.mark.skipif(importlib.util.find_spec("nbgrader") is None, reason="nbgrader is not installed")


def per_assignment(values: Callable[[Layout], Iterable[tuple]],
                   ids: Callable[[tuple], str] = lambda value: str(value[0])) -> list:
    """``pytest.param(layout, *value)`` for each assignment's layout and each ``value`` (a tuple) of
    ``values(layout)``, with the id ``NAME-ID`` (``ids(value)``): for a test parametrized by the assignment and by
    what it holds (its examples, its courses, its contract's rows)."""
    return [pytest.param(layout, *value, id=f"{layout.assignment.name}-{ids(value)}")
            for layout in LAYOUTS for value in values(layout)]

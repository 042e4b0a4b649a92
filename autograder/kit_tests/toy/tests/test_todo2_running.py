"""TODO 2: RunningSum.add keeps the running total."""

import pytest

from kvchecks import expect

pytestmark = pytest.mark.todo2


@pytest.mark.points(2)
def test_add_returns_the_running_total(probe, expected):
    values = [1.5, 2.0, -0.5]
    expect.equal(probe("running", values=values)["totals"], expected("running", values=values)["totals"],
                 "the totals after each add")

"""The toy assignment's hidden checks."""

import pytest

from kvchecks import expect


@pytest.mark.todo2
@pytest.mark.points(1)
def test_hidden_many_values(probe, expected):
    values = [float(v) for v in range(10)]
    expect.equal(probe("running", values=values)["totals"], expected("running", values=values)["totals"],
                 "the totals after ten adds")

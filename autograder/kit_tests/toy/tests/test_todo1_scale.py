"""TODO 1: Scaler.apply multiplies by the factor and leaves its input alone."""

import pytest

from kvchecks import expect

pytestmark = pytest.mark.todo1


@pytest.mark.points(2)
@pytest.mark.parametrize("factor", [3.0, -0.5])
def test_apply_multiplies_by_the_factor(probe, expected, factor):
    got, want = probe("scale", factor=factor, seed=1), expected("scale", factor=factor, seed=1)
    expect.close(got["y"], want["y"], "Scaler(factor).apply(x)")


@pytest.mark.points(1)
def test_apply_leaves_x_unchanged(probe):
    expect.that(probe("scale", factor=2.0, seed=2)["x_unchanged"], "apply changed its input x",
                hint="Return a new tensor (x * factor), not x scaled in place.")

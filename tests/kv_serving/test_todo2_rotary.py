"""TODO 2: apply_rotary: the rotate-half layout, per-row positions, a new tensor, ValueErrors.

The checks call apply_rotary on seeded tensors; the last one runs a whole model on a KVCache (provided) and so
also needs TODO 1. A failing output that equals what a known mistake computes gets that mistake's hint.
"""

import pytest

from kvchecks import expect
from kvchecks.i18n import N_, _
from kvserving_checks.configs_attention import LOGITS, ROPE_MODEL, ROTARY

pytestmark = pytest.mark.todo2

LAYOUT = N_("For i < hd/2 and a = positions[b, s] * base ** (-2i / hd): out[..., i] = x[..., i] cos a - x[..., i + "
            "hd/2] sin a and out[..., i + hd/2] = x[..., i + hd/2] cos a + x[..., i] sin a.")


def rotated(probe, expected, what, hint=None, **args):
    """apply_rotary's output for ``args`` against the reference's, with the known mistakes' outputs (``hint``
    defaults to the layout)."""
    hint = _(LAYOUT) if hint is None else hint
    got, want = probe("rotary", **args), expected("rotary", **args)
    out = expect.no_error(got, _("apply_rotary on x {shape}").format(shape=args['shape']))
    mistakes = {name: seen["value"] for name, seen in expected.mistakes("rotary", **args).items() if "value" in seen}
    expect.close(out, want["value"], what, hint=hint, mistakes=mistakes, **ROTARY)
    return got, want


@pytest.mark.points(2)
@pytest.mark.parametrize("shape", [[1, 1, 6, 8], [2, 3, 5, 6]], ids=["one_head", "three_heads"])
def test_rotation_matches_the_reference(probe, expected, shape):
    rotated(probe, expected, _("apply_rotary(x {shape}, positions 0 .. {last})").format(shape=shape, last=shape[2] - 1),
            shape=shape, seed=21)


@pytest.mark.points(3)
def test_each_row_uses_its_own_positions(probe, expected):
    positions = [[0, 1, 2, 3, 4], [0, 0, 0, 1, 2], [9, 10, 11, 12, 13]]  # the second row is left-padded
    rotated(probe, expected, _("apply_rotary(x [3, 2, 5, 8], positions {positions})").format(positions=positions),
            shape=[3, 2, 5, 8], seed=22, positions=positions,
            hint=_("Row b of the batch turns by positions[b, s], its own positions (with left padding the rows "
                   "differ). {layout}").format(layout=_(LAYOUT)))


@pytest.mark.points(2)
def test_the_base_argument_is_used(probe, expected):
    rotated(probe, expected, _("apply_rotary(x [1, 2, 4, 8], positions 0 .. 3, base=100.0)"), shape=[1, 2, 4, 8],
            seed=23, base=100.0, hint=_("The angle of pair i is position * base ** (-2i / hd), with the base given."))


@pytest.mark.points(2)
def test_position_zero_changes_nothing(probe):
    got = probe("rotary", shape=[2, 2, 3, 6], seed=24, positions=[[0, 0, 0], [0, 0, 0]])
    out = expect.no_error(got, _("apply_rotary at position 0"))
    expect.close(out, got["x"], _("apply_rotary(x, positions all 0) against x"), atol=1e-6, rtol=1e-6,
                 hint=_("At position 0 every angle is 0: cos 0 = 1 and sin 0 = 0 leave x as it is."))


@pytest.mark.points(3)
def test_dot_products_depend_only_on_the_offset(probe, expected):
    pairs = [[3, 0], [10, 7], [41, 38], [0, 5], [6, 11], [52, 57]]  # m - n = 3 three times, then -5 three times
    got = probe("rotary_dots", head_dim=8, seed=25, pairs=pairs)["dots"]
    for group in (range(0, 3), range(3, 6)):
        first = group[0]
        for i in group[1:]:
            what = _("rotated q at {m} . rotated k at {n}, against q at {first_m} . k at {first_n} (the same m - "
                     "n)").format(m=pairs[i][0], n=pairs[i][1], first_m=pairs[first][0], first_n=pairs[first][1])
            expect.close(got[i:i + 1], got[first:first + 1], what,
                         **ROTARY, hint=_("Rotating q by m and k by n turns their dot product by m - n only: each pair "
                                          "(x[..., i], x[..., i + hd/2]) is rotated as a 2-d vector, a rotation that "
                                          "keeps lengths."))
    expect.close(got, expected("rotary_dots", head_dim=8, seed=25, pairs=pairs)["dots"],
                 _("dot products of rotated q and k"), hint=_(LAYOUT), **ROTARY)


@pytest.mark.points(2)
def test_x_is_left_unchanged(probe):
    for positions in ([[0, 1, 2, 3]], [[5, 5, 5, 5]]):
        got = probe("rotary", shape=[1, 2, 4, 6], seed=26, positions=positions)
        expect.no_error(got, "apply_rotary")
        what = _("x was changed by apply_rotary(x, {positions})").format(positions=positions)
        expect.equal(got["x_changed"], False, what,
                     hint=_("Leave x as it is: compute the rotation into a new tensor (no in-place writes into x)."))


@pytest.mark.points(2)
def test_a_new_tensor_is_returned(probe):
    for positions in ([[0, 0, 0, 0]], [[2, 3, 4, 5]]):
        got = probe("rotary", shape=[1, 2, 4, 6], seed=27, positions=positions)
        expect.no_error(got, "apply_rotary")
        expect.equal([got["is_x"], got["shares_memory"]], [False, False],
                     _("[result is x, result shares x's memory] for positions {positions}").format(
                         positions=positions),
                     hint=_("Return a new tensor, also where positions are 0: the caller may change either later."))


@pytest.mark.points(2)
def test_dtype_and_shape_are_kept(probe, expected):
    for dtype, tolerance in (("float64", ROTARY), ("bfloat16", dict(atol=0.05, rtol=0.02))):
        args = dict(shape=[2, 1, 3, 4], seed=28, positions=[[0, 1, 2], [4, 5, 6]], dtype=dtype)
        got, want = probe("rotary", **args), expected("rotary", **args)
        out = expect.tensor(expect.no_error(got, _("apply_rotary on {dtype} x").format(dtype=dtype)),
                            _("apply_rotary's result"))
        expect.equal([str(out.dtype), list(out.shape)], [f"torch.{dtype}", args["shape"]],
                     _("[dtype, shape] of the result for {dtype} x {shape}").format(dtype=dtype, shape=args['shape']),
                     hint=_("Return x's shape and dtype: compute the angles in any precision, then cast cos and sin "
                            "(or the result) to x.dtype."))
        mistakes = {name: seen["value"] for name, seen in expected.mistakes("rotary", **args).items()
                    if "value" in seen}
        expect.close(out, want["value"], _("apply_rotary on {dtype} x").format(dtype=dtype), hint=_(LAYOUT),
                     mistakes=mistakes, **tolerance)


@pytest.mark.points(1)
def test_an_odd_head_size_raises_value_error(probe):
    got = probe("rotary", shape=[1, 2, 3, 5], seed=29)
    expect.raised(got, "value_error", _("apply_rotary on x [1, 2, 3, 5] (head size 5)"),
                  hint=_("The pairs (i, i + hd/2) need an even head size: raise ValueError when hd is odd."))


@pytest.mark.points(2)
def test_misshapen_positions_raise_value_error(probe):
    # x is [1, 2, 3, 4], so positions must be [1, 3]: one too long, 1-d, one row too many, 3-d
    for positions in ([[0, 1, 2, 3]], [0, 1, 2], [[0, 1, 2], [0, 1, 2]], [[[0], [1], [2]]]):
        got = probe("rotary", shape=[1, 2, 3, 4], seed=30, positions=positions)
        expect.raised(got, "value_error", _("apply_rotary on x [1, 2, 3, 4] with positions {positions}").format(
            positions=positions), hint=_("positions must be [B, S] for x's B and S: raise ValueError otherwise."))


@pytest.mark.points(3)
@pytest.mark.uses(1)
def test_chunked_prefill_with_rotation_equals_one_shot(probe, expected):
    args = dict(config=ROPE_MODEL, seed=31, batch=2, length=10)
    got = probe("model_run", chunks=[3, 5, 2], **args)
    want = expected("model_run", chunks=[10], **args)
    expect.close(got["logits"], want["logits"], _("logits of a rotary model's prefill in chunks of 3, 5 and 2 against "
                                                  "one chunk of 10"), needs=(1,), **LOGITS,
                 hint=_("The model gives each chunk the positions current_length .. current_length + S - 1, and each "
                        "token turns by the position it is given: a chunk continues where the cache left off."))

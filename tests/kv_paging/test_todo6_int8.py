"""TODO 6: Int8KVCache.update: each new row (one position, one head) stored as int8 with its own absmax scale, in
place at current_length, and every stored position read back as q * s.

The probe fills the int8 buffers with -128 and the scales with -1 (values update never writes), so an untouched
entry shows, and gives rows whose steps x / s are never near a tie, so rounding has one answer. The last check runs
a whole model on the int8 cache (the model is provided).
"""

import pytest

from kvchecks import expect
from kvchecks.i18n import N_, _, ngettext
from kvpaging_checks.checking import mistake_hint, raised
from kvpaging_checks.configs import INT8, MODEL

pytestmark = pytest.mark.todo6

SCALE = N_("Each row x (one position, one head: head_dim numbers) gets its own scale s = max|x| / 127, into "
           "key_scales[layer, t, h] (value_scales for values).")
ROUND = N_("The stored int8 is round(x / s), to the nearest integer (not truncated toward zero), in -127 .. 127.")
READ = N_("update returns new tensors [current_length + n, Hkv, hd]: every stored position of the layer read back "
          "as q * s, the new ones too.")
PLACE = N_("Position t = current_length + i goes to index t of keys[layer] and key_scales[layer] (values likewise), "
           "in place; nothing else changes: other layers, other positions, current_length.")
NAMES = ("keys", "values", "key_scales", "value_scales")


def update(layer: int, n: int, **extra) -> dict:
    return {"op": "update", "layer": layer, "n": n, **extra}


def run(probe, expected, ops, config=INT8):
    args = dict(config=config, ops=ops, seed=59)
    got, want = probe("int8_ops", **args), expected("int8_ops", **args)
    return got["steps"], want["steps"], expected.mistakes("int8_ops", **args)


def check_buffers(got, want, mistakes, which, hint):
    """After each update, the buffers named in ``which`` (indices into NAMES) exactly as the reference's."""
    for i, (step, ref) in enumerate(zip(got, want)):
        expect.no_error(step, _("update number {number}").format(number=i + 1))
        seen = {name: m["steps"][i] for name, m in mistakes.items() if i < len(m["steps"])}
        for index in which:
            mine, right = step["buffers"][index], ref["buffers"][index]
            what = _("cache.{name} after update number {number}").format(name=NAMES[index], number=i + 1)
            expect.close(mine.double(), right.double(), what, atol=0, rtol=1e-6,
                         hint=mistake_hint(seen, lambda s, k=index: s["buffers"][k], mine) or hint)


def check_returned(got, want, mistakes, hint):
    for i, (step, ref) in enumerate(zip(got, want)):
        expect.no_error(step, _("update number {number}").format(number=i + 1))
        returned = step["returned"]
        expect.that(isinstance(returned, list) and len(returned) == 2,
                    _("update should return a (keys, values) tuple, got {returned!r}").format(returned=returned))
        seen = {name: m["steps"][i] for name, m in mistakes.items() if i < len(m["steps"])}
        for j, kind in enumerate(("keys", "values")):
            expect.close(returned[j], ref["returned"][j], _("{kind} returned by update number {number}").format(
                kind=kind, number=i + 1), atol=1e-7, rtol=1e-6,
                hint=mistake_hint(seen, lambda s, k=j: s["returned"][k], returned[j]) or hint)


PREFILL_AND_DECODE = [update(0, 4, magnitudes=[1.0, 0.01, 30.0, 2.0]), {"op": "set_length", "value": 4},
                      update(0, 1, magnitudes=[0.5]), {"op": "set_length", "value": 5},
                      update(0, 2, magnitudes=[8.0, 0.125]), {"op": "set_length", "value": 7}]


@pytest.mark.points(4)
def test_each_row_gets_its_own_absmax_scale(probe, expected):
    got, want, mistakes = run(probe, expected, PREFILL_AND_DECODE)
    check_buffers(got, want, mistakes, (2, 3), _("Positions of very different sizes (0.01 to 30) each keep 127 levels "
                                                 "of their own. {scale}").format(scale=_(SCALE)))


@pytest.mark.points(3)
def test_int8_values_round_to_the_nearest_step(probe, expected):
    got, want, mistakes = run(probe, expected, PREFILL_AND_DECODE)
    check_buffers(got, want, mistakes, (0, 1), _("{round} {scale}").format(round=_(ROUND), scale=_(SCALE)))


@pytest.mark.points(3)
def test_every_stored_position_is_read_back(probe, expected):
    got, want, mistakes = run(probe, expected, PREFILL_AND_DECODE)
    check_returned(got, want, mistakes, _(READ))


@pytest.mark.points(3)
def test_the_error_is_at_most_half_a_step(probe, expected):
    got, want, mistakes = run(probe, expected, PREFILL_AND_DECODE)
    for i, step in enumerate(got):
        expect.no_error(step, _("update number {number}").format(number=i + 1))
        seen = {name: m["steps"][i] for name, m in mistakes.items() if i < len(m["steps"])}
        start = step["length_after"]
        for j, kind in enumerate(("keys", "values")):
            given = step["given"][j].double()
            back = expect.tensor(step["returned"][j], _("{kind} returned by update number {number}").format(
                kind=kind, number=i + 1))
            if back.shape[0] < start + given.shape[0]:
                expect.fail(ngettext("{kind} returned by update number {number} hold {got} position, expected "
                                     "{want}.", "{kind} returned by update number {number} hold {got} positions, "
                                     "expected {want}.", back.shape[0]).format(
                    kind=kind, number=i + 1, got=back.shape[0], want=start + given.shape[0]), _(READ))
            error = (back[start:start + given.shape[0]].double() - given).abs()
            bound = given.abs().amax(dim=-1, keepdim=True) / 254 * (1 + 1e-4) + 1e-9
            worst = float((error / bound).max())
            expect.that(worst <= 1, _("{kind} of update number {number} read back: the largest error is {worst:.2f} "
                                      "times max|x| / 254 (half a step), which it must not exceed").format(
                kind=kind, number=i + 1, worst=worst),
                hint=mistake_hint(seen, lambda s, k=j: s["returned"][k], step["returned"][j]) or _(ROUND))


@pytest.mark.points(2)
def test_a_row_of_zeros_is_stored_as_zeros(probe, expected):
    ops = [update(1, 3, magnitudes=[1.0, 4.0, 0.25], zero_rows=[[0, 1], [2, 0], [2, 2]])]
    got, want, mistakes = run(probe, expected, ops)
    hint = _("A row of zeros has max|x| = 0: its scale is 0 and its int8 values are 0 (x / s would be 0 / 0, NaN); it "
             "reads back as zeros.")
    check_buffers(got, want, mistakes, (0, 1, 2, 3), hint)
    check_returned(got, want, mistakes, hint)


@pytest.mark.points(2)
def test_new_positions_are_written_in_place_at_current_length(probe, expected):
    ops = [{"op": "set_length", "value": 3}, update(1, 2, magnitudes=[3.0, 0.2]), {"op": "set_length", "value": 5},
           update(1, 4), {"op": "set_length", "value": 9}, update(1, 3, magnitudes=[0.05])]
    got, want, mistakes = run(probe, expected, ops)
    for i, step in enumerate(got):
        expect.no_error(step, _("update number {number}").format(number=i + 1))
        expect.equal(step["same_buffers"], True, _("after update number {number}, the cache holds the int8 tensors "
                                                   "and scales made in __init__").format(number=i + 1),
                     hint=_("The int8 buffers are the cache's memory: write into them in place (index assignment); "
                            "never replace them or keep float copies."))
    check_buffers(got, want, mistakes, (0, 1, 2, 3), _(PLACE))


@pytest.mark.points(2)
def test_update_leaves_current_length_and_other_layers_alone(probe, expected):
    ops = [update(0, 3), {"op": "set_length", "value": 3}, update(1, 2), {"op": "set_length", "value": 5},
           update(0, 1)]
    got, want, mistakes = run(probe, expected, ops)
    expect.equal([step["length_after"] for step in got], [0, 3, 5],
                 _("current_length right after each update (the probe advances it in between)"),
                 hint=_("Every layer calls update in one forward, so update must not change current_length: the "
                        "model advances it once, after its last layer."))
    check_buffers(got, want, mistakes, (0, 1, 2, 3), _(PLACE))


BAD = {
    "layer_out_of_range": (update(2, 1), "IndexError"),
    "negative_layer": (update(-1, 1), "IndexError"),
    "wrong_head_size": (update(0, 2, keys_shape=[2, 3, 4], values_shape=[2, 3, 4]), "ValueError"),
    "keys_and_values_differ": (update(0, 2, values_shape=[3, 3, 8]), "ValueError"),
    "past_max_seq_len": (update(0, 13), "ValueError"),
}


@pytest.mark.points(2)
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_updates_raise_and_change_nothing(probe, expected, case):
    op, kind = BAD[case]
    got, want, _mistakes = run(probe, expected, [op])
    what = ngettext("update(layer={layer}) of {n} position ({case})", "update(layer={layer}) of {n} positions "
                    "({case})", op["n"]).format(layer=op["layer"], n=op["n"], case=case.replace("_", " "))
    raised(got[0], kind, what,
           _("Check first: IndexError for a layer out of range, ValueError for tensors that are not both [n, Hkv, "
             "hd] or positions past max_seq_len (check_update does these)."))
    for index, name in enumerate(NAMES):
        expect.close(got[0]["buffers"][index].double(), want[0]["buffers"][index].double(),
                     _("cache.{name} after the refused update").format(name=name), atol=0, rtol=0,
                     hint=_("A refused update writes nothing."))


@pytest.mark.points(3)
def test_a_model_on_the_int8_cache_stays_close_to_the_model_without_one(probe, expected):
    args = dict(config=MODEL, seed=53, prompt=[3, 14, 15, 9, 2, 6, 5, 35, 8, 9], max_new_tokens=8, max_seq_len=24)
    got, want = probe("int8_model", **args), expected("int8_model", **args)
    difference = float((got["logits"] - got["uncached"]).abs().max())
    expect.that(difference <= 0.25, _("the largest difference between the logits on the int8 cache and the model "
                                      "without a cache is {difference:.3g}, above 0.25").format(difference=difference),
                hint=_("Half a step per element keeps every logit of this model within a few hundredths: {scale} "
                       "{round}").format(scale=_(SCALE), round=_(ROUND)))
    expect.equal(got["tokens"], want["tokens"], _("8 greedy tokens on the int8 cache"),
                 hint=_("{scale} {round} {read}").format(scale=_(SCALE), round=_(ROUND), read=_(READ)))
    expect.equal(got["nbytes"], want["nbytes"], _("nbytes() of the int8 cache"),
                 hint=_("The int8 cache holds what __init__ made: int8 buffers and float32 scales."))


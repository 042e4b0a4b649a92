"""TODO 5: KVCache.crop: current_length becomes length, every buffer value stays, the next update writes from
length on, and a length outside 0 .. current_length raises ValueError and changes nothing.

The probe fills the cache with seeded keys and values through the provided KVCache.update, so these checks run
crop alone; the last one rolls back a real model's cache (TODOs 1 and 2 too).
"""

import pytest

from kvchecks import expect
from kvchecks.i18n import N_, _
from kvserving_checks.configs_generation import CACHE, LOGITS, MODEL

pytestmark = pytest.mark.todo5

WHOLE_MODEL = (1, 2)  # the TODOs a check of the whole model also runs
KEEP = N_("crop changes current_length only: leave the buffers as they are (no zeroing, slicing or new tensors); "
          "the positions from length on are unused space again, and the next update overwrites them.")


def write(n: int) -> dict:
    return {"op": "write", "n": n}


def crop(length: int) -> dict:
    return {"op": "crop", "length": length}


def run(probe, expected, ops):
    """The student's and the reference's steps through ``ops``."""
    args = dict(config=CACHE, seed=5, ops=ops)
    return probe("crop_ops", **args)["steps"], expected("crop_ops", **args)["steps"]


def length_hint(got, asked: int) -> str:
    """What a wrong ``current_length`` after ``crop(asked)`` says (a true statement about ``got``)."""
    rule = _("After crop(length), current_length == length: the first length positions stay.")
    if got == asked - 1:
        return _("crop({asked}) left one position fewer than asked. {rule}").format(asked=asked, rule=rule)
    if got == asked + 1:
        return _("crop({asked}) left one position more than asked. {rule}").format(asked=asked, rule=rule)
    return rule


def same_buffers(step, want, what: str, hint: str | None = None) -> None:
    """The cache holds its own buffers, bit for bit equal to the reference's (``what``: when, e.g. "after crop(4)";
    ``hint`` defaults to :data:`KEEP`)."""
    hint = _(KEEP) if hint is None else hint
    expect.equal(step["same_buffers"], True,
                 _("cache.keys/values {when} still hold the tensors allocated in __init__").format(when=what),
                 hint=hint)
    for kind in ("keys", "values"):
        for layer, (mine, right) in enumerate(zip(step[kind], want[kind])):
            expect.close(mine, right, _("cache.{kind}[{layer}] {when}").format(kind=kind, layer=layer, when=what),
                         atol=0, rtol=0, hint=hint)


@pytest.mark.points(4)
def test_crop_sets_current_length(probe, expected):
    got, _reference = run(probe, expected, [write(7), crop(4)])
    expect.no_error(got[1], _("crop(4) of a cache holding 7 positions"))
    expect.equal(got[1]["length"], 4, _("current_length after crop(4)"), hint=length_hint(got[1]["length"], 4))


@pytest.mark.points(3)
def test_crop_keeps_every_buffer_value(probe, expected):
    got, want = run(probe, expected, [write(7), crop(4)])
    expect.no_error(got[1], _("crop(4) of a cache holding 7 positions"))
    expect.equal(got[1]["unchanged"], True, _("every buffer value bit for bit as before crop(4)"), hint=_(KEEP))
    same_buffers(got[1], want[1], _("after crop(4)"))


@pytest.mark.points(4)
def test_the_next_update_overwrites_from_length(probe, expected):
    got, want = run(probe, expected, [write(7), crop(3), write(2)])
    expect.no_error(got[1], _("crop(3) of a cache holding 7 positions"))
    expect.no_error(got[2], _("update of 2 positions after crop(3)"))
    expect.equal(got[2]["length"], 5, _("current_length after crop(3) and 2 new positions"),
                 hint=length_hint(got[1]["length"], 3))
    hint = _("After crop(3) the next update writes positions 3 and 4 and returns positions 0 .. 4; position 5 and 6 "
             "keep their old values. {rule}").format(rule=length_hint(got[1]["length"], 3))
    for layer, (mine, right) in enumerate(zip(got[2]["returned"], want[2]["returned"])):
        for name, actual, reference in zip(("keys", "values"), mine, right):
            expect.close(actual, reference, _("{name} that update(layer={layer}) returned after crop(3)").format(
                name=name, layer=layer), atol=0, rtol=0, hint=hint)
    same_buffers(got[2], want[2], _("after crop(3) and 2 new positions"), hint=hint)


@pytest.mark.points(2)
def test_crop_to_current_length_changes_nothing(probe, expected):
    got, want = run(probe, expected, [write(5), crop(5), write(2)])
    expect.no_error(got[1], _("crop(5) of a cache holding 5 positions"))
    expect.equal(got[1]["length"], 5, _("current_length after crop(current_length)"),
                 hint=length_hint(got[1]["length"], 5))
    expect.equal(got[1]["unchanged"], True, _("every buffer value bit for bit as before crop(current_length)"),
                 hint=_(KEEP))
    expect.no_error(got[2], _("update of 2 positions after crop(5)"))
    same_buffers(got[2], want[2], _("after crop(5) and 2 new positions"),
                 hint=_("crop(current_length) changes nothing."))


@pytest.mark.points(2)
def test_crop_to_zero_empties_the_cache(probe, expected):
    got, want = run(probe, expected, [write(6), crop(0), write(3)])
    expect.no_error(got[1], _("crop(0) of a cache holding 6 positions"))
    expect.equal(got[1]["length"], 0, _("current_length after crop(0)"), hint=length_hint(got[1]["length"], 0))
    expect.no_error(got[2], _("update of 3 positions after crop(0)"))
    for layer, (mine, right) in enumerate(zip(got[2]["returned"], want[2]["returned"])):
        what = _("keys that update(layer={layer}) returned after crop(0)").format(layer=layer)
        expect.close(mine[0], right[0], what, atol=0, rtol=0,
                     hint=_("After crop(0) the next update writes from position 0 and returns its own positions "
                            "only."))


@pytest.mark.points(2)
def test_a_negative_length_raises_value_error_and_changes_nothing(probe, expected):
    got, want = run(probe, expected, [write(6), crop(-1)])
    expect.raised(got[1], "value_error", "crop(-1)", hint=_("A length must be 0 <= length <= current_length."))
    expect.equal(got[1]["length"], 6, _("current_length after the refused crop(-1)"),
                 hint=_("Check the length before changing anything."))
    expect.equal(got[1]["unchanged"], True, _("every buffer value after the refused crop(-1)"), hint=_(KEEP))
    same_buffers(got[1], want[1], _("after the refused crop(-1)"))


@pytest.mark.points(3)
def test_a_length_past_current_length_raises_value_error_and_changes_nothing(probe, expected):
    got, want = run(probe, expected, [write(6), crop(7), crop(CACHE["max_seq_len"])])
    for step, asked in zip(got[1:], (7, CACHE["max_seq_len"])):
        expect.raised(step, "value_error", _("crop({asked}) of a cache holding 6 positions").format(asked=asked),
                      hint=_("A crop never grows the cache: length must be at most current_length."))
        expect.equal(step["length"], 6, _("current_length after the refused crop({asked})").format(asked=asked),
                     hint=_("Check the length before changing anything."))
        expect.equal(step["unchanged"], True, _("every buffer value after the refused crop({asked})").format(
            asked=asked), hint=_(KEEP))
    same_buffers(got[2], want[2], _("after the refused crops"))


@pytest.mark.points(4)
@pytest.mark.uses(1, 2)
def test_crop_then_continue_equals_never_having_gone_further(probe, expected):
    turns = [[3, 14, 15, 9, 2], [6, 5, 35, 8], [9, 7, 9]]
    args = dict(config=MODEL, seed=23, turns=turns, crop_to=6)
    got, want = probe("crop_model", **args), expected("crop_model", **args)
    expect.no_error(got["crop"], _("crop(6) of a real model's cache holding 9 positions"), needs=WHOLE_MODEL)
    expect.equal(got["lengths"], want["lengths"], _("current_length after the prefill, 4 decode steps, crop(6) and 3 "
                                                    "more tokens"), hint=length_hint(got["lengths"][2], 6),
                 needs=WHOLE_MODEL)
    expect.close(got["continued"], want["straight"], _("logits of 3 tokens fed after crop(6), against a model that "
                                                       "never saw positions 6 .. 8"),
                 hint=_("The rolled-back positions must be overwritten, never attended to."),
                 needs=WHOLE_MODEL, **LOGITS)

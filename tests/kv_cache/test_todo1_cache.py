"""TODO 1: KVCache.update writes in place, at current_length, into one layer, and returns views.

The probe fills every buffer with one value first and writes keys whose
entries spell out where they belong (``kvchecks.replay.synthetic_kv``), so a misplaced
entry says which position it was meant for.
"""

import pytest

from kvchecks import expect
from kvchecks.i18n import N_, _
from kvcache_checks.configs import CACHE

pytestmark = pytest.mark.todo1

# current_length is 3, then layer 1 receives 2 positions: they belong at 3 and 4.
AT_OFFSET = [{"op": "set_length", "value": 3}, {"op": "update", "layer": 1, "n": 2}]
# a prefill of 4 positions, then a decode step of 1 at position 4, in layer 0.
PREFILL_DECODE = [{"op": "update", "layer": 0, "n": 4}, {"op": "set_length", "value": 4},
                  {"op": "update", "layer": 0, "n": 1}]
REPLACED = N_("update replaced cache.keys[layer] or cache.values[layer] with a new tensor (torch.cat, or an "
              "assignment such as cache.keys[layer] = ...) instead of writing into the buffer allocated in "
              "__init__: the cache is preallocated, so write into it in place (e.g. "
              "cache.keys[layer][:, :, start:end] = new_keys).")


def run(probe, expected, ops, config=CACHE):
    got = probe("cache_ops", config=config, ops=ops)
    want = expected("cache_ops", config=config, ops=ops)
    return got["steps"], want["steps"], want["fill"]


def misplacement(got, want, fill) -> str:
    """Where the first wrong entry of a buffer came from, read off the synthetic values (a true statement)."""
    wrong = (got != want).nonzero()
    if not len(wrong):
        return ""
    index = tuple(int(i) for i in wrong[0])
    position, value, meant = index[2], float(got[index]), float(want[index])
    if value == fill:
        return _("position {position} was not written (it still holds the initial value {fill:g}).").format(
            position=position, fill=fill)
    source = int(abs(value)) % 100  # a synthetic entry: 10000 * tag + 1000 * row + 100 * head + position + ...
    if abs(value) >= 10000 and source != position:
        return _("position {position} holds the entry meant for position {source}.").format(position=position,
                                                                                            source=source)
    if meant == fill:
        return _("position {position} should not have been written (only [current_length, current_length + n) "
                 "are), but it holds {value:g}.").format(position=position, value=value)
    if value == -meant:
        return _("position {position} holds the new key where its value belongs, or the other way round (here "
                 "values = -keys): new_keys go to keys[layer], new_values to values[layer].").format(
                     position=position)
    return _("position {position} holds {value:g}, expected {meant:g}: it comes from another layer, batch row or "
             "head.").format(position=position, value=value, meant=meant)


def check_buffers(step, want_step, layers, fill, hint=""):
    expect.equal(step["same_buffers"], True, _("cache.keys/values still hold the tensors allocated in __init__"),
                 hint=_(REPLACED))
    for layer in layers:
        for kind in ("keys", "values"):
            got, want = step[kind][layer], want_step[kind][layer]
            if got.shape == want.shape and (got != want).any():
                expect.fail(_("cache.{kind}[{layer}] after update differs from the reference: {detail}").format(
                    kind=kind, layer=layer, detail=misplacement(got, want, fill)), hint)
            expect.close(got, want, _("cache.{kind}[{layer}] after update").format(kind=kind, layer=layer), atol=0,
                         rtol=0, hint=hint)


@pytest.mark.points(3)
def test_update_writes_at_current_length(probe, expected):
    got, want, fill = run(probe, expected, AT_OFFSET)
    expect.no_error(got[0], _("update(1, keys, values) with current_length=3"))
    check_buffers(got[0], want[0], [1], fill, _("New entries belong at positions [current_length, "
                                                "current_length + n) of keys[layer] and values[layer]."))


@pytest.mark.points(2)
def test_update_writes_only_the_named_layer(probe, expected):
    got, want, fill = run(probe, expected, AT_OFFSET)
    expect.no_error(got[0], "update(1, keys, values)")
    check_buffers(got[0], want[0], [0, 2], fill, _("Writing layer 1 must leave layers 0 and 2 untouched."))


@pytest.mark.points(1)
def test_update_keeps_keys_and_values_apart(probe, expected):
    got, want, fill = run(probe, expected, AT_OFFSET)
    expect.no_error(got[0], "update(1, keys, values)")
    check_buffers(got[0], want[0], [1], fill, _("new_values go to values[layer], new_keys to keys[layer]."))


@pytest.mark.points(2)
def test_update_fills_every_batch_row_and_head(probe, expected):
    got, want, fill = run(probe, expected, PREFILL_DECODE)
    for step in got:
        expect.no_error(step, "update(0, keys, values)")
    check_buffers(got[-1], want[-1], [0], fill, _("All {batch_size} batch rows and {num_heads} heads must be "
                                                  "written.").format(batch_size=CACHE["batch_size"],
                                                                     num_heads=CACHE["num_heads"]))


@pytest.mark.points(3)
def test_update_returns_the_filled_prefix(probe, expected):
    got, want, _fill = run(probe, expected, PREFILL_DECODE)
    expect.no_error(got[-1], _("update(0, keys, values) at current_length=4"))
    returned = got[-1]["returned"]
    expect.that(isinstance(returned, list) and len(returned) == 2,
                _("update should return a (keys, values) tuple, got {returned!r}").format(returned=returned))
    for name, actual, reference in zip(("keys", "values"), returned, want[-1]["returned"]):
        expect.close(actual, reference, _("returned {name}").format(name=name), atol=0, rtol=0,
                     hint=_("Return this layer's entries for positions [0, current_length + n), "
                            "each [batch_size, num_heads, current_length + n, head_dim]."))


@pytest.mark.points(3)
def test_returned_tensors_are_views_of_the_cache(probe):
    step = probe("cache_ops", config=CACHE, ops=PREFILL_DECODE)["steps"][-1]
    expect.no_error(step, "update(0, keys, values)")
    expect.equal(step["same_buffers"], True, _("cache.keys/values still hold the tensors allocated in __init__"),
                 hint=_(REPLACED))
    expect.equal(step.get("shares_storage"), [True, True], _("returned keys/values share memory with the cache"),
                 hint=_("Return slices (views) of keys[layer]/values[layer], not copies: attention reads the whole "
                        "prefix at every step, and a copy costs memory and time that grow with the context."))


@pytest.mark.points(3)
def test_buffers_are_never_reallocated(probe, expected):
    got, want, fill = run(probe, expected, PREFILL_DECODE)
    for step in got:
        expect.no_error(step, "update(0, keys, values)")
        expect.equal(step["same_buffers"], True,
                     _("cache.keys/values still hold the tensors allocated in __init__"), hint=_(REPLACED))
    check_buffers(got[-1], want[-1], [0], fill, _("The buffers allocated in __init__ must receive the data."))


@pytest.mark.points(2)
def test_update_leaves_current_length_alone(probe, expected):
    got, want, fill = run(probe, expected, AT_OFFSET)
    expect.no_error(got[0], "update(1, keys, values)")
    check_buffers(got[0], want[0], [1], fill,
                  _("New entries belong at positions [current_length, current_length + n)."))
    expect.equal(got[0]["length_after"], 3, _("current_length after update"),
                 hint=_("Every layer calls update in one forward pass, so update must not change current_length: "
                        "Transformer.forward advances it once, after its last layer."))


@pytest.mark.points(2)
def test_overflow_raises_and_changes_nothing(probe, expected):
    ops = [{"op": "set_length", "value": 8}, {"op": "update", "layer": 2, "n": 3},
           {"op": "update", "layer": 2, "n": 2}]
    got, want, fill = run(probe, expected, ops)
    expect.raised(got[0], "overflow", _("writing 3 positions at 8 with max_seq_len=10"))
    check_buffers(got[0], want[0], [0, 1, 2], fill, _("A refused write must leave the cache unchanged."))
    expect.equal(got[0]["length_after"], 8, _("current_length after the refused write"))
    expect.no_error(got[1], _("writing 2 positions at 8 with max_seq_len=10 (exactly fits)"))


@pytest.mark.points(1)
def test_bad_layer_index_raises_index_error(probe):
    for layer in (3, -1):
        step = probe("cache_ops", config=CACHE, ops=[{"op": "update", "layer": layer, "n": 1, "tag": 9}])["steps"][0]
        expect.raised(step, "index_error", _("update(layer={layer}) on a 3-layer cache").format(layer=layer),
                      hint=_("Valid layers are 0 <= layer < num_layers; a negative index must not wrap around."))


@pytest.mark.points(1)
@pytest.mark.parametrize("op", [
    {"op": "update", "layer": 0, "n": 2, "keys_shape": [2, 3, 2, 5], "values_shape": [2, 3, 2, 5]},
    {"op": "update", "layer": 0, "n": 2, "keys_shape": [1, 3, 2, 4], "values_shape": [1, 3, 2, 4]},
    {"op": "update", "layer": 0, "n": 2, "keys_shape": [2, 2, 2, 4], "values_shape": [2, 2, 2, 4]},
    {"op": "update", "layer": 0, "n": 2, "values_shape": [2, 3, 3, 4]},
    {"op": "update", "layer": 0, "n": 2, "keys_shape": [2, 3, 8], "values_shape": [2, 3, 8]},
], ids=["head_dim", "batch", "heads", "keys_vs_values", "three_dims"])
def test_mismatched_shapes_raise_value_error(probe, op):
    step = probe("cache_ops", config=CACHE, ops=[op])["steps"][0]
    what = _("update with keys {keys_shape} and values {values_shape} into a [2, 3, 10, 4] cache").format(
        keys_shape=op.get("keys_shape", [2, 3, 2, 4]), values_shape=op.get("values_shape", [2, 3, 2, 4]))
    expect.raised(step, "value_error", what)

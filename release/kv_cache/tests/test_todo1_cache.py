"""TODO 1: KVCache.update writes in place, at current_length, into one layer, and returns views."""

import pytest

from kvchecks import expect
from kvchecks.configs import CACHE

pytestmark = pytest.mark.todo1

# current_length is 3, then layer 1 receives 2 positions: they belong at 3 and 4.
AT_OFFSET = [{"op": "set_length", "value": 3}, {"op": "update", "layer": 1, "n": 2}]
# a prefill of 4 positions, then a decode step of 1 at position 4, in layer 0.
PREFILL_DECODE = [{"op": "update", "layer": 0, "n": 4}, {"op": "set_length", "value": 4},
                  {"op": "update", "layer": 0, "n": 1}]


def run(probe, expected, ops, config=CACHE):
    got = probe("cache_ops", config=config, ops=ops)["steps"]
    want = expected("cache_ops", config=config, ops=ops)["steps"]
    return got, want


def check_buffers(got, want, layers, hint):
    for layer in layers:
        for kind in ("keys", "values"):
            expect.close(got[kind][layer], want[kind][layer], 1, f"cache.{kind}[{layer}] after update", atol=0,
                         rtol=0, hint=hint)


@pytest.mark.points(2)
def test_update_writes_at_current_length(probe, expected):
    got, want = run(probe, expected, AT_OFFSET)
    expect.no_error(got[0], 1, "update(1, keys, values) with current_length=3")
    check_buffers(got[0], want[0], [1], "New entries belong at positions [current_length, current_length + n).")


@pytest.mark.points(2)
def test_update_writes_only_the_named_layer(probe, expected):
    got, want = run(probe, expected, AT_OFFSET)
    expect.no_error(got[0], 1, "update(1, keys, values)")
    check_buffers(got[0], want[0], [0, 2], "Writing layer 1 must leave layers 0 and 2 untouched.")


@pytest.mark.points(1)
def test_update_keeps_keys_and_values_apart(probe, expected):
    got, want = run(probe, expected, AT_OFFSET)
    expect.no_error(got[0], 1, "update(1, keys, values)")
    expect.close(got[0]["values"][1], want[0]["values"][1], 1, "cache.values[1]", atol=0, rtol=0,
                 hint="new_values go to values[layer], new_keys to keys[layer].")


@pytest.mark.points(1)
def test_update_fills_every_batch_row_and_head(probe, expected):
    got, want = run(probe, expected, PREFILL_DECODE)
    for step in got:
        expect.no_error(step, 1, "update(0, keys, values)")
    check_buffers(got[-1], want[-1], [0], f"All {CACHE['batch_size']} batch rows and {CACHE['num_heads']} heads "
                                          "must be written.")


@pytest.mark.points(2)
def test_update_returns_views_of_the_filled_prefix(probe, expected):
    got, want = run(probe, expected, PREFILL_DECODE)
    expect.no_error(got[-1], 1, "update(0, keys, values) at current_length=4")
    returned = got[-1]["returned"]
    expect.that(isinstance(returned, list) and len(returned) == 2, 1,
                f"update should return a (keys, values) tuple, got {returned!r}")
    for name, actual, reference in zip(("keys", "values"), returned, want[-1]["returned"]):
        expect.close(actual, reference, 1, f"returned {name}", atol=0, rtol=0,
                     hint="Return this layer's entries for positions [0, current_length + n).")


@pytest.mark.points(1)
def test_returned_views_share_memory_with_the_cache(probe):
    step = probe("cache_ops", config=CACHE, ops=PREFILL_DECODE)["steps"][-1]
    expect.no_error(step, 1, "update(0, keys, values)")
    expect.equal(step.get("shares_storage"), [True, True], 1, "returned keys/values share memory with the cache",
                 hint="Return slices (views) of keys[layer]/values[layer], not copies.")


@pytest.mark.points(2)
def test_buffers_are_never_reallocated(probe, expected):
    got, want = run(probe, expected, PREFILL_DECODE)
    for step in got:
        expect.no_error(step, 1, "update(0, keys, values)")
        expect.equal(step["same_buffers"], True, 1, "cache.keys/values hold the tensors allocated in __init__",
                     hint="Write into the preallocated buffers in place; never replace them (no torch.cat).")
    check_buffers(got[-1], want[-1], [0], "The buffers allocated in __init__ must receive the data.")


@pytest.mark.points(1)
def test_update_leaves_current_length_alone(probe):
    steps = probe("cache_ops", config=CACHE, ops=AT_OFFSET)["steps"]
    expect.no_error(steps[0], 1, "update(1, keys, values)")
    expect.equal(steps[0]["length_after"], 3, 1, "current_length after update",
                 hint="Transformer.forward advances it once per call, after its last layer; update must not.")


@pytest.mark.points(2)
def test_overflow_raises_and_writes_nothing(probe, expected):
    ops = [{"op": "set_length", "value": 8}, {"op": "update", "layer": 2, "n": 3},
           {"op": "update", "layer": 2, "n": 2}]
    got, want = run(probe, expected, ops)
    error = got[0].get("error")
    expect.that(error is not None and error["overflow"], 1,
                f"writing 3 positions at 8 with max_seq_len=10 should raise CacheOverflowError, got {error or 'no error'}")
    check_buffers(got[0], want[0], [2], "A refused write must leave the cache unchanged.")
    expect.no_error(got[1], 1, "writing 2 positions at 8 with max_seq_len=10 (exactly fits)")


@pytest.mark.points(1)
@pytest.mark.parametrize("layer", [3, -1])
def test_bad_layer_index_raises_index_error(probe, layer):
    step = probe("cache_ops", config=CACHE, ops=[{"op": "update", "layer": layer, "n": 1, "tag": 9}])["steps"][0]
    error = step.get("error")
    expect.that(error is not None and error["index_error"], 1,
                f"update(layer={layer}) on a 3-layer cache should raise IndexError, got {error or 'no error'}")


@pytest.mark.points(1)
@pytest.mark.parametrize("op", [
    {"op": "update", "layer": 0, "n": 2, "keys_shape": [2, 3, 2, 5], "values_shape": [2, 3, 2, 5]},
    {"op": "update", "layer": 0, "n": 2, "keys_shape": [1, 3, 2, 4], "values_shape": [1, 3, 2, 4]},
    {"op": "update", "layer": 0, "n": 2, "values_shape": [2, 3, 3, 4]},
], ids=["head_dim", "batch", "keys_vs_values"])
def test_mismatched_shapes_raise_value_error(probe, op):
    step = probe("cache_ops", config=CACHE, ops=[op])["steps"][0]
    error = step.get("error")
    expect.that(error is not None and error["value_error"], 1,
                f"update with keys {op.get('keys_shape', [2, 3, 2, 4])} and values "
                f"{op.get('values_shape', [2, 3, 2, 4])} into a [2, 3, 10, 4] cache should raise ValueError, "
                f"got {error or 'no error'}")

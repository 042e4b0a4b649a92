"""TODO 3: SinkWindowCache.update: return the stored slots then the new entries, write the ring in place.

The probe fills every buffer with one value first and writes keys whose entries spell out the position they
belong to (``kvchecks.replay.synthetic_kv``), so a misplaced entry says where it came from; it advances
current_length itself, as the model would. The last two checks run a whole model (and so TODO 1) through a chat
many times longer than the cache's budget.
"""

import pytest

from kvchecks import expect, mistakes as known
from kvchecks.i18n import N_, _
from kvserving_checks.configs_attention import CHAT, LOGITS, RING, WINDOW

pytestmark = pytest.mark.todo3

RULE = N_("Position t goes to slot t while t < sinks, else to slot sinks + (t - sinks) % window, over the position "
          "that was there.")
RETURNS = N_("update returns the stored() slots that held data before the call, in slot order, then the n new "
             "entries; read them before writing.")
REPLACED = N_("update replaced cache.keys[layer] or cache.values[layer] with a new tensor instead of writing into the "
              "buffer allocated in __init__: the cache is preallocated, so write into it in place (e.g. "
              "cache.keys[layer][:, :, slot] = new_keys[:, :, i]).")
# Where a wrong entry sits: in a buffer (slot) or in what update returned (returned entry).
PLACES = {"slot": N_("slot {index} (batch row {row}, head {head})"),
          "returned entry": N_("returned entry {index} (batch row {row}, head {head})")}


def update(layer: int, n: int) -> dict:
    return {"op": "update", "layer": layer, "n": n}


def steps(*chunks: int, layer: int = 0) -> list[dict]:
    """Updates of ``layer`` with ``chunks`` new positions each, advancing current_length after each (as the model)."""
    ops, start = [], 0
    for n in chunks:
        start += n
        ops += [update(layer, n), {"op": "set_length", "value": start}]
    return ops


def run(probe, expected, config, ops, buffers="each"):
    args = dict(config=config, ops=ops, seed=41, buffers=buffers)
    got, want = probe("window_ops", **args), expected("window_ops", **args)
    mistakes = {name: seen["steps"] for name, seen in expected.mistakes("window_ops", **args).items()}
    return got["steps"], want["steps"], want["fill"], mistakes


def entry(value: float, fill: float) -> str:
    """What one buffer value is: the initial fill, or the key or value of the position it spells out."""
    if value == fill:
        return _("the initial value {fill:g}").format(fill=fill)
    if abs(value) >= 10000:
        if value > 0:
            return _("position {position}'s key").format(position=int(abs(value)) % 100)
        return _("position {position}'s value").format(position=int(abs(value)) % 100)
    return f"{value:g}"


def misplacement(got, want, fill: float, place: str) -> str:
    """Where the first wrong entry along dim 2 is and what it holds instead, read off the synthetic values."""
    wrong = (got != want).nonzero()
    if not len(wrong):
        return ""
    index = tuple(int(i) for i in wrong[0])
    value, meant = float(got[index]), float(want[index])
    where = _(PLACES[place]).format(index=index[2], row=index[0], head=index[1])
    if value == -meant:
        return _("{where} holds {got} where {meant} belongs: new_keys go to keys[layer], new_values to "
                 "values[layer].").format(where=where, got=entry(value, fill), meant=entry(meant, fill))
    if min(abs(value), abs(meant)) >= 10000 and int(abs(value)) % 100 == int(abs(meant)) % 100:
        return _("{where} holds {value:g}, expected {meant:g}: the right position, from another batch row, head or "
                 "update.").format(where=where, value=value, meant=meant)
    if meant == fill:
        return _("{where} holds {got}, but it should still hold the initial value {fill:g}: an update writes only "
                 "the slots of its own positions.").format(where=where, got=entry(value, fill), fill=fill)
    return _("{where} holds {got}, expected {meant}.").format(where=where, got=entry(value, fill),
                                                             meant=entry(meant, fill))


def check_tensor(got, want, what, fill, place, hint, mistakes=None):
    """``got`` equal to ``want`` (exactly); a hint of a known mistake only when ``got`` equals that mistake's."""
    got = expect.tensor(got, what)
    if got.shape == want.shape and not bool((got == want).all()):
        diagnosed = [name for name, seen in (mistakes or {}).items()
                     if hasattr(seen, "shape") and seen.shape == got.shape and bool((seen == got).all())]
        expect.fail(_("{what}, against the reference: {detail}").format(
            what=what, detail=misplacement(got, want, fill, place)),
                    " ".join(known.hint(name) for name in diagnosed) or hint)
    expect.close(got, want, what, atol=0, rtol=0, hint=hint)


def check_buffers(got, want, fill, layers, hint, mistakes=None):
    """The buffers of ``layers`` after each update against the reference's."""
    for i, (step, ref) in enumerate(zip(got, want)):
        expect.no_error(step, _("update number {number}").format(number=i + 1))
        expect.equal(step["same_buffers"], True, _("cache.keys/values still hold the tensors allocated in __init__"),
                     hint=_(REPLACED))
        if "keys" not in ref:
            continue
        for layer in layers:
            for kind in ("keys", "values"):
                seen = {name: steps_[i][kind][layer] for name, steps_ in (mistakes or {}).items()
                        if i < len(steps_) and kind in steps_[i]}
                check_tensor(step[kind][layer], ref[kind][layer],
                             _("cache.{kind}[{layer}] after update number {number}").format(kind=kind, layer=layer,
                                                                                            number=i + 1),
                             fill, "slot", hint, seen)


def check_returned(got, want, fill, hint, mistakes=None):
    """What each update returned against the reference's."""
    for i, (step, ref) in enumerate(zip(got, want)):
        expect.no_error(step, _("update number {number}").format(number=i + 1))
        returned = step["returned"]
        expect.that(isinstance(returned, list) and len(returned) == 2,
                    _("update should return a (keys, values) tuple, got {returned!r}").format(returned=returned))
        for j, kind in enumerate(("keys", "values")):
            seen = {name: steps_[i]["returned"][j] for name, steps_ in (mistakes or {}).items()
                    if i < len(steps_) and "returned" in steps_[i]}
            check_tensor(returned[j], ref["returned"][j],
                         _("{kind} returned by update number {number}").format(kind=kind, number=i + 1), fill,
                         "returned entry", hint, seen)


@pytest.mark.points(3)
def test_decode_steps_fill_the_sinks_then_the_ring(probe, expected):
    got, want, fill, mistakes = run(probe, expected, WINDOW, steps(*[1] * 14, layer=1))
    check_buffers(got, want, fill, [1],
                  _("With sinks=2 and window=4, one position per update: {rule}").format(rule=_(RULE)), mistakes)


@pytest.mark.points(2)
def test_a_ring_without_sinks(probe, expected):
    got, want, fill, mistakes = run(probe, expected, RING, steps(*[1] * 10))
    check_buffers(got, want, fill, [0],
                  _("With sinks=0 and window=3 every position is in the ring: {rule}").format(rule=_(RULE)), mistakes)


@pytest.mark.points(3)
def test_a_chunk_longer_than_the_window_keeps_the_latest(probe, expected):
    got, want, fill, mistakes = run(probe, expected, WINDOW, steps(9, 7))
    check_buffers(got, want, fill, [0], _("A prefill of 9 positions, then a chunk of 7, with sinks=2 and window=4: "
                                          "the entries are written in order, so when n > window a later entry "
                                          "overwrites an earlier one in the same slot and the latest window stay. "
                                          "{rule}").format(rule=_(RULE)), mistakes)


@pytest.mark.points(3)
def test_update_returns_the_stored_slots_then_the_new_entries(probe, expected):
    got, want, fill, mistakes = run(probe, expected, WINDOW, steps(3, *[1] * 6, 2, 7), buffers="last")
    check_returned(got, want, fill, _("{returns} Each is [B, num_kv_heads, stored() + n, head_dim].").format(
        returns=_(RETURNS)), mistakes)


@pytest.mark.points(2)
def test_returned_entries_are_read_before_the_write(probe, expected):
    # a prefill of 8 leaves positions 0, 1 and 4..7 in the 6 slots; position 8 then goes to slot 4, over position 4,
    # which that update must still return (in a chunk, an earlier new token may see what a later one evicts)
    got, want, fill, mistakes = run(probe, expected, WINDOW, steps(8, 1, 1), buffers="last")
    check_returned(got, want, fill, _("Read the stored slots before writing the new entries: a new token may still "
                                      "see an old position that this same write evicts. {returns}").format(
                                          returns=_(RETURNS)), mistakes)


@pytest.mark.points(2)
def test_returned_tensors_are_new_not_views(probe):
    got = probe("window_ops", config=WINDOW, ops=steps(2, 1, 3, 1, 1, 4), seed=41, buffers="last")["steps"]
    for i, step in enumerate(got):
        expect.no_error(step, _("update number {number}").format(number=i + 1))
        expect.that(isinstance(step["returned"], list) and len(step["returned"]) == 2,
                    _("update should return a (keys, values) tuple, got {returned!r}").format(
                        returned=step['returned']))
        expect.equal(step.get("shares_storage"), [False, False],
                     _("[keys, values] returned by update number {number} share memory with the cache's "
                       "buffers").format(number=i + 1),
                     hint=_("Return new tensors (torch.cat makes them), not views of keys[layer] or values[layer]: "
                            "the next write into the ring would change them."))
        for j, kind in enumerate(("keys", "values")):
            later = expect.tensor(step["returned_later"][j],
                                  _("{kind} returned by update number {number}").format(kind=kind, number=i + 1))
            expect.that(bool((later == step["returned"][j]).all()),
                        _("{kind} returned by update number {number} changed when later updates wrote the "
                          "cache").format(kind=kind, number=i + 1),
                        hint=_("Return new tensors, not views of the buffers."))


@pytest.mark.points(2)
def test_the_buffers_are_written_in_place(probe, expected):
    got, want, fill, mistakes = run(probe, expected, WINDOW, steps(3, 1, 1, 5, 1, 1, 1), buffers="last")
    check_buffers(got, want, fill, [0], _("The buffers allocated in __init__ must receive the data."), mistakes)


@pytest.mark.points(2)
def test_other_layers_are_untouched(probe, expected):
    got, want, fill, mistakes = run(probe, expected, WINDOW, steps(4, 1, 3, 1, layer=1))
    check_buffers(got, want, fill, [0, 2], _("An update of layer 1 leaves the buffers of layers 0 and 2 alone."),
                  mistakes)


@pytest.mark.points(2)
def test_update_leaves_current_length_alone(probe, expected):
    ops = steps(5, 1, 3)
    got, want, fill, mistakes = run(probe, expected, WINDOW, ops, buffers="last")
    lengths = [op["value"] for op in ops if op["op"] == "set_length"]
    expect.equal([step["length_after"] for step in got], [0] + lengths[:-1],
                 _("current_length right after each update (the probe advances it in between)"),
                 hint=_("Every layer calls update in one forward pass, so update must not change current_length: the "
                        "model advances it once, after its last layer."))
    check_buffers(got, want, fill, [0], _(RULE), mistakes)


@pytest.mark.points(1)
def test_keys_and_values_are_kept_apart(probe, expected):
    got, want, fill, mistakes = run(probe, expected, WINDOW, steps(3, 1), buffers="last")
    check_buffers(got, want, fill, [0], _("new_keys go to keys[layer], new_values to values[layer]."), mistakes)
    check_returned(got, want, fill, _("The first tensor returned holds keys, the second values."), mistakes)


@pytest.mark.points(1)
def test_a_bad_layer_raises_index_error(probe):
    for layer in (3, -1):
        step = probe("window_ops", config=WINDOW, ops=[update(layer, 1)], seed=41)["steps"][0]
        expect.raised(step, "index_error", _("update(layer={layer}) on a 3-layer cache").format(layer=layer),
                      hint=_("Valid layers are 0 <= layer < num_layers; a negative index must not wrap around."))


@pytest.mark.points(2)
def test_mismatched_shapes_raise_value_error(probe):
    good = [WINDOW["batch_size"], WINDOW["num_kv_heads"], 2, WINDOW["head_dim"]]
    cases = [{"keys_shape": [2, 2, 2, 4], "values_shape": [2, 2, 2, 4]},  # head_dim
             {"keys_shape": [1, 2, 2, 3], "values_shape": [1, 2, 2, 3]},  # batch size
             {"keys_shape": [2, 4, 2, 3], "values_shape": [2, 4, 2, 3]},  # num_kv_heads
             {"values_shape": [2, 2, 3, 3]},  # keys and values differ
             {"keys_shape": [2, 2, 6], "values_shape": [2, 2, 6]}]  # three dimensions
    for case in cases:
        step = probe("window_ops", config=WINDOW, ops=[dict(update(0, 2), **case)], seed=41)["steps"][0]
        what = _("update with keys {keys_shape} and values {values_shape} into a [2, 2, 6, 3] cache").format(
            keys_shape=case.get('keys_shape', good), values_shape=case.get('values_shape', good))
        expect.raised(step, "value_error", what,
                      hint=_("Raise ValueError when the tensors differ in shape or do not match the cache's batch "
                             "size, number of key/value heads or head size, as KVCache.update does."))


TURNS = [[3, 14, 15, 9, 2, 6], [5, 35, 8, 9, 7, 9], [32, 3, 8, 4, 6, 2], [6, 4, 33, 8, 3, 27]]


@pytest.mark.points(4)
@pytest.mark.uses(1)
def test_a_windowed_chat_equals_the_model_without_a_cache(probe, expected):
    args = dict(config=CHAT, seed=43, turns=TURNS, reply_tokens=5)
    got, want = probe("window_chat", **args), expected("window_chat", **args)
    budget = CHAT["sinks"] + CHAT["window"]
    expect.equal(got["history"], want["history"], _("a 4-turn chat of {tokens} tokens on a cache of {budget} slots "
                                                    "(sinks=2, window=5): history (turns and greedy "
                                                    "replies)").format(tokens=len(want['history']), budget=budget),
                 needs=(1,),
                 hint=_("Each step of a model whose rule is 'the first sinks positions and the latest window' must "
                        "equal that model run without a cache: the cache keeps exactly what the rule can still see. "
                        "{rule} {returns}").format(rule=_(RULE), returns=_(RETURNS)))
    recomputed = expected("model_run", config=CHAT, seed=43, tokens=[want["history"][:-1]])
    expect.close(got["logits"], recomputed["logits"], _("logits of every chat step against the same windowed model "
                                                        "without a cache"), needs=(1,), **LOGITS,
                 hint=_(RULE) + " " + _(RETURNS))


@pytest.mark.points(2)
@pytest.mark.uses(1)
def test_memory_stays_constant_while_the_chat_grows(probe, expected):
    args = dict(config=CHAT, seed=43, turns=TURNS, reply_tokens=5)
    got, want = probe("window_chat", **args), expected("window_chat", **args)
    expect.equal(got["lengths"], want["lengths"], _("current_length after each call of the chat"), needs=(1,))
    expect.equal(got["same_buffers"], [True] * len(want["lengths"]),
                 _("after each call, the cache still holds the buffers allocated in __init__"), hint=_(REPLACED),
                 needs=(1,))
    expect.equal(got["nbytes"], want["nbytes"], _("nbytes() after each call (current_length grows to "
                                                  "{length})").format(length=want['lengths'][-1]), needs=(1,),
                 hint=_("The cache never grows: its buffers hold sinks + window slots whatever the length of the "
                        "chat."))

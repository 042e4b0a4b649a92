"""Hidden checks of TODOs 1-3: the public checks' ideas on other shapes, seeds, schedules and edge cases.

Never shipped to students. Same fixtures and markers as ``tests/kv_serving``; the reference's outputs for these
calls are in ``goldens.json`` beside this file.
"""

import pytest

from kvchecks import expect
from kvchecks.i18n import N_, _
from kvserving_checks.configs_attention import LOGITS, ROTARY

WIDE_GQA = dict(hidden_dim=64, num_heads=8, num_kv_heads=2, rope_base=None)  # G = 4
ROPE_MQA = dict(hidden_dim=24, num_heads=4, num_kv_heads=1, rope_base=10000.0)  # head size 6
DEEP_ROPE_MODEL = dict(depth=3, hidden_dim=48, vocab_size=83, num_heads=6, num_kv_heads=2, rope_base=10000.0)
TINY_WINDOW = dict(num_layers=1, batch_size=1, num_kv_heads=1, head_dim=2, sinks=1, window=1)
WIDE_WINDOW = dict(num_layers=4, batch_size=3, num_kv_heads=2, head_dim=4, sinks=3, window=5)
ROPE_CHAT = dict(depth=2, hidden_dim=32, vocab_size=67, num_heads=4, num_kv_heads=2, rope_base=10000.0, sinks=1,
                 window=4)


RULE = N_("Position t goes to slot t while t < sinks, else to slot sinks + (t - sinks) % window.")
RETURNS = N_("update returns the stored() slots, read before the write, in slot order, then the n new entries.")


IN_PLACE = N_("Write into cache.keys[layer] and cache.values[layer] in place (index assignment or copy_): never "
              "replace the buffers allocated in __init__.")
CACHED_MASKED = N_("With a cache the new tokens attend over every key and value that kv_cache.update returns, under "
                   "the [B, 1, S, T] mask they are given (hidden where it is False).")
MQA_ROTATION = N_("With num_kv_heads=1 the cache receives k and v with one head; q and k are rotated at the given "
                  "positions before kv_cache.update, and the keys it returns are never rotated again.")
DEEP_MODEL = N_("This check runs your layer in a whole rotary model on a KVCache; the checks of the layer alone "
                "show what differs.")
LONG_HEAD = N_("Every pair i of the head, (x[..., i], x[..., i + hd/2]), turns by the angle position * base ** (-2i "
               "/ hd), at every position however large.")
SMALLEST_HEAD = N_("With head_dim = 2 there is one pair, (x[..., 0], x[..., 1]), turned by the angle position * "
                   "base ** 0; each batch row uses its own positions.")
OFFSET = N_('A rotation of each pair makes q_m . k_n depend on the positions only through m - n.')
OWN_BASE = N_("Return a new tensor of x's dtype (float64 here), rotated with the base given, and leave x unchanged.")
WINDOWED_CHAT = N_("The cache keeps what the windowed model can still see, the sinks and the latest window "
                   "positions, in buffers allocated once; it stores keys rotated once, at their own positions.")


def steps(*chunks: int, layer: int = 0) -> list[dict]:
    """Updates of ``layer`` with ``chunks`` new positions each, advancing current_length after each."""
    ops, start = [], 0
    for n in chunks:
        start += n
        ops += [{"op": "update", "layer": layer, "n": n}, {"op": "set_length", "value": start}]
    return ops


def check_window(probe, expected, config, ops, layers, hint):
    """After every update: the buffers of ``layers`` and what update returned, exactly as the reference's."""
    args = dict(config=config, ops=ops, seed=47)
    got, want = probe("window_ops", **args)["steps"], expected("window_ops", **args)["steps"]
    mistakes = {name: seen["steps"] for name, seen in expected.mistakes("window_ops", **args).items()}
    for i, (step, ref) in enumerate(zip(got, want)):
        expect.no_error(step, _("update number {number}").format(number=i + 1))
        expect.equal(step["same_buffers"], True, _("cache.keys/values still hold the tensors allocated in __init__"),
                     hint=_(IN_PLACE))
        for j, kind in enumerate(("keys", "values")):
            seen = {name: s[i]["returned"][j] for name, s in mistakes.items() if "returned" in s[i]}
            expect.close(step["returned"][j], ref["returned"][j],
                         _("{kind} returned by update number {number}").format(kind=kind, number=i + 1),
                         atol=0, rtol=0, hint=_(RETURNS), mistakes=seen)
            for layer in layers:
                seen = {name: s[i][kind][layer] for name, s in mistakes.items() if kind in s[i]}
                expect.close(step[kind][layer], ref[kind][layer],
                             _("cache.{kind}[{layer}] after update number {number}").format(kind=kind, layer=layer,
                                                                                            number=i + 1),
                             atol=0, rtol=0, hint=hint, mistakes=seen)


@pytest.mark.todo1
@pytest.mark.points(3)
def test_wide_groups_irregular_chunks_and_a_mask(probe, expected):
    args = dict(config=WIDE_GQA, seed=51, batch=3, length=13, mask="random")
    got = probe("attention_run", chunks=[1, 3, 1, 6, 2], **args)
    want = expected("attention_run", chunks=None, **args)
    mistakes = {name: seen["out"] for name, seen in
                expected.mistakes("attention_run", chunks=[1, 3, 1, 6, 2], **args).items()}
    expect.close(got["out"], want["out"], _("outputs of chunks 1, 3, 1, 6, 2 (num_heads=8, num_kv_heads=2, batch 3)"),
                 mistakes=mistakes, hint=_(CACHED_MASKED))
    size = WIDE_GQA["hidden_dim"] // WIDE_GQA["num_heads"]
    expect.equal([call["keys_shape"] for call in got["updates"]], [[3, 2, n, size] for n in (1, 3, 1, 6, 2)],
                 _("keys shape given to kv_cache.update per call"), hint=_("The cache receives num_kv_heads heads."))


@pytest.mark.todo1
@pytest.mark.points(2)
def test_later_chunks_read_the_cache(probe, expected):
    args = dict(config=WIDE_GQA, seed=52, batch=2, length=9, chunks=[5, 3, 1], tamper_after=0, layer_idx=1)
    got, want = probe("attention_run", **args), expected("attention_run", **args)
    expect.close(got["out"], want["out"], _("outputs after the cached entries were changed (layer 1)"),
                 hint=_("Attend over the keys and values that kv_cache.update returns; do not keep your own copy of "
                        "old positions or recompute them."))


@pytest.mark.todo1
@pytest.mark.points(2)
@pytest.mark.uses(2)
def test_multi_query_attention_with_rotation(probe, expected):
    args = dict(config=ROPE_MQA, seed=53, batch=2, length=6, chunks=[3, 1, 2],
                positions=[[0, 1, 2, 3, 4, 5], [0, 0, 1, 2, 3, 4]])
    got, want = probe("attention_run", **args), expected("attention_run", **args)
    expect.equal([call["keys_shape"] for call in got["updates"]], [[2, 1, n, 6] for n in (3, 1, 2)],
                 _("keys shape given to kv_cache.update per call (num_kv_heads=1)"), needs=(2,),
                 hint=_(MQA_ROTATION))
    expect.close(got["stored_keys"], want["stored_keys"], _("keys the cache received (rotated once)"), needs=(2,),
                 hint=_(MQA_ROTATION))
    expect.close(got["out"], want["out"], _("outputs of multi-query attention with rotation"), needs=(2,),
                 hint=_(MQA_ROTATION))


@pytest.mark.todo1
@pytest.mark.points(2)
@pytest.mark.uses(2)
def test_deep_rotary_gqa_model_decodes_like_one_shot(probe, expected):
    args = dict(config=DEEP_ROPE_MODEL, seed=54, batch=2, length=9)
    got = probe("model_run", chunks=[4, 1, 1, 1, 2], **args)
    want = expected("model_run", chunks=None, **args)
    expect.close(got["logits"], want["logits"], _("logits of a depth-3 rotary model (num_heads=6, num_kv_heads=2), "
                                                  "prefill 4 then decode, against no cache"), needs=(2,), **LOGITS,
                 hint=_(DEEP_MODEL))


@pytest.mark.todo2
@pytest.mark.points(2)
def test_a_long_head_at_large_positions(probe, expected):
    args = dict(shape=[1, 2, 3, 64], seed=55, positions=[[0, 97, 389]])
    got, want = probe("rotary", **args), expected("rotary", **args)
    mistakes = {name: seen["value"] for name, seen in expected.mistakes("rotary", **args).items() if "value" in seen}
    expect.close(expect.no_error(got, _("apply_rotary on x [1, 2, 3, 64]")), want["value"],
                 _("apply_rotary(x [1, 2, 3, 64], positions [[0, 97, 389]])"), mistakes=mistakes, **ROTARY,
                 hint=_(LONG_HEAD))


@pytest.mark.todo2
@pytest.mark.points(1)
def test_the_smallest_head(probe, expected):
    args = dict(shape=[2, 1, 4, 2], seed=56, positions=[[3, 4, 5, 6], [0, 0, 1, 2]], base=50.0)
    got, want = probe("rotary", **args), expected("rotary", **args)
    expect.close(expect.no_error(got, _("apply_rotary on x [2, 1, 4, 2]")), want["value"],
                 _("apply_rotary(x [2, 1, 4, 2], two rows of positions, base=50)"), **ROTARY, hint=_(SMALLEST_HEAD))


@pytest.mark.todo2
@pytest.mark.points(2)
def test_the_offset_property_on_a_long_head(probe, expected):
    pairs = [[5, 5], [40, 40], [0, 0], [17, 0], [30, 13], [99, 82]]
    got = probe("rotary_dots", head_dim=32, seed=57, pairs=pairs)["dots"]
    for first in (0, 3):
        for i in (first + 1, first + 2):
            what = _("q at {m} . k at {n} against q at {first_m} . k at {first_n}").format(
                m=pairs[i][0], n=pairs[i][1], first_m=pairs[first][0], first_n=pairs[first][1])
            expect.close(got[i:i + 1], got[first:first + 1], what, **ROTARY, hint=_(OFFSET))
    expect.close(got, expected("rotary_dots", head_dim=32, seed=57, pairs=pairs)["dots"], _("dot products"), **ROTARY,
                 hint=_(OFFSET))


@pytest.mark.todo2
@pytest.mark.points(1)
def test_float64_with_its_own_base(probe, expected):
    args = dict(shape=[1, 3, 2, 10], seed=58, positions=[[7, 11]], base=1000.0, dtype="float64")
    got, want = probe("rotary", **args), expected("rotary", **args)
    out = expect.tensor(expect.no_error(got, _("apply_rotary on float64 x")), _("apply_rotary's result"))
    expect.equal(str(out.dtype), "torch.float64", _("dtype of the result"), hint=_(OWN_BASE))
    expect.close(out, want["value"], _("apply_rotary(float64 x, base=1000)"), **ROTARY, hint=_(OWN_BASE))
    expect.equal(got["x_changed"], False, _("x was changed"), hint=_(OWN_BASE))


@pytest.mark.todo3
@pytest.mark.points(2)
def test_one_sink_and_a_window_of_one(probe, expected):
    check_window(probe, expected, TINY_WINDOW, steps(1, 1, 1, 1, 3, 1), [0],
                 _("With sinks=1 and window=1 the cache keeps position 0 and the latest one. {rule}").format(
                     rule=_(RULE)))


@pytest.mark.todo3
@pytest.mark.points(1)
def test_an_update_of_zero_positions(probe, expected):
    check_window(probe, expected, TINY_WINDOW, steps(3, 0), [0], _("An update of n = 0 positions writes nothing."))


@pytest.mark.todo3
@pytest.mark.points(2)
def test_chunks_across_the_sinks_and_the_wrap_in_a_wide_cache(probe, expected):
    check_window(probe, expected, WIDE_WINDOW, steps(2, 4, 1, 1, 9, layer=2), [0, 1, 2, 3],
                 _("sinks=3 and window=5, 4 layers, batch 3: {rule} Other layers stay as they are.").format(
                     rule=_(RULE)))


@pytest.mark.todo3
@pytest.mark.points(3)
@pytest.mark.uses(1, 2)
def test_a_windowed_chat_with_rotation(probe, expected):
    turns = [[4, 8, 15, 16, 23], [42, 7, 1, 9, 30], [11, 5, 60, 2, 3]]
    args = dict(config=ROPE_CHAT, seed=59, turns=turns, reply_tokens=6)
    got, want = probe("window_chat", **args), expected("window_chat", **args)
    expect.equal(got["history"], want["history"], _("history of a 3-turn chat with rotation on a 5-slot cache"),
                 needs=(1, 2), hint=_(WINDOWED_CHAT))
    recomputed = expected("model_run", config=ROPE_CHAT, seed=59, tokens=[want["history"][:-1]])
    expect.close(got["logits"], recomputed["logits"], _("logits of every chat step against the windowed model "
                                                        "without a cache"), needs=(1, 2), **LOGITS,
                 hint=_(WINDOWED_CHAT))
    expect.equal(got["nbytes"], want["nbytes"], _("nbytes() after each call"), needs=(1, 2), hint=_(WINDOWED_CHAT))

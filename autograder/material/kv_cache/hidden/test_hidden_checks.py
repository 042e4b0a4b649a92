"""Hidden checks: the public checks' ideas on other shapes, seeds, schedules and edge cases.

Never shipped to students. Same fixtures and markers as ``tests/``; the
reference's outputs for these calls are in ``goldens.json`` beside this file.
"""

import pytest

from kvchecks import expect
from kvchecks.i18n import N_, _
from kvcache_checks.configs import LOGITS, MODEL

WIDE_CACHE = dict(num_layers=4, batch_size=3, num_heads=2, head_dim=5, max_seq_len=16)
WIDE_MODEL = dict(depth=4, hidden_dim=48, nheads=6, vocab_size=97, max_seq_len=64)
WIDE_ATTENTION = dict(hidden_dim=48, nheads=8)
WHOLE_MODEL = (1, 2)
IN_PLACE = N_("Write into the preallocated buffers in place; never replace them.")


UPDATE = N_("update(layer, keys, values) writes the n new positions of that layer at current_length .. "
            "current_length + n - 1 and returns views of positions 0 .. current_length + n - 1; other layers and "
            "positions stay as they are.")
ZERO = N_("An update of n = 0 positions writes nothing and returns the filled prefix, positions 0 .. current_length "
          "- 1.")
FULL = N_("A write that does not fit raises CacheOverflowError before it changes anything: the buffers and "
          "current_length stay as they are.")
CACHED_ATTENTION = N_("With a cache, the new tokens attend over every position stored so far and their own (L + S "
                      "keys), under a causal mask offset by L.")
TAMPERED = N_("Attend over the keys and values that kv_cache.update returns; do not keep your own copy of old "
              "positions or recompute them.")
WHOLE = N_("Positions start at kv_cache.current_length, and current_length advances by the number of new tokens "
           "once, after the last layer; the checks of each TODO alone show what differs.")
LONG_GENERATION = N_("One prefill of the prompt, then one call per new token that feeds only the token chosen just "
                     "before it, all on one fresh cache.")
SINGLE = N_('A one-token prompt is prefilled like any other: generate returns the prompt and the new tokens.')
REFUSED = N_('ValueError when len(prompt) + max_new_tokens exceeds max_seq_len, before any model call.')


def cache_steps(probe, expected, ops, **extra):
    args = dict(config=WIDE_CACHE, ops=ops, **extra)
    return probe("cache_ops", **args)["steps"], expected("cache_ops", **args)["steps"]


@pytest.mark.todo1
@pytest.mark.points(3)
def test_interleaved_layers_and_lengths(probe, expected):
    ops = []
    for length, n in ((0, 3), (3, 1), (4, 5), (9, 1)):
        ops.append({"op": "set_length", "value": length})
        ops += [{"op": "update", "layer": layer, "n": n} for layer in (2, 0, 3, 1)]
    got, want = cache_steps(probe, expected, ops, buffers="last")
    for i, (step, ref) in enumerate(zip(got, want)):
        expect.no_error(step, _("update number {number}").format(number=i + 1))
        expect.equal(step["same_buffers"], True, _("cache.keys/values still hold the tensors allocated in __init__"),
                     hint=_(IN_PLACE))
        expect.close(step["returned"][0], ref["returned"][0], _("keys returned by update {number}").format(
            number=i + 1), atol=0, rtol=0, hint=_(UPDATE))
        expect.close(step["returned"][1], ref["returned"][1], _("values returned by update {number}").format(
            number=i + 1), atol=0, rtol=0, hint=_(UPDATE))
    for layer in range(WIDE_CACHE["num_layers"]):
        for kind in ("keys", "values"):
            expect.close(got[-1][kind][layer], want[-1][kind][layer],
                         _("cache.{kind}[{layer}] after all updates").format(kind=kind, layer=layer), atol=0, rtol=0,
                         hint=_(UPDATE))


@pytest.mark.todo1
@pytest.mark.points(1)
def test_update_of_zero_positions_returns_the_filled_prefix(probe, expected):
    ops = [{"op": "update", "layer": 1, "n": 4}, {"op": "set_length", "value": 4}, {"op": "update", "layer": 1, "n": 0}]
    got, want = cache_steps(probe, expected, ops)
    expect.no_error(got[-1], _("update with 0 new positions"))
    expect.close(got[-1]["returned"][1], want[-1]["returned"][1], _("values returned for n = 0"), atol=0, rtol=0,
                 hint=_(ZERO))


@pytest.mark.todo1
@pytest.mark.points(2)
def test_filling_the_cache_exactly_then_one_more(probe, expected):
    ops = [{"op": "update", "layer": 0, "n": 16}, {"op": "set_length", "value": 16}, {"op": "update", "layer": 0, "n": 1}]
    got, want = cache_steps(probe, expected, ops)
    expect.no_error(got[0], _("update filling all 16 positions"))
    expect.equal(got[0]["same_buffers"], True, _("cache.keys/values still hold the tensors allocated in __init__"),
                 hint=_(IN_PLACE))
    expect.raised(got[-1], "overflow", _("a write into a full cache"), hint=_(FULL))
    expect.close(got[-1]["keys"][0], want[-1]["keys"][0], _("cache.keys[0] after the refused write"), atol=0, rtol=0,
                 hint=_(FULL))
    expect.equal(got[-1]["length_after"], 16, _("current_length after the refused write"), hint=_(FULL))


@pytest.mark.todo1
@pytest.mark.points(2)
def test_returned_views_follow_later_writes(probe):
    ops = [{"op": "update", "layer": 3, "n": 2}, {"op": "set_length", "value": 2}, {"op": "update", "layer": 3, "n": 5}]
    got = probe("cache_ops", config=WIDE_CACHE, ops=ops)["steps"]
    for step in (got[0], got[-1]):
        expect.no_error(step, "update(3, keys, values)")
        expect.equal(step.get("shares_storage"), [True, True], _("returned keys/values share memory with the cache"),
                     hint=_("Return slices (views) of keys[layer]/values[layer], not copies."))


@pytest.mark.todo2
@pytest.mark.points(3)
def test_irregular_chunks_with_many_heads(probe, expected):
    args = dict(config=WIDE_ATTENTION, seed=31, batch=3, length=14)
    got = probe("attention_steps", chunks=[1, 3, 1, 6, 2, 1], **args)
    want = expected("attention_steps", chunks=None, **args)
    mistakes = {name: seen["out"] for name, seen in
                expected.mistakes("attention_steps", chunks=[1, 3, 1, 6, 2, 1], **args).items()}
    expect.close(got["out"], want["out"], _("outputs of chunks 1, 3, 1, 6, 2, 1 (8 heads, batch 3)"),
                 mistakes=mistakes, hint=_(CACHED_ATTENTION))


@pytest.mark.todo2
@pytest.mark.points(2)
def test_large_chunk_reads_tampered_cache(probe, expected):
    args = dict(config=WIDE_ATTENTION, seed=32, batch=2, length=13, chunks=[4, 6, 3], tamper_after=0, layer_idx=1)
    got, want = probe("attention_steps", **args), expected("attention_steps", **args)
    mistakes = {name: seen["out"] for name, seen in expected.mistakes("attention_steps", **args).items()}
    expect.close(got["out"], want["out"], _("outputs after the cached entries were changed (layer 1)"),
                 mistakes=mistakes, hint=_(TAMPERED))


@pytest.mark.todo2
@pytest.mark.points(2)
def test_non_causal_layer_with_irregular_chunks(probe, expected):
    args = dict(config=WIDE_ATTENTION, seed=37, batch=2, length=11, causal=False, chunks=[2, 1, 5, 3])
    got, want = probe("attention_steps", **args), expected("attention_steps", **args)
    expect.close(got["out"], want["out"], _("outputs of a causal=False layer fed chunks 2, 1, 5, 3"),
                 hint=_("With causal=False, each new token sees every position stored so far (L + S), not later "
                        "ones."))


@pytest.mark.todo3
@pytest.mark.points(3)
@pytest.mark.uses(1, 2)
def test_deep_wide_batched_model_cached_equals_uncached(probe, expected):
    args = dict(config=WIDE_MODEL, seed=33, batch=3, length=14)
    got = probe("model_run", chunks=[7, 1, 4, 1, 1], **args)
    want = expected("model_run", chunks=None, **args)
    expect.close(got["logits"], want["logits"], _("logits of chunks 7, 1, 4, 1, 1 (depth 4, batch 3)"),
                 needs=WHOLE_MODEL, **LOGITS, hint=_(WHOLE))
    expect.equal(got["lengths"], [7, 8, 12, 13, 14], _("current_length after each call"), hint=_(WHOLE))


@pytest.mark.todo3
@pytest.mark.points(3)
@pytest.mark.uses(1, 2)
def test_three_turn_conversation(probe, expected):
    turns = [[1, 2, 3], [4, 5, 6, 7, 8], [9]]
    args = dict(config=WIDE_MODEL, seed=34, turns=turns, reply_tokens=4)
    got, want = probe("conversation", **args), expected("conversation", **args)
    expect.equal(got["history"], want["history"], _("history of a three-turn conversation"), needs=WHOLE_MODEL,
                 hint=_(WHOLE))
    recomputed = expected("model_run", config=WIDE_MODEL, seed=34, tokens=[want["history"][:-1]])
    expect.close(got["logits"], recomputed["logits"], _("logits of all turns against a full recompute"),
                 needs=WHOLE_MODEL, **LOGITS, hint=_(WHOLE))


@pytest.mark.todo3
@pytest.mark.points(2)
@pytest.mark.uses(1, 2)
def test_changed_weights_show_reuse_in_a_batch(probe, expected):
    args = dict(config=dict(MODEL, depth=3), seed=35, batch=2, length=9, chunks=[3, 2, 1, 1, 1, 1],
                change_kv_weights_after_first=True)
    got, want = probe("model_run", **args), expected("model_run", **args)
    expect.close(got["logits"], want["logits"], _("logits after Wk/Wv changed (batch 2, depth 3)"),
                 needs=WHOLE_MODEL, **LOGITS, hint=_(WHOLE))


@pytest.mark.todo4
@pytest.mark.points(3)
@pytest.mark.uses(1, 2, 3)
def test_long_generation_matches_uncached_greedy(probe, expected):
    args = dict(config=WIDE_MODEL, seed=36, prompt=[7, 3, 9], max_new_tokens=30)
    tokens = expect.no_error(probe("generate_real", **args), _("generate on a depth-4 model"), needs=(1, 2, 3))
    expect.equal(tokens, expected("greedy_uncached", **args)["tokens"], _("30 generated token ids"), needs=(1, 2, 3),
                 hint=_(LONG_GENERATION))


@pytest.mark.todo4
@pytest.mark.points(2)
def test_one_new_token_takes_only_the_prefill(probe, expected):
    args = dict(config=MODEL, prompt=[3, 1, 4], max_new_tokens=1)
    got, want = probe("generate_scripted", **args), expected("generate_scripted", **args)
    expect.no_error(got["results"][0], "generate(prompt, 1)")
    expect.equal([c["tokens"] for c in got["calls"]], [c["tokens"] for c in want["calls"]],
                 _("model calls for one new token"),
                 hint=_("One new token needs only the prefill; the new token itself is never fed."))


@pytest.mark.todo4
@pytest.mark.points(1)
def test_single_token_prompt(probe, expected):
    args = dict(config=MODEL, prompt=[8], max_new_tokens=3)
    got, want = probe("generate_scripted", **args), expected("generate_scripted", **args)
    tokens = expect.no_error(got["results"][0], "generate([8], 3)")
    expect.equal(tokens, want["results"][0]["value"], "generate([8], 3)", hint=_(SINGLE))


@pytest.mark.todo4
@pytest.mark.points(1)
def test_a_refused_request_runs_nothing(probe):
    got = probe("generate_scripted", config=MODEL, prompt=[1, 2, 3, 4], max_new_tokens=9, generator_len=12)
    expect.raised(got["results"][0], "value_error", _("13 positions with max_seq_len=12"), hint=_(REFUSED))
    expect.equal(got["calls"], [], _("model calls before the ValueError"),
                 hint=_("Check the length before the prefill."))

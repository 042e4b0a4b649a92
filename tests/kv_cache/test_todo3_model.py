"""TODO 3: Transformer.forward: positions from the cache length, current_length advanced once per call.

The first checks swap every attention layer for a stub that returns zeros, so
they test Transformer.forward alone. The rest run the whole model and also
need TODO 1 (KVCache.update) and TODO 2 (Attention.forward).
"""

import pytest

from kvchecks import expect
from kvchecks.i18n import _
from kvcache_checks.configs import LOGITS, MODEL

pytestmark = pytest.mark.todo3

WHOLE_MODEL = (1, 2)  # the TODOs a check of the whole model also runs


@pytest.mark.points(2)
def test_uncached_forward_matches_the_reference(probe, expected):
    args = dict(config=MODEL, seed=5, batch=2, length=9, stub_attention=True)
    got, want = probe("model_run", **args), expected("model_run", **args)
    expect.close(got["logits"], want["logits"], _("logits without a cache (attention stubbed out)"),
                 hint=_("Embed tokens, add position embeddings for positions 0..S-1, run the layers, ln_f, unemb."),
                 **LOGITS)


@pytest.mark.points(3)
def test_positions_start_at_the_cache_length(probe, expected):
    args = dict(config=MODEL, seed=5, batch=2, length=9, stub_attention=True)
    got = probe("model_run", chunks=[4, 1, 3, 1], **args)
    want = expected("model_run", chunks=None, **args)
    hint = _("With a cache the new tokens sit at positions current_length .. current_length + S - 1.")
    calls = [(0, 4), (4, 1), (5, 3), (8, 1)]  # (current_length, S) of each call
    if len(got["positions"]) == len(calls):  # pos_emb(...) was called once per call: its ids are known
        wrong = [(length, sorted(set(ids))) for (length, n), ids in zip(calls, got["positions"])
                 if set(ids) != set(range(length, length + n))]
        if wrong:
            length, ids = wrong[0]
            hint = _("in the call made with current_length={length}, pos_emb was given positions {ids}. "
                     "{hint}").format(length=length, ids=ids, hint=hint)
    expect.close(got["logits"], want["logits"], _("logits of chunks 4, 1, 3, 1 (attention stubbed out)"), hint=hint,
                 **LOGITS)


@pytest.mark.points(2)
def test_current_length_advances_by_the_number_of_new_tokens(probe):
    got = probe("model_run", config=MODEL, seed=5, batch=1, length=9, chunks=[4, 1, 3, 1], stub_attention=True)
    expect.equal(got["lengths"], [4, 5, 8, 9], _("current_length after each call (prefill 4, decode 1, chunk 3, "
                                                 "decode 1)"),
                 hint=_("Advance kv_cache.current_length by S at the end of forward."))


@pytest.mark.points(2)
def test_current_length_advances_once_after_the_last_layer(probe):
    config = dict(MODEL, depth=3)
    got = probe("model_run", config=config, seed=5, batch=1, length=5, chunks=[4, 1], stub_attention=True)
    want = [[layer, start] for start in (0, 4) for layer in range(3)]
    without = sorted({layer for layer, length in got["stub_seen"] if length is None})
    if without:
        hint = _("layer(s) {without} were called without the cache: pass kv_cache to every layer.").format(
            without=without)
    else:
        hint = _("Every layer of one call must see the same cache length; advance once, after the loop.")
    expect.equal(got["stub_seen"], want, _("[layer, current_length] as each layer was called"), hint=hint)


@pytest.mark.points(1)
@pytest.mark.parametrize("depth,batch", [(1, 1), (2, 2), (3, 1)])
@pytest.mark.uses(1, 2)
def test_cached_logits_equal_uncached(probe, expected, depth, batch):
    args = dict(config=dict(MODEL, depth=depth), seed=7, batch=batch, length=10)
    got = probe("model_run", chunks=[6, 1, 1, 1, 1], **args)
    want = expected("model_run", chunks=None, **args)
    expect.close(got["logits"], want["logits"], _("per-position logits of prefill + decode (depth {depth}, "
                                                  "batch {batch})").format(depth=depth, batch=batch),
                 needs=WHOLE_MODEL, **LOGITS)


@pytest.mark.points(2)
@pytest.mark.uses(1, 2)
def test_chunked_prefill_equals_one_shot(probe, expected):
    args = dict(config=MODEL, seed=8, batch=2, length=10)
    got = probe("model_run", chunks=[3, 5, 2], **args)
    want = expected("model_run", chunks=[10], **args)
    expect.close(got["logits"], want["logits"], _("logits of a prefill in chunks of 3, 5 and 2"), needs=WHOLE_MODEL,
                 **LOGITS)


@pytest.mark.points(3)
@pytest.mark.uses(1, 2)
def test_second_turn_on_a_warm_cache_equals_recomputing_the_history(probe, expected):
    turns = [[3, 14, 15, 9, 2], [6, 5, 35, 8]]
    got = probe("conversation", config=MODEL, seed=9, turns=turns, reply_tokens=3)
    want = expected("conversation", config=MODEL, seed=9, turns=turns, reply_tokens=3)
    expect.equal(got["history"], want["history"], _("conversation history (user turns and greedy replies)"),
                 needs=WHOLE_MODEL)
    expect.equal(got["lengths"], [7, 14], _("current_length after each turn"), needs=WHOLE_MODEL)
    recomputed = expected("model_run", config=MODEL, seed=9, tokens=[want["history"][:-1]])
    expect.close(got["logits"], recomputed["logits"], _("logits of both turns against a full recompute"),
                 needs=WHOLE_MODEL, **LOGITS)


@pytest.mark.points(2)
@pytest.mark.uses(1, 2)
def test_decode_steps_project_only_the_new_token(probe):
    got = probe("model_run", config=MODEL, seed=5, batch=1, length=8, chunks=[5, 1, 1, 1])
    for layer, rows in enumerate(got["kv_rows"]):
        expect.equal(sorted(rows), sorted([5, 5, 1, 1, 1, 1, 1, 1]),
                     _("positions seen by layer {layer}'s Wk and Wv per call").format(layer=layer),
                     hint=_("A decode step computes keys and values for its one new token only."), needs=WHOLE_MODEL)


@pytest.mark.points(2)
@pytest.mark.uses(1, 2)
def test_cached_keys_are_reused_not_recomputed(probe, expected):
    args = dict(config=MODEL, seed=5, batch=1, length=8, chunks=[5, 1, 1, 1], change_kv_weights_after_first=True)
    got, want = probe("model_run", **args), expected("model_run", **args)
    expect.close(got["logits"], want["logits"], _("decode logits after Wk/Wv changed (the cache keeps old K/V)"),
                 hint=_("Old positions' keys and values must come from the cache."), needs=WHOLE_MODEL, **LOGITS)

"""TODO 2: Attention.forward with a cache: store new K/V, attend over all cached positions, offset mask.

These checks give the layer a simple list-based stand-in cache (``update`` and
``current_length`` only), so they do not depend on TODO 1. A failing output
that equals what a known mistake computes gets that mistake's hint.
"""

import pytest

from kvchecks import expect
from kvchecks.i18n import N_, _
from kvcache_checks.configs import ATTENTION

pytestmark = pytest.mark.todo2

LENGTH = 12
MASK_RULE = N_("New token i sits at position L + i (L = cached positions) and sees keys 0..L + i.")


def compare(probe, expected, what, hint="", reference_chunks="same", **args):
    """The layer's outputs for ``args``, against the reference's (uncached when ``reference_chunks`` is None)."""
    args = {"config": ATTENTION, "seed": 11, "batch": 2, "length": LENGTH, **args}
    want_args = args if reference_chunks == "same" else dict(args, chunks=reference_chunks)
    got, want = probe("attention_steps", **args), expected("attention_steps", **want_args)
    mistakes = {name: seen["out"] for name, seen in expected.mistakes("attention_steps", **args).items()}
    expect.close(got["out"], want["out"], what, hint=hint, mistakes=mistakes)
    return got


@pytest.mark.points(2)
def test_uncached_attention_matches_the_reference(probe, expected):
    compare(probe, expected, _("attention output without a cache"),
            hint=_("Without a cache this is ordinary causal self-attention: query i sees keys 0..i, "
                   "softmax(q k^T / sqrt(head_dim)) v, then Wo."))


@pytest.mark.points(2)
def test_cached_prefill_equals_uncached(probe, expected):
    compare(probe, expected, _("output of a prefill on an empty cache"), chunks=[LENGTH], reference_chunks=None,
            hint=_("With an empty cache (L = 0) the result must equal the uncached one."))


@pytest.mark.points(3)
def test_decode_steps_equal_uncached(probe, expected):
    compare(probe, expected, _("outputs of a 4-token prefill then 1-token decode steps"),
            chunks=[4] + [1] * (LENGTH - 4), reference_chunks=None,
            hint=_("Each new query attends over every cached key and its own: {rule}").format(rule=_(MASK_RULE)))


@pytest.mark.points(3)
def test_chunk_after_a_cached_prefix_is_masked_correctly(probe, expected):
    compare(probe, expected, _("outputs of chunks of 5, 4 and 3 tokens"), chunks=[5, 4, 3], reference_chunks=None,
            hint=_("{rule} With S > 1 new tokens the mask is [S, L + S].").format(rule=_(MASK_RULE)))


@pytest.mark.points(2)
def test_a_non_causal_layer_sees_every_position(probe, expected):
    compare(probe, expected, _("outputs of a layer built with causal=False"), causal=False,
            hint=_("With causal=False no mask is applied: every token sees all positions."))
    compare(probe, expected, _("outputs of a causal=False layer fed chunks of 5, 4 and 3 tokens"), causal=False,
            chunks=[5, 4, 3], hint=_("With causal=False and a cache, every new token sees all L + S positions."))


@pytest.mark.points(3)
def test_new_keys_and_values_go_through_update_of_this_layer(probe):
    got = probe("attention_steps", config=ATTENTION, seed=11, batch=2, length=LENGTH, chunks=[5, 4, 3], layer_idx=2)
    head_dim = ATTENTION["hidden_dim"] // ATTENTION["nheads"]
    want = [{"layer": 2, "keys_shape": [2, ATTENTION["nheads"], n, head_dim],
             "values_shape": [2, ATTENTION["nheads"], n, head_dim], "length": start}
            for n, start in ((5, 0), (4, 5), (3, 9))]
    expect.equal(got["updates"], want, _("kv_cache.update calls"),
                 hint=_("Call kv_cache.update(self.layer_idx, k, v) once per forward with the new tokens' "
                        "[B, H, S, head_dim] keys and values."))
    expect.equal(got["lengths_after"], [0, 5, 9], _("kv_cache.current_length right after each call"),
                 hint=_("Every layer of one forward pass must see the same length: Transformer.forward advances "
                        "current_length once, after its last layer, not the attention layer."))


@pytest.mark.points(2)
def test_attention_reads_keys_and_values_from_the_cache(probe, expected):
    compare(probe, expected, _("outputs after the cached entries were changed"), length=7, chunks=[5, 1, 1],
            tamper_after=0, hint=_("Attend over the keys and values that kv_cache.update returns; do not keep your "
                                   "own copy of old positions or recompute them."))


@pytest.mark.points(2)
def test_decode_projects_only_the_new_tokens(probe):
    chunks = [6, 1, 1, 1]
    got = probe("attention_steps", config=ATTENTION, seed=11, batch=1, length=9, chunks=chunks)
    for name in ("Wq", "Wk", "Wv"):
        expect.equal(got["rows"][name], chunks, _("positions seen by self.{name} per call").format(name=name),
                     hint=_("Project only the new tokens; the cache already holds the old keys and values."))

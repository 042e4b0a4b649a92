"""TODO 2: Attention.forward with a cache: store new K/V, attend over all cached positions, offset mask.

These checks give the layer a simple list-based stand-in cache, so they do not
depend on TODO 1.
"""

import pytest

from kvchecks import expect
from kvchecks.configs import ATTENTION

pytestmark = pytest.mark.todo2

LENGTH = 12


def outputs(probe, expected, chunks):
    """The layer's outputs fed in ``chunks``, and the reference's uncached outputs."""
    args = dict(config=ATTENTION, seed=11, batch=2, length=LENGTH)
    return probe("attention_steps", chunks=chunks, **args), expected("attention_steps", chunks=None, **args)


@pytest.mark.points(2)
def test_uncached_attention_matches_the_reference(probe, expected):
    got, want = outputs(probe, expected, None)
    expect.close(got["out"], want["out"], 2, "attention output without a cache",
                 hint="Without a cache this is ordinary causal self-attention (query i sees keys 0..i).")


@pytest.mark.points(2)
def test_cached_prefill_equals_uncached(probe, expected):
    got, want = outputs(probe, expected, [LENGTH])
    expect.close(got["out"], want["out"], 2, "output of a prefill on an empty cache",
                 hint="With an empty cache the result must equal the uncached one.")


@pytest.mark.points(3)
def test_decode_steps_equal_uncached(probe, expected):
    got, want = outputs(probe, expected, [4] + [1] * (LENGTH - 4))
    expect.close(got["out"], want["out"], 2, "outputs of a 4-token prefill then 1-token decode steps",
                 hint="Each new query must attend over every cached key, not only its own.")


@pytest.mark.points(3)
def test_chunk_after_a_cached_prefix_is_masked_correctly(probe, expected):
    got, want = outputs(probe, expected, [5, 4, 3])
    expect.close(got["out"], want["out"], 2, "outputs of chunks of 5, 4 and 3 tokens",
                 hint="New token i sits at position L + i (L = cache length): it sees keys 0..L+i. A mask of "
                      "triu(ones(S, L+S), diagonal=1) is wrong when L > 0 and S > 1.")


@pytest.mark.points(2)
def test_new_keys_and_values_go_through_update_of_this_layer(probe):
    got = probe("attention_steps", config=ATTENTION, seed=11, batch=2, length=LENGTH, chunks=[5, 4, 3], layer_idx=2)
    head_dim = ATTENTION["hidden_dim"] // ATTENTION["nheads"]
    want = [{"layer": 2, "keys_shape": [2, ATTENTION["nheads"], n, head_dim],
             "values_shape": [2, ATTENTION["nheads"], n, head_dim], "length": start}
            for n, start in ((5, 0), (4, 5), (3, 9))]
    expect.equal(got["updates"], want, 2, "kv_cache.update calls",
                 hint="Call kv_cache.update(self.layer_idx, K, V) once per forward with the new tokens' "
                      "[B, H, S, head_dim] keys and values.")


@pytest.mark.points(2)
def test_attention_reads_keys_and_values_from_the_cache(probe, expected):
    chunks = [5, 1, 1]
    args = dict(config=ATTENTION, seed=11, batch=2, length=7, chunks=chunks, tamper_after=0)
    got, want = probe("attention_steps", **args), expected("attention_steps", **args)
    expect.close(got["out"], want["out"], 2, "outputs after the cached entries were changed",
                 hint="Attend over the keys and values that kv_cache.update returns; do not keep your own copy "
                      "or recompute old positions.")


@pytest.mark.points(2)
def test_decode_projects_only_the_new_tokens(probe):
    chunks = [6, 1, 1, 1]
    got = probe("attention_steps", config=ATTENTION, seed=11, batch=1, length=9, chunks=chunks)
    for name in ("Wq", "Wk", "Wv"):
        expect.equal(got["rows"][name], chunks, 2, f"positions seen by self.{name} per call",
                     hint="Project only the new tokens; the cache already holds the old keys and values.")

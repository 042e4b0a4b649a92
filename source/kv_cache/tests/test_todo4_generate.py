"""TODO 4: TransformerGenerator.generate: one prefill, first token from its logits, one token per step.

Most checks give the generator a model whose forward is scripted, so they do not
depend on TODOs 1-3; the last one runs the real model end to end.
"""

import pytest

from kvchecks import expect
from kvchecks.configs import MODEL
from kvchecks.probes import scripted_next_token

pytestmark = pytest.mark.todo4

PROMPT = [5, 17, 2, 40]
NEW = 5


def scripted(probe, **extra):
    args = dict(config=MODEL, prompt=PROMPT, max_new_tokens=NEW)
    args.update(extra)
    return probe("generate_scripted", **args)


def greedy_continuation(prompt, count):
    """What the scripted model generates: each token follows from the previous one and its position."""
    tokens = list(prompt)
    for _ in range(count):
        tokens.append(scripted_next_token(tokens[-1], len(tokens) - 1, MODEL["vocab_size"]))
    return tokens


@pytest.mark.points(2)
def test_prompt_is_prefilled_in_one_call(probe):
    got = scripted(probe)
    expect.no_error(got["results"][0], 4, "generate(prompt, 5)")
    first = got["calls"][0] if got["calls"] else None
    expect.that(first is not None and first["tokens"] == [PROMPT] and first["length"] == 0, 4,
                f"the first model call should feed the whole prompt {[PROMPT]} to an empty cache, got {first}")
    expect.that(first["is_kvcache"], 4, "the model must be called with a KVCache (use self.new_cache())")


@pytest.mark.points(2)
def test_first_new_token_comes_from_the_prefill_logits(probe):
    got = scripted(probe)
    tokens = expect.no_error(got["results"][0], 4, "generate(prompt, 5)")
    want = scripted_next_token(PROMPT[-1], len(PROMPT) - 1, MODEL["vocab_size"])
    expect.that(isinstance(tokens, list) and len(tokens) > len(PROMPT) and tokens[len(PROMPT)] == want, 4,
                f"the first new token should be {want}, the argmax of the prefill's last logits; got {tokens}. "
                "Do not feed the last prompt token again.")


@pytest.mark.points(2)
def test_each_step_feeds_only_the_previous_new_token(probe):
    got = scripted(probe)
    expect.no_error(got["results"][0], 4, "generate(prompt, 5)")
    tokens = greedy_continuation(PROMPT, NEW)
    want = [[[tokens[len(PROMPT) + i - 1]]] for i in range(1, NEW)]
    expect.equal([c["tokens"] for c in got["calls"][1:]], want, 4, "token ids fed by the decode calls",
                 hint=f"{NEW} new tokens take one prefill and {NEW - 1} decode calls of one token each; the last "
                      "new token is never fed.")
    expect.equal([c["cache"] for c in got["calls"]], [0] * NEW, 4, "cache used by each call",
                 hint="All calls of one generate share one cache.")


@pytest.mark.points(1)
def test_generate_returns_the_prompt_and_the_new_tokens(probe):
    got = scripted(probe)
    tokens = expect.no_error(got["results"][0], 4, "generate(prompt, 5)")
    expect.equal(tokens, greedy_continuation(PROMPT, NEW), 4, "generate(prompt, 5)")


@pytest.mark.points(2)
def test_every_generate_call_starts_a_fresh_cache(probe):
    got = scripted(probe, repeats=2)
    for result in got["results"]:
        expect.equal(expect.no_error(result, 4, "generate(prompt, 5)"), greedy_continuation(PROMPT, NEW), 4,
                     "each of two generate calls", hint="A second call must not see the first call's tokens.")
    expect.equal([c["cache"] for c in got["calls"]], [0] * NEW + [1] * NEW, 4, "cache used by each call",
                 hint="Make a new cache (self.new_cache()) at the start of every generate call.")


@pytest.mark.points(1)
def test_requests_longer_than_max_seq_len_raise_value_error(probe):
    fits = scripted(probe, generator_len=len(PROMPT) + NEW)["results"][0]
    expect.no_error(fits, 4, f"generate with len(prompt) + max_new_tokens == max_seq_len == {len(PROMPT) + NEW}")
    too_long = scripted(probe, generator_len=len(PROMPT) + NEW - 1)["results"][0]
    error = too_long.get("error")
    expect.that(error is not None and error["value_error"], 4,
                f"generate needing {len(PROMPT) + NEW} positions with max_seq_len={len(PROMPT) + NEW - 1} should "
                f"raise ValueError, got {error or too_long.get('value')}")


@pytest.mark.points(3)
def test_generate_matches_uncached_greedy_decoding(probe, expected):
    args = dict(config=MODEL, seed=21, prompt=[1, 2, 3, 4, 5, 6], max_new_tokens=12)
    tokens = expect.no_error(probe("generate_real", **args), 4, "generate on the real model")
    want = expected("greedy_uncached", **args)["tokens"]
    expect.equal(tokens, want, 4, "generated token ids against greedy decoding without a cache",
                 hint="This check runs the whole model: if TODO 1-3 checks fail, fix those first.")

"""TODO 4: TransformerGenerator.generate: one prefill, first token from its logits, one token per step.

Most checks give the generator a model whose forward is scripted (it predicts
a token from the previous one and its position, and records each call), so they do not depend
on TODOs 1-3; the last one runs the real model end to end.
"""

import pytest

from kvchecks import expect
from kvchecks.i18n import _
from kvcache_checks.configs import MODEL

pytestmark = pytest.mark.todo4

PROMPT = [5, 17, 2, 40]
NEW = 5
CALL = f"generate(prompt, {NEW})"


def scripted(probe, expected, **extra):
    """What the student's generator did on the scripted model, and what the reference's did."""
    args = dict(config=MODEL, prompt=PROMPT, max_new_tokens=NEW)
    args.update(extra)
    return probe("generate_scripted", **args), expected("generate_scripted", **args)


@pytest.mark.points(2)
def test_prompt_is_prefilled_in_one_call(probe, expected):
    got, want = scripted(probe, expected)
    expect.no_error(got["results"][0], CALL)
    first, right = (got["calls"] or [None])[0], want["calls"][0]
    expect.that(first is not None and first["tokens"] == right["tokens"] and first["length"] == 0,
                _("the first model call should feed the whole prompt {prompt} to an empty cache, got {first}").format(
                    prompt=right["tokens"], first=first))
    expect.that(first["is_kvcache"], _("the model must be called with a KVCache (e.g. self.new_cache())"))


@pytest.mark.points(2)
def test_first_new_token_comes_from_the_prefill_logits(probe, expected):
    got, want = scripted(probe, expected)
    tokens = expect.no_error(got["results"][0], CALL)
    right = want["results"][0]["value"]
    first = tokens[len(PROMPT)] if isinstance(tokens, list) and len(tokens) > len(PROMPT) else None
    hint = ""
    if len(got["calls"]) > 1 and got["calls"][1]["tokens"] == [[right[len(PROMPT) - 1]]]:
        hint = _("Your second call fed the last prompt token again: the prefill's last logits already predict the "
                 "first new token, and feeding that token again puts it at a new position.")
    expect.that(first == right[len(PROMPT)],
                _("the first new token should be {expected}, the argmax of the prefill's last logits; got {first} "
                  "(whole result {tokens})").format(expected=right[len(PROMPT)], first=first, tokens=tokens), hint)


@pytest.mark.points(2)
def test_each_step_feeds_only_the_previous_new_token(probe, expected):
    got, want = scripted(probe, expected)
    expect.no_error(got["results"][0], CALL)
    expect.equal([c["tokens"] for c in got["calls"][1:]], [c["tokens"] for c in want["calls"][1:]],
                 _("token ids fed by the decode calls"),
                 hint=_("{new} new tokens take one prefill and {decodes} decode calls of one token each; the last "
                        "new token is never fed.").format(new=NEW, decodes=NEW - 1))
    expect.equal([c["cache"] for c in got["calls"]], [0] * NEW, _("cache used by each call"),
                 hint=_("All calls of one generate share one cache."))


@pytest.mark.points(2)
def test_generate_returns_the_prompt_and_the_new_tokens(probe, expected):
    got, want = scripted(probe, expected)
    tokens = expect.no_error(got["results"][0], CALL)
    expect.that(type(tokens) is list, _("{call} should return a list, got {type}: {tokens!r}").format(
        call=CALL, type=type(tokens).__name__, tokens=tokens))
    odd = [t for t in tokens if type(t) is not int]
    expect.that(not odd, _("{call} should return Python ints, got {odd!r} among them").format(call=CALL, odd=odd[:3]),
                hint=_("Turn a chosen token into an int (int(logits.argmax()) or .item())."))
    expect.equal(tokens, want["results"][0]["value"], CALL)


@pytest.mark.points(1)
def test_the_callers_prompt_is_left_alone(probe, expected):
    got, want = scripted(probe, expected)
    expect.no_error(got["results"][0], CALL)
    expect.equal(got["prompts_after"][0], want["prompts_after"][0],
                 _("the prompt list passed to generate, after the call"),
                 hint=_("Build the result in a new list (list(prompt)); do not append to the caller's list."))


@pytest.mark.points(2)
def test_every_generate_call_starts_a_fresh_cache(probe, expected):
    got, want = scripted(probe, expected, repeats=2)
    for result in got["results"]:
        expect.no_error(result, CALL)
    caches = [c["cache"] for c in got["calls"]]
    hint = _("Each generate call makes {calls} model calls (the prefill, then one per new token but the last), all "
             "on the one new cache it starts with.").format(calls=NEW)
    if len(set(caches)) < 2:
        hint = _("Make a new cache at the start of every generate call.")
    expect.equal(caches, [0] * NEW + [1] * NEW, _("cache used by each call"), hint=hint)
    for result, right in zip(got["results"], want["results"]):
        expect.equal(result["value"], right["value"], _("each of two generate calls"),
                     hint=_("A second call must not see the first call's tokens."))


@pytest.mark.points(1)
def test_max_new_tokens_zero_returns_the_prompt(probe, expected):
    got, want = scripted(probe, expected, max_new_tokens=0)
    expect.equal(expect.no_error(got["results"][0], "generate(prompt, 0)"), want["results"][0]["value"],
                 "generate(prompt, 0)")
    expect.equal(got["same_object"][0], False, _("whether generate(prompt, 0) returned the caller's own list"),
                 hint=_("Return a new list (list(prompt)), also when nothing is generated."))


@pytest.mark.points(1)
def test_requests_longer_than_max_seq_len_raise_value_error(probe, expected):
    fits, _want = scripted(probe, expected, generator_len=len(PROMPT) + NEW)
    expect.no_error(fits["results"][0], _("generate with len(prompt) + max_new_tokens == max_seq_len == "
                                          "{length}").format(length=len(PROMPT) + NEW))
    too_long, _want = scripted(probe, expected, generator_len=len(PROMPT) + NEW - 1)
    expect.raised(too_long["results"][0], "value_error",
                  _("generate needing {needed} positions with max_seq_len={max_seq_len}").format(
                      needed=len(PROMPT) + NEW, max_seq_len=len(PROMPT) + NEW - 1))


@pytest.mark.points(1)
def test_an_empty_prompt_raises_value_error(probe, expected):
    got, _want = scripted(probe, expected, prompt=[])
    expect.raised(got["results"][0], "value_error", "generate([], 5)")
    expect.equal(got["calls"], [], _("model calls before the ValueError"),
                 hint=_("Check the arguments before the prefill."))


@pytest.mark.points(1)
def test_negative_max_new_tokens_raises_value_error(probe, expected):
    got, _want = scripted(probe, expected, max_new_tokens=-1)
    expect.raised(got["results"][0], "value_error", "generate(prompt, -1)")
    expect.equal(got["calls"], [], _("model calls before the ValueError"),
                 hint=_("Check the arguments before the prefill."))


@pytest.mark.points(3)
@pytest.mark.uses(1, 2, 3)
def test_generate_matches_uncached_greedy_decoding(probe, expected):
    args = dict(config=MODEL, seed=21, prompt=[1, 2, 3, 4, 5, 6], max_new_tokens=12)
    tokens = expect.no_error(probe("generate_real", **args), _("generate on the real model"), needs=(1, 2, 3))
    want = expected("greedy_uncached", **args)["tokens"]
    expect.equal(tokens, want, _("generated token ids against greedy decoding without a cache"), needs=(1, 2, 3))


@pytest.mark.points(1)
def test_max_new_tokens_zero_calls_no_model(probe, expected):
    got, _want = scripted(probe, expected, max_new_tokens=0)
    expect.no_error(got["results"][0], "generate(prompt, 0)")
    expect.equal(len(got["calls"]), 0, _("model calls made by generate(prompt, 0)"),
                 hint=_("N new tokens take one prefill and N - 1 decode calls; for N = 0 there is nothing to compute: "
                        "return a copy of the prompt without calling the model."))

"""TODO 6: SpeculativeDecoder.generate: a target prefill, then rounds of k draft proposals checked by one target
call; the output is the target's greedy decoding, and the caches are cropped after every round.

Most checks script both models (``generation.spec_rule``: the target predicts a rule of each token and its
position; the draft agrees with it always, never, or on some positions) and hand the decoder stand-in caches
with a correct crop that record what happens, so they run neither TODOs 1-3 nor your KVCache.crop (TODO 5). The
last check runs real seeded models and your KVCache (TODOs 1, 2 and 5 too).
"""

import pytest

from kvchecks import expect
from kvserving_checks.configs_generation import DRAFT, MODEL, SCRIPTED, STATS, counts

pytestmark = pytest.mark.todo6

WHOLE_MODEL = (1, 2, 5)  # the TODOs a check of the whole model also runs
PROMPT = [5, 17, 2, 40]
NEW = 10
CALL = f"generate(prompt of {len(PROMPT)} tokens, {NEW})"
ROUND = ("Each round: k = min(draft_tokens, missing - 1) proposals from the draft, then one target call on [last "
         "committed token, d_1 .. d_k]; the matching proposals and the target's own next token are committed.")
TARGET_CROP = ("After each round crop the target's cache to the committed tokens but the last (len(committed) - 1): "
               "the next round feeds that last token first.")


def spec(probe, expected, **extra):
    """What the student's decoder did with scripted models, and what the reference's did."""
    args = dict(config=SCRIPTED, prompt=PROMPT, max_new_tokens=NEW, seed=3)
    args.update(extra)
    return probe("speculative_scripted", **args), expected("speculative_scripted", **args)


def of(model: str, calls: list[dict]) -> list[dict]:
    return [c for c in calls if c["model"] == model]


def draft_rounds(calls: list[dict]) -> list[tuple[list[dict], dict]]:
    """(the draft's calls, then the target call) of each round in which the draft was called."""
    rounds, drafts = [], []
    for call in calls:
        if call["model"] == "draft":
            drafts.append(call)
        elif drafts:
            rounds.append((drafts, call))
            drafts = []
    return rounds


@pytest.mark.points(1)
@pytest.mark.parametrize("draft_tokens", [1, 2, 4, 20])
def test_output_equals_the_targets_greedy_decoding(probe, expected, draft_tokens):
    got, want = spec(probe, expected, draft_tokens=draft_tokens)
    tokens = expect.no_error(got["results"][0], f"{CALL} with draft_tokens={draft_tokens}")
    greedy = expect.no_error(got["greedy"], "Generator.generate on the scripted target")
    expect.that(type(tokens) is list and all(type(t) is int for t in tokens),
                f"generate should return a list of Python ints, got {tokens!r}")
    expect.equal(tokens, greedy, f"{CALL} with draft_tokens={draft_tokens}, against the target's greedy decoding",
                 hint=ROUND)
    expect.equal(tokens, want["results"][0]["value"], f"{CALL} with draft_tokens={draft_tokens}")


@pytest.mark.points(2)
def test_an_identical_draft_is_always_accepted(probe, expected):
    got, want = spec(probe, expected, draft="same")
    tokens = expect.no_error(got["results"][0], f"{CALL} with a draft equal to the target")
    expect.equal(tokens, want["results"][0]["value"], f"{CALL} with a draft equal to the target")
    expect.equal(counts(got["stats"][0]), counts(want["stats"][0]), "stats with a draft equal to the target",
                 hint="Every proposal of such a draft matches, so each round commits k + 1 tokens for one target "
                      "call. " + ROUND)


@pytest.mark.points(2)
def test_a_draft_that_never_agrees_still_gives_the_target_output(probe, expected):
    got, want = spec(probe, expected, draft="never")
    tokens = expect.no_error(got["results"][0], f"{CALL} with a draft that never agrees")
    expect.equal(tokens, want["results"][0]["value"], f"{CALL} with a draft that never agrees",
                 hint="When d_1 is rejected the round still commits the target's own token g_0.")
    expect.equal(len(of("target", got["calls"])), NEW, "target calls (the prefill and one per round)",
                 hint="With every proposal rejected, each round commits exactly one token: the target's own.")


@pytest.mark.points(2)
def test_the_prompt_is_prefilled_by_one_target_call(probe, expected):
    got, want = spec(probe, expected)
    tokens = expect.no_error(got["results"][0], CALL)
    first, right = (of("target", got["calls"]) or [None])[0], of("target", want["calls"])[0]
    expect.equal(first, right, "the first target call ({model, tokens, cache, length at the call})",
                 hint="The target first runs once on the whole prompt, on its fresh cache (self.target.new_cache()).")
    new = want["results"][0]["value"][len(PROMPT)]
    expect.equal(tokens[len(PROMPT):len(PROMPT) + 1], [new], "the first new token",
                 hint="The argmax of the prefill's last logits is the first new token.")


@pytest.mark.points(3)
def test_each_round_is_one_target_call_on_the_last_token_and_the_proposals(probe, expected):
    got, want = spec(probe, expected)
    expect.no_error(got["results"][0], CALL)
    mine, right = of("target", got["calls"]), of("target", want["calls"])
    hint = ROUND
    if len(mine) > len(right):
        hint = (f"the target was called {len(mine)} times where {len(right)} calls (the prefill and one per round) "
                "do: check all k proposals in one call. " + ROUND)
    expect.equal(mine[1:], right[1:], "the target's calls after the prefill ({model, tokens, cache, length at the "
                 "call})", hint=hint)


@pytest.mark.points(2)
def test_each_round_drafts_min_of_draft_tokens_and_missing_minus_one(probe, expected):
    got, want = spec(probe, expected, draft="same")
    expect.no_error(got["results"][0], f"{CALL} with a draft equal to the target")
    sizes = [len(c["tokens"][0]) - 1 for c in of("target", got["calls"])[1:]]
    right = [len(c["tokens"][0]) - 1 for c in of("target", want["calls"])[1:]]
    expect.equal(sizes, right, "proposals checked per round (k)",
                 hint="k = min(draft_tokens, missing - 1), missing counting the tokens still to generate: a round "
                      "then commits at most the missing tokens.")


@pytest.mark.points(2)
def test_the_draft_is_fed_only_what_it_has_not_seen(probe, expected):
    got, _ = spec(probe, expected)
    tokens = expect.no_error(got["results"][0], CALL)
    rule = ("In each round the draft's first call feeds the committed tokens its cache does not hold yet; each later "
            "call feeds only the proposal just made, on the draft's own cache (self.draft.new_cache()).")
    for call in of("draft", got["calls"]):
        expect.that(str(call["cache"]).startswith("draft"), f"a draft call ran with cache {call['cache']!r}, not "
                    "the draft's own", hint=rule)
    for number, (drafts, target) in enumerate(draft_rounds(got["calls"]), 1):
        committed = tokens[:target["length"] + 1]
        right = [committed[drafts[0]["length"]:]] + [[d] for d in target["tokens"][0][1:len(drafts)]]
        expect.equal([c["tokens"][0] for c in drafts], right, f"token ids fed to the draft in round {number} (its "
                     f"cache held {drafts[0]['length']} positions, {len(committed)} tokens were committed)", hint=rule)


@pytest.mark.points(3)
def test_the_targets_cache_is_cropped_to_the_committed_tokens_but_the_last(probe, expected):
    for draft in ("never", "mixed"):
        got, want = spec(probe, expected, draft=draft)
        expect.no_error(got["results"][0], f"{CALL} with a {draft} draft")
        lengths = [c["length"] for c in of("target", got["calls"])]
        right = [c["length"] for c in of("target", want["calls"])]
        hint = TARGET_CROP
        if not any(c["cache"].startswith("target") for c in got["crops"]):
            hint = "your decoder never cropped the target's cache. " + TARGET_CROP
        expect.equal(lengths, right, f"the target's cache length at each of its calls (draft: {draft})", hint=hint)


@pytest.mark.points(2)
def test_the_drafts_cache_is_cropped_after_a_rejection(probe, expected):
    got, want = spec(probe, expected)
    expect.no_error(got["results"][0], CALL)
    for number, (drafts, target) in enumerate(draft_rounds(got["calls"]), 1):
        draft = drafts[0]
        expect.that(draft["length"] <= target["length"],
                    f"when round {number} began, the draft's cache held {draft['length']} positions, more than the "
                    f"committed tokens but the last ({target['length']}): it still held rejected proposals",
                    hint="After each round crop the draft's cache to min(its length, len(committed) - 1).")
    expect.equal(of("target", got["calls"]), of("target", want["calls"]), "the target's calls (they carry the "
                 "draft's proposals)", hint="A draft whose cache still holds rejected proposals proposes from wrong "
                                            "positions.")
    expect.equal(counts(got["stats"][0]), counts(want["stats"][0]), "stats")


@pytest.mark.points(3)
def test_stats_count_calls_and_proposals(probe, expected):
    got, want = spec(probe, expected)
    expect.no_error(got["results"][0], CALL)
    stats = got["stats"][0]
    expect.that(isinstance(stats, dict) and set(stats) >= set(STATS),
                f"self.stats should be a dict with target_calls, draft_calls, proposed and accepted, got {stats!r}")
    counted = {"target_calls": len(of("target", got["calls"])), "draft_calls": len(of("draft", got["calls"]))}
    expect.equal({k: stats[k] for k in counted}, counted, "stats against the calls the models received",
                 hint="target_calls counts the prefill too; draft_calls every call of the draft model.")
    expect.equal(counts(stats), counts(want["stats"][0]), "stats",
                 hint="proposed and accepted add up k and the number of matching proposals over all rounds.")


@pytest.mark.points(2)
def test_every_call_starts_fresh_caches(probe, expected):
    got, want = spec(probe, expected, repeats=2)
    for result in got["results"]:
        expect.no_error(result, CALL)
    expect.equal([[c["model"], c["cache"], c["length"]] for c in got["calls"]],
                 [[c["model"], c["cache"], c["length"]] for c in want["calls"]],
                 "[model, cache, its length] at each call of two generate calls",
                 hint="Each generate call takes one new cache per model: self.target.new_cache(), "
                      "self.draft.new_cache().")
    expect.equal(got["results"][1], got["results"][0], "the second of two generate calls, against the first")
    expect.equal(counts(got["stats"][1]), counts(got["stats"][0]), "stats after the second of two generate calls",
                 hint="self.stats describes the last call only: start from zeros in every call.")


@pytest.mark.points(1)
def test_max_new_tokens_zero_and_one(probe, expected):
    got, want = spec(probe, expected, max_new_tokens=0)
    tokens = expect.no_error(got["results"][0], "generate(prompt, 0)")
    expect.equal(tokens, want["results"][0]["value"], "generate(prompt, 0)")
    expect.equal(got["same_object"][0], False, "whether generate(prompt, 0) returned the caller's own list",
                 hint="Return a new list.")
    got, want = spec(probe, expected, max_new_tokens=1)
    tokens = expect.no_error(got["results"][0], "generate(prompt, 1)")
    expect.equal(tokens, want["results"][0]["value"], "generate(prompt, 1)")
    expect.equal([c["model"] for c in got["calls"]], ["target"], "the models called for one new token",
                 hint="The prefill gives the only new token: no round follows.")


@pytest.mark.points(1)
@pytest.mark.parametrize("prompt,new,length", [
    ([], NEW, None),
    (PROMPT, -1, None),
    (PROMPT, NEW, len(PROMPT) + NEW - 1),
], ids=["empty_prompt", "negative_count", "too_long"])
def test_invalid_speculative_requests_raise_value_error(probe, expected, prompt, new, length):
    if length is not None:
        fits, _ = spec(probe, expected, generator_len=length + 1)
        expect.no_error(fits["results"][0], f"generate with len(prompt) + max_new_tokens == max_seq_len == "
                                            f"{length + 1}")
    got, _ = spec(probe, expected, prompt=prompt, max_new_tokens=new, generator_len=length)
    expect.raised(got["results"][0], "value_error", f"generate({prompt}, {new})" + (f" with max_seq_len={length}"
                                                                                   if length else ""),
                  hint="ValueError for an empty prompt, a negative max_new_tokens or len(prompt) + max_new_tokens > "
                       "max_seq_len, as Generator.generate.")
    expect.equal(got["calls"], [], "model calls before the ValueError", hint="Check the request before the prefill.")


@pytest.mark.points(4)
def test_speculative_decoding_equals_target_greedy_on_real_models(probe, expected):
    args = dict(config=MODEL, seed=25, prompt=[3, 14, 15, 9, 2, 6], max_new_tokens=14, draft_config=DRAFT,
                draft_tokens=3)
    got, want = probe("speculative_real", **args), expected("speculative_real", **args)
    tokens = expect.no_error(got["result"], "speculative generate with a real target and a shallower draft",
                             needs=WHOLE_MODEL)
    expect.equal(tokens, want["greedy"], "speculative output against the target's greedy decoding without a cache",
                 hint=ROUND + " " + TARGET_CROP, needs=WHOLE_MODEL)

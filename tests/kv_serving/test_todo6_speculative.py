"""TODO 6: SpeculativeDecoder.generate: a target prefill, then rounds of k draft proposals checked by one target
call; the output is the target's greedy decoding, and the caches are cropped after every round.

Most checks script both models (``generation.spec_rule``: the target predicts a rule of each token and its
position; the draft agrees with it always, never, or on some positions) and hand the decoder stand-in caches
with a correct crop that record what happens, so they run neither TODOs 1-3 nor your KVCache.crop (TODO 5). The
last check runs real seeded models and your KVCache (TODOs 1, 2 and 5 too).
"""

import pytest

from kvchecks import expect
from kvchecks.i18n import N_, _, ngettext
from kvserving_checks.configs_generation import DRAFT, MODEL, SCRIPTED, STATS, counts

pytestmark = pytest.mark.todo6

WHOLE_MODEL = (1, 2, 5)  # the TODOs a check of the whole model also runs
PROMPT = [5, 17, 2, 40]
NEW = 10
CALL = N_("generate(prompt of {length} tokens, {new})")
ROUND = N_("Each round: k = min(draft_tokens, missing - 1) proposals from the draft, then one target call on [last "
           "committed token, d_1 .. d_k]; the matching proposals and the target's own next token are committed.")
DRAFTS = {"never": N_("a draft that never agrees"), "mixed": N_("a draft that agrees on some positions only")}
TARGET_CROP = N_("After each round crop the target's cache to the committed tokens but the last (len(committed) - 1): "
                 "the next round feeds that last token first.")


def named_call() -> str:
    """The call most checks make, as a message names it."""
    return _(CALL).format(length=len(PROMPT), new=NEW)


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
    what = _("{call} with draft_tokens={draft_tokens}").format(call=named_call(), draft_tokens=draft_tokens)
    tokens = expect.no_error(got["results"][0], what)
    greedy = expect.no_error(got["greedy"], _("Generator.generate on the scripted target"))
    expect.that(type(tokens) is list and all(type(t) is int for t in tokens),
                _("generate should return a list of Python ints, got {tokens!r}").format(tokens=tokens))
    expect.equal(tokens, greedy, _("{call} with draft_tokens={draft_tokens}, against the target's greedy "
                                   "decoding").format(call=named_call(), draft_tokens=draft_tokens),
                 hint=_(ROUND))
    expect.equal(tokens, want["results"][0]["value"], what)


@pytest.mark.points(2)
def test_an_identical_draft_is_always_accepted(probe, expected):
    got, want = spec(probe, expected, draft="same")
    what = _("{call} with a draft equal to the target").format(call=named_call())
    tokens = expect.no_error(got["results"][0], what)
    expect.equal(tokens, want["results"][0]["value"], what)
    expect.equal(counts(got["stats"][0]), counts(want["stats"][0]), _("stats with a draft equal to the target"),
                 hint=_("Every proposal of such a draft matches, so each round commits k + 1 tokens for one target "
                        "call. {round}").format(round=_(ROUND)))


@pytest.mark.points(2)
def test_a_draft_that_never_agrees_still_gives_the_target_output(probe, expected):
    got, want = spec(probe, expected, draft="never")
    what = _("{call} with a draft that never agrees").format(call=named_call())
    tokens = expect.no_error(got["results"][0], what)
    expect.equal(tokens, want["results"][0]["value"], what,
                 hint=_("When d_1 is rejected the round still commits the target's own token g_0."))
    expect.equal(len(of("target", got["calls"])), NEW, _("target calls (the prefill and one per round)"),
                 hint=_("With every proposal rejected, each round commits exactly one token: the target's own."))


@pytest.mark.points(2)
def test_the_prompt_is_prefilled_by_one_target_call(probe, expected):
    got, want = spec(probe, expected)
    tokens = expect.no_error(got["results"][0], named_call())
    first, right = (of("target", got["calls"]) or [None])[0], of("target", want["calls"])[0]
    expect.equal(first, right, _("the first target call ({cache, length at the call, model, tokens})"),
                 hint=_("The target first runs once on the whole prompt, on its fresh cache "
                        "(self.target.new_cache())."))
    new = want["results"][0]["value"][len(PROMPT)]
    expect.equal(tokens[len(PROMPT):len(PROMPT) + 1], [new], _("the first new token"),
                 hint=_("The argmax of the prefill's last logits is the first new token."))


@pytest.mark.points(3)
def test_each_round_is_one_target_call_on_the_last_token_and_the_proposals(probe, expected):
    got, want = spec(probe, expected)
    expect.no_error(got["results"][0], named_call())
    mine, right = of("target", got["calls"]), of("target", want["calls"])
    hint = _(ROUND)
    if len(mine) > len(right):
        hint = _("the target was called {calls} times where {needed} calls (the prefill and one per round) do: check "
                 "all k proposals in one call. {round}").format(calls=len(mine), needed=len(right), round=_(ROUND))
    expect.equal(mine[1:], right[1:], _("the target's calls after the prefill ({cache, length at the call, model, "
                                        "tokens})"), hint=hint)


@pytest.mark.points(2)
def test_each_round_drafts_min_of_draft_tokens_and_missing_minus_one(probe, expected):
    got, want = spec(probe, expected, draft="same")
    expect.no_error(got["results"][0], _("{call} with a draft equal to the target").format(call=named_call()))
    sizes = [len(c["tokens"][0]) - 1 for c in of("target", got["calls"])[1:]]
    right = [len(c["tokens"][0]) - 1 for c in of("target", want["calls"])[1:]]
    expect.equal(sizes, right, _("proposals checked per round (k)"),
                 hint=_("k = min(draft_tokens, missing - 1), missing counting the tokens still to generate: a round "
                        "then commits at most the missing tokens."))


@pytest.mark.points(2)
def test_the_draft_is_fed_only_what_it_has_not_seen(probe, expected):
    got, _reference = spec(probe, expected)
    tokens = expect.no_error(got["results"][0], named_call())
    rule = _("In each round the draft's first call feeds the committed tokens its cache does not hold yet; each "
             "later call feeds only the proposal just made, on the draft's own cache (self.draft.new_cache()).")
    for call in of("draft", got["calls"]):
        expect.that(str(call["cache"]).startswith("draft"),
                    _("a draft call ran with cache {cache!r}, not the draft's own").format(cache=call['cache']),
                    hint=rule)
    for number, (drafts, target) in enumerate(draft_rounds(got["calls"]), 1):
        committed = tokens[:target["length"] + 1]
        right = [committed[drafts[0]["length"]:]] + [[d] for d in target["tokens"][0][1:len(drafts)]]
        expect.equal([c["tokens"][0] for c in drafts], right,
                     ngettext("token ids fed to the draft in round {number} (its cache held {held} position; "
                              "{committed} tokens were committed)",
                              "token ids fed to the draft in round {number} (its cache held {held} positions; "
                              "{committed} tokens were committed)", drafts[0]["length"]).format(
                         number=number, held=drafts[0]["length"], committed=len(committed)), hint=rule)


@pytest.mark.points(3)
def test_the_targets_cache_is_cropped_to_the_committed_tokens_but_the_last(probe, expected):
    for draft in ("never", "mixed"):
        got, want = spec(probe, expected, draft=draft)
        expect.no_error(got["results"][0], _("{call} with {draft}").format(call=named_call(), draft=_(DRAFTS[draft])))
        lengths = [c["length"] for c in of("target", got["calls"])]
        right = [c["length"] for c in of("target", want["calls"])]
        hint = _(TARGET_CROP)
        if not any(c["cache"].startswith("target") for c in got["crops"]):
            hint = _("your decoder never cropped the target's cache. {rule}").format(rule=_(TARGET_CROP))
        expect.equal(lengths, right, _("the target's cache length at each of its calls, with {draft}").format(
            draft=_(DRAFTS[draft])), hint=hint)


@pytest.mark.points(2)
def test_the_drafts_cache_is_cropped_after_a_rejection(probe, expected):
    got, want = spec(probe, expected)
    expect.no_error(got["results"][0], named_call())
    for number, (drafts, target) in enumerate(draft_rounds(got["calls"]), 1):
        draft = drafts[0]
        expect.that(draft["length"] <= target["length"],
                    ngettext("when round {number} began, the draft's cache held {held} position, more than the "
                             "committed tokens but the last ({committed}): it still held rejected proposals",
                             "when round {number} began, the draft's cache held {held} positions, more than the "
                             "committed tokens but the last ({committed}): it still held rejected proposals",
                             draft["length"]).format(
                          number=number, held=draft['length'], committed=target['length']),
                    hint=_("After each round crop the draft's cache to min(its length, len(committed) - 1)."))
    expect.equal(of("target", got["calls"]), of("target", want["calls"]), _("the target's calls (they carry the "
                                                                            "draft's proposals)"),
                 hint=_("The draft's cache was cropped right, so the committed tokens differ. {round}").format(
                     round=_(ROUND)))
    expect.equal(counts(got["stats"][0]), counts(want["stats"][0]), "stats")


@pytest.mark.points(3)
def test_stats_count_calls_and_proposals(probe, expected):
    got, want = spec(probe, expected)
    expect.no_error(got["results"][0], named_call())
    stats = got["stats"][0]
    expect.that(isinstance(stats, dict) and set(stats) >= set(STATS),
                _("self.stats should be a dict with target_calls, draft_calls, proposed and accepted, got "
                  "{stats!r}").format(stats=stats))
    counted = {"target_calls": len(of("target", got["calls"])), "draft_calls": len(of("draft", got["calls"]))}
    expect.equal({k: stats[k] for k in counted}, counted, _("stats against the calls the models received"),
                 hint=_("target_calls counts the prefill too; draft_calls every call of the draft model."))
    expect.equal(counts(stats), counts(want["stats"][0]), "stats",
                 hint=_("proposed and accepted add up k and the number of matching proposals over all rounds."))


@pytest.mark.points(2)
def test_every_call_starts_fresh_caches(probe, expected):
    got, want = spec(probe, expected, repeats=2)
    for result in got["results"]:
        expect.no_error(result, named_call())
    expect.equal([[c["model"], c["cache"], c["length"]] for c in got["calls"]],
                 [[c["model"], c["cache"], c["length"]] for c in want["calls"]],
                 _("[model, cache, its length] at each call of two generate calls"),
                 hint=_("Each generate call takes one new cache per model: self.target.new_cache(), "
                        "self.draft.new_cache()."))
    expect.equal(got["results"][1], got["results"][0], _("the second of two generate calls, against the first"))
    expect.equal(counts(got["stats"][1]), counts(got["stats"][0]), _("stats after the second of two generate calls"),
                 hint=_("self.stats describes the last call only: start from zeros in every call."))


@pytest.mark.points(1)
def test_max_new_tokens_zero_and_one(probe, expected):
    got, want = spec(probe, expected, max_new_tokens=0)
    tokens = expect.no_error(got["results"][0], "generate(prompt, 0)")
    expect.equal(tokens, want["results"][0]["value"], "generate(prompt, 0)")
    expect.equal(got["same_object"][0], False, _("whether generate(prompt, 0) returned the caller's own list"),
                 hint=_("Return a new list."))
    got, want = spec(probe, expected, max_new_tokens=1)
    tokens = expect.no_error(got["results"][0], "generate(prompt, 1)")
    expect.equal(tokens, want["results"][0]["value"], "generate(prompt, 1)")
    expect.equal([c["model"] for c in got["calls"]], ["target"], _("the models called for one new token"),
                 hint=_("The prefill gives the only new token: no round follows."))


@pytest.mark.points(1)
def test_the_callers_prompt_is_left_alone(probe, expected):
    got, want = spec(probe, expected)
    expect.no_error(got["results"][0], named_call())
    hint = _("Build the result in a new list (list(prompt)); do not append to the caller's list.")
    expect.equal(got["prompts_after"][0], want["prompts_after"][0],
                 _("the prompt list passed to generate, after the call"), hint=hint)
    expect.equal(got["same_object"][0], False, _("whether {call} returned the caller's own list").format(
        call=named_call()), hint=hint)


@pytest.mark.points(1)
@pytest.mark.parametrize("prompt,new,length", [
    ([], NEW, None),
    (PROMPT, -1, None),
    (PROMPT, NEW, len(PROMPT) + NEW - 1),
], ids=["empty_prompt", "negative_count", "too_long"])
def test_invalid_speculative_requests_raise_value_error(probe, expected, prompt, new, length):
    if length is not None:
        fits, _reference = spec(probe, expected, generator_len=length + 1)
        expect.no_error(fits["results"][0], _("generate with len(prompt) + max_new_tokens == max_seq_len == "
                                              "{length}").format(length=length + 1))
    got, _reference = spec(probe, expected, prompt=prompt, max_new_tokens=new, generator_len=length)
    what = _("generate({prompt}, {new}) with max_seq_len={length}").format(prompt=prompt, new=new, length=length) \
        if length else f"generate({prompt}, {new})"
    expect.raised(got["results"][0], "value_error", what,
                  hint=_("ValueError for an empty prompt, a negative max_new_tokens or len(prompt) + max_new_tokens > "
                         "max_seq_len, as Generator.generate."))
    expect.equal(got["calls"], [], _("model calls before the ValueError"),
                 hint=_("Check the request before the prefill."))


@pytest.mark.points(4)
@pytest.mark.uses(1, 2, 5)
def test_speculative_decoding_equals_target_greedy_on_real_models(probe, expected):
    args = dict(config=MODEL, seed=25, prompt=[3, 14, 15, 9, 2, 6], max_new_tokens=14, draft_config=DRAFT,
                draft_tokens=3)
    got, want = probe("speculative_real", **args), expected("speculative_real", **args)
    tokens = expect.no_error(got["result"], _("speculative generate with a real target and a shallower draft"),
                             needs=WHOLE_MODEL)
    expect.equal(tokens, want["greedy"], _("speculative output against the target's greedy decoding without a cache"),
                 hint=_(ROUND) + " " + _(TARGET_CROP), needs=WHOLE_MODEL)


@pytest.mark.points(1)
def test_max_new_tokens_zero_calls_no_model_and_counts_nothing(probe, expected):
    got, _want = spec(probe, expected, max_new_tokens=0)
    expect.no_error(got["results"][0], "generate(prompt, 0)")
    expect.equal([c["model"] for c in got["calls"]], [], _("the models called by generate(prompt, 0)"),
                 hint=_("For max_new_tokens = 0 there is nothing to compute: return a copy of the prompt without "
                        "calling either model."))
    expect.equal(got["stats"][0], {"accepted": 0, "draft_calls": 0, "proposed": 0, "target_calls": 0},
                 _("stats after generate(prompt, 0)"),
                 hint=_("Every call of generate sets self.stats anew; with nothing generated, all four counts are 0."))

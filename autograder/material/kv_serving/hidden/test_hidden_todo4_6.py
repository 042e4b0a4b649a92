"""Hidden checks of TODOs 4-6: the public checks' ideas on other shapes, seeds, schedules and edge cases.

Never shipped to students. Same fixtures and markers as ``tests/kv_serving``; the reference's outputs for these
calls are in ``goldens.json`` beside this file.
"""

import pytest

from kvchecks import expect
from kvchecks.i18n import N_, _
from kvserving_checks.configs_generation import LOGITS, SCRIPTED, counts, mistake_hint

WIDE = dict(depth=3, hidden_dim=48, vocab_size=89, num_heads=6, num_kv_heads=2)
SHALLOW = dict(depth=1, hidden_dim=24, vocab_size=89, num_heads=3, num_kv_heads=1)
NO_ROTARY = dict(depth=2, hidden_dim=32, vocab_size=61, num_heads=4, rope_base=None)
WIDE_CACHE = dict(num_layers=3, batch_size=1, num_kv_heads=1, head_dim=6, max_seq_len=16)
BATCH_MODEL = (1, 2)
SPECULATIVE_MODEL = (1, 2, 5)


ALONE = N_("Each row equals its prompt generated alone: left padding with pad_id, the attention_mask from the "
           "prompts' lengths (a real token may equal pad_id), positions counting real tokens only.")
POSITIONS = N_("A real token's position counts the real tokens before it in its row (the first at 0); padding gets "
               "position 0.")
ONE_TOKEN = N_('generate_batch(prompts, 1) returns each prompt plus the one token its prefill gives.')
CHECK_FIRST = N_('Check the request before the prefill: no model call for a request that raises.')
NO_ROTARY_ALONE = N_("Without rotary positions only the mask orders the tokens: with attention_mask 0 on the padding, "
                     "each row equals its prompt decoded alone.")
CROP = N_("After crop(length), current_length == length and the buffers keep every value they hold; the next update "
          "writes from length on.")
EMPTY_CROPS = N_("crop(0) of an empty cache changes nothing; a negative length, or one past current_length, raises "
                 "ValueError and changes nothing.")
CROP_PREFILL = N_("After crop(3) the cache holds positions 0 .. 2 only: the next tokens are written from position 3 "
                  "on and see nothing that was rolled back.")
ROUNDS = N_("Each round: k = min(draft_tokens, missing - 1) proposals from the draft, then one target call on [last "
            "committed token, d_1 .. d_k]; the matching proposals and the target's own next token are committed.")
REJECTED = N_("When the only proposal is rejected, the round commits the target's own token: one new token and one "
              "target call per round.")
IDENTICAL = N_("A draft identical to the target proposes what the target chooses: every proposal is accepted, and "
               "after each round both caches hold the committed tokens but the last.")
REAL_ROUNDS = N_("The output is the target's greedy decoding: each round commits the matching proposals and the "
                 "target's own next token, and crops both caches to the committed tokens but the last.")


def batch(probe, expected, **args):
    args = dict(config=SCRIPTED, seed=41, **args)
    return probe("batch_scripted", **args), expected("batch_scripted", **args)


def spec(probe, expected, **args):
    args = dict(config=SCRIPTED, seed=43, **args)
    return probe("speculative_scripted", **args), expected("speculative_scripted", **args)


def crops(probe, expected, ops, config=WIDE_CACHE):
    args = dict(config=config, seed=47, ops=ops)
    return probe("crop_ops", **args)["steps"], expected("crop_ops", **args)["steps"]


@pytest.mark.todo4
@pytest.mark.points(2)
def test_very_different_lengths_with_a_nonzero_pad_id(probe, expected):
    got, want = batch(probe, expected, prompts=[[3], [8, 1, 4, 1, 5, 9, 2, 6, 5]], max_new_tokens=5, pad_id=1)
    rows = expect.no_error(got["results"][0], _("generate_batch of prompts of 1 and 9 tokens, pad_id=1"))
    expect.equal(rows, [expect.no_error(one, _("Generator.generate alone")) for one in got["alone"]],
                 _("rows against each prompt generated alone"), hint=_(ALONE))
    expect.equal([c["mask"] for c in got["calls"]], [c["mask"] for c in want["calls"]],
                 _("attention_mask of each call (as 0/1)"),
                 hint=_("The mask comes from the prompts' lengths: a real token may equal pad_id."))
    expect.equal([c["positions"] for c in got["calls"]], [c["positions"] for c in want["calls"]],
                 _("positions of each call"), hint=_(POSITIONS))


@pytest.mark.todo4
@pytest.mark.points(1)
def test_one_new_token_for_a_batch_of_five_takes_only_the_prefill(probe, expected):
    prompts = [[1], [2, 3], [4, 5, 6], [7, 8, 9, 10], [11, 12, 13, 14, 15]]
    got, want = batch(probe, expected, prompts=prompts, max_new_tokens=1)
    rows = expect.no_error(got["results"][0], _("generate_batch(5 prompts, 1)"))
    expect.equal(rows, want["results"][0]["value"], _("generate_batch(5 prompts, 1)"), hint=_(ONE_TOKEN))
    expect.equal([c["tokens"] for c in got["calls"]], [c["tokens"] for c in want["calls"]],
                 _("model calls for one new token"), hint=_("One new token needs only the prefill."))


@pytest.mark.todo4
@pytest.mark.points(1)
def test_a_request_too_long_for_its_longest_prompt_runs_nothing(probe, expected):
    got, _reference = batch(probe, expected, prompts=[[1, 2], [1, 2, 3, 4, 5, 6]], max_new_tokens=4, generator_len=9)
    expect.raised(got["results"][0], "value_error", _("prompts of 2 and 6 tokens + 4 new with max_seq_len=9"),
                  hint=_("P, the longest prompt's length, + max_new_tokens must fit max_seq_len."))
    expect.equal(got["calls"], [], _("model calls before the ValueError"), hint=_(CHECK_FIRST))


@pytest.mark.todo4
@pytest.mark.points(3)
@pytest.mark.uses(1, 2)
def test_wide_grouped_query_batch_on_a_real_model(probe, expected):
    args = dict(config=WIDE, seed=45, prompts=[[5, 6], [1, 2, 3, 4, 5, 6, 7], [9, 8, 7, 6], [3, 3, 3, 3, 3, 3, 3],
                                               [44]], max_new_tokens=8, pad_id=3, max_seq_len=16)
    got, want = probe("batch_real", **args), expected("batch_real", **args)
    rows = expect.no_error(got["outputs"], _("generate_batch of 5 prompts on a depth-3 model"), needs=BATCH_MODEL)
    hint = mistake_hint(expected.mistakes("batch_real", **args), lambda seen: seen["outputs"].get("value"), rows)
    expect.equal(rows, want["greedy"], _("rows against each prompt decoded alone without a cache"), hint=hint,
                 needs=BATCH_MODEL)


@pytest.mark.todo4
@pytest.mark.points(1)
@pytest.mark.uses(1)
def test_batch_on_a_model_without_rotary_positions(probe, expected):
    args = dict(config=NO_ROTARY, seed=46, prompts=[[7, 1, 7], [2, 9, 4, 4, 8, 5]], max_new_tokens=7)
    got, want = probe("batch_real", **args), expected("batch_real", **args)
    rows = expect.no_error(got["outputs"], _("generate_batch on a model without rotary positions"), needs=(1,))
    expect.equal(rows, want["greedy"], _("rows against each prompt decoded alone without a cache"), needs=(1,),
                 hint=_(NO_ROTARY_ALONE))


@pytest.mark.todo5
@pytest.mark.points(2)
def test_repeated_writes_and_crops(probe, expected):
    ops = [{"op": "write", "n": 5}, {"op": "crop", "length": 2}, {"op": "write", "n": 4},
           {"op": "crop", "length": 6}, {"op": "write", "n": 3}, {"op": "crop", "length": 1},
           {"op": "write", "n": 8}]
    got, want = crops(probe, expected, ops)
    for i, (step, right) in enumerate(zip(got, want)):
        expect.no_error(step, _("step {number} ({op})").format(number=i + 1, op=ops[i]))
        expect.equal(step["length"], right["length"], _("current_length after step {number} ({op})").format(
            number=i + 1, op=ops[i]), hint=_(CROP))
    for kind in ("keys", "values"):
        for layer, (mine, right) in enumerate(zip(got[-1][kind], want[-1][kind])):
            expect.close(mine, right, _("cache.{kind}[{layer}] after every step").format(kind=kind, layer=layer),
                         atol=0, rtol=0, hint=_(CROP))
    for layer, (mine, right) in enumerate(zip(got[-1]["returned"], want[-1]["returned"])):
        expect.close(mine[1], right[1], _("values that the last update returned (layer {layer})").format(layer=layer),
                     atol=0, rtol=0, hint=_(CROP))


@pytest.mark.todo5
@pytest.mark.points(2)
def test_crop_of_a_full_cache_then_refill(probe, expected):
    got, want = crops(probe, expected, [{"op": "write", "n": 16}, {"op": "crop", "length": 10},
                                        {"op": "write", "n": 6}])
    expect.no_error(got[1], _("crop(10) of a full cache"))
    expect.equal(got[1]["unchanged"], True, _("every buffer value after crop(10)"), hint=_(CROP))
    expect.no_error(got[2], _("6 new positions after crop(10) of a cache of 16"))
    expect.equal(got[2]["length"], 16, _("current_length after refilling"), hint=_(CROP))
    for kind in ("keys", "values"):
        expect.close(got[2][kind][2], want[2][kind][2], _("cache.{kind}[2] after refilling").format(kind=kind), atol=0,
                     rtol=0, hint=_(CROP))


@pytest.mark.todo5
@pytest.mark.points(1)
def test_crops_of_an_empty_cache(probe, expected):
    got, _reference = crops(probe, expected, [{"op": "crop", "length": 0}, {"op": "crop", "length": 1},
                                              {"op": "crop", "length": -2}])
    expect.no_error(got[0], _("crop(0) of an empty cache"))
    expect.equal(got[0]["length"], 0, _("current_length after crop(0) of an empty cache"), hint=_(EMPTY_CROPS))
    for step, asked in zip(got[1:], (1, -2)):
        expect.raised(step, "value_error", _("crop({asked}) of an empty cache").format(asked=asked),
                      hint=_(EMPTY_CROPS))
        expect.equal(step["length"], 0, _("current_length after the refused crop({asked})").format(asked=asked),
                     hint=_(EMPTY_CROPS))


@pytest.mark.todo5
@pytest.mark.points(1)
@pytest.mark.uses(1, 2)
def test_crop_into_the_prefill_of_a_deep_model(probe, expected):
    args = dict(config=WIDE, seed=48, turns=[[4, 8, 15, 16, 23, 42, 7], [1, 2], [5, 5, 6, 6]], crop_to=3)
    got, want = probe("crop_model", **args), expected("crop_model", **args)
    expect.no_error(got["crop"], _("crop(3) of a real model's cache holding 9 positions"), needs=BATCH_MODEL)
    expect.close(got["continued"], want["straight"], _("logits of 4 tokens fed after crop(3), against a model that "
                                                       "never saw positions 3 .. 8"), needs=BATCH_MODEL, **LOGITS,
                 hint=_(CROP_PREFILL))


@pytest.mark.todo6
@pytest.mark.points(2)
def test_long_generation_with_three_proposals_a_round(probe, expected):
    got, want = spec(probe, expected, prompt=[8], max_new_tokens=17, draft_tokens=3)
    tokens = expect.no_error(got["results"][0], _("generate([8], 17) with draft_tokens=3"))
    expect.equal(tokens, expect.no_error(got["greedy"], _("Generator.generate on the scripted target")),
                 _("speculative output against the target's greedy decoding"), hint=_(ROUNDS))
    expect.equal([c for c in got["calls"] if c["model"] == "target"],
                 [c for c in want["calls"] if c["model"] == "target"], _("the target's calls"), hint=_(ROUNDS))
    expect.equal(counts(got["stats"][0]), counts(want["stats"][0]), "stats", hint=_(ROUNDS))


@pytest.mark.todo6
@pytest.mark.points(1)
def test_one_proposal_a_round_that_never_agrees(probe, expected):
    got, want = spec(probe, expected, prompt=[3, 1, 4], max_new_tokens=9, draft_tokens=1, draft="never")
    tokens = expect.no_error(got["results"][0], _("generate with draft_tokens=1 and a draft that never agrees"))
    expect.equal(tokens, want["results"][0]["value"], _("speculative output"), hint=_(REJECTED))
    expect.equal(counts(got["stats"][0]), counts(want["stats"][0]), "stats",
                 hint=_("Each round proposes 1 token and commits 1."))


@pytest.mark.todo6
@pytest.mark.points(1)
def test_two_new_tokens_take_a_round_without_proposals(probe, expected):
    got, want = spec(probe, expected, prompt=[6, 2, 9], max_new_tokens=2, draft="same")
    tokens = expect.no_error(got["results"][0], "generate(prompt, 2)")
    expect.equal(tokens, want["results"][0]["value"], "generate(prompt, 2)", hint=_(ROUNDS))
    expect.equal(got["calls"], want["calls"], _("model calls for two new tokens"),
                 hint=_("After the prefill one token is missing: k = min(draft_tokens, 0) = 0, so the round is one "
                        "target call on the last committed token alone, and the draft is not called."))


@pytest.mark.todo6
@pytest.mark.points(2)
@pytest.mark.uses(1, 2, 5)
def test_an_identical_real_draft_accepts_every_proposal(probe, expected):
    args = dict(config=WIDE, seed=49, prompt=[1, 2, 3, 4, 5], max_new_tokens=13, draft_tokens=4)
    got, want = probe("speculative_real", **args), expected("speculative_real", **args)
    tokens = expect.no_error(got["result"], _("speculative generate with the target as its own draft"),
                             needs=SPECULATIVE_MODEL)
    expect.equal(tokens, want["greedy"], _("speculative output against the target's greedy decoding"),
                 needs=SPECULATIVE_MODEL, hint=_(IDENTICAL))
    expect.equal(counts(got["stats"]), counts(want["stats"]), _("stats with the target as its own draft"),
                 needs=SPECULATIVE_MODEL, hint=_(IDENTICAL))


@pytest.mark.todo6
@pytest.mark.points(2)
@pytest.mark.uses(1, 2, 5)
def test_wide_real_target_with_a_shallow_draft(probe, expected):
    args = dict(config=WIDE, seed=50, prompt=[7, 7, 1], max_new_tokens=16, draft_config=SHALLOW, draft_tokens=5)
    got, want = probe("speculative_real", **args), expected("speculative_real", **args)
    tokens = expect.no_error(got["result"], _("speculative generate with a depth-3 target and a depth-1 draft"),
                             needs=SPECULATIVE_MODEL)
    expect.equal(tokens, want["greedy"], _("speculative output against the target's greedy decoding"),
                 needs=SPECULATIVE_MODEL, hint=_(REAL_ROUNDS))

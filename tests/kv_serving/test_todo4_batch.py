"""TODO 4: BatchGenerator.generate_batch: left padding, one prefill then [B, 1] steps, a mask and positions over
real tokens only, and every row equal to its prompt generated alone.

Most checks give the generator a scripted model (``generation.batch_forward``): it predicts each next token from
the token fed, its position and how many real tokens the attention mask shows, and records every call, so a
wrong position, mask or fed token shows without running TODOs 1-3. The last check runs a real seeded model and
its KVCache (TODOs 1 and 2 too).
"""

import pytest

from kvchecks import expect
from kvchecks.i18n import N_, _, ngettext
from kvserving_checks.configs_generation import MODEL, SCRIPTED, mistake_hint

pytestmark = pytest.mark.todo4

WHOLE_MODEL = (1, 2)  # the TODOs a check of the whole model also runs
PROMPTS = [[5, 17, 2, 40, 8], [11, 0], [60, 9, 9, 21]]  # lengths 5, 2, 4; the second holds a real token 0 (pad_id)
LONGEST = max(len(p) for p in PROMPTS)
NEW = 4
CALL = N_("generate_batch(prompts of lengths {lengths}, {new})")
ROW_RULE = N_("Row b of the batch is [pad_id] * (P - len(prompts[b])) + prompts[b] (left padding).")
MASK_RULE = N_("attention_mask is [B, L + S] on every call: 0 for each padding column, 1 for every real token of the "
               "prompts and every generated token, one column more on each decode step.")
POSITION_RULE = N_("positions is [B, S]: a real token's position is the number of real tokens before it in its row "
                   "(each row's first real token is at 0), padding gets 0, and each decode step adds one.")


def named_call() -> str:
    """The call most checks make, as a message names it."""
    return _(CALL).format(lengths=[len(p) for p in PROMPTS], new=NEW)


def scripted(probe, expected, **extra):
    """What the student's generate_batch did on the scripted model, and what the reference's did."""
    args = dict(config=SCRIPTED, prompts=PROMPTS, max_new_tokens=NEW, seed=3)
    args.update(extra)
    return probe("batch_scripted", **args), expected("batch_scripted", **args)


def row_report(rows, right) -> str:
    """Which rows differ, with their prompt lengths (a true statement about ``rows``)."""
    if not isinstance(rows, list) or len(rows) != len(right):
        return ""
    wrong = [b for b, (row, want) in enumerate(zip(rows, right)) if row != want]
    items = [ngettext("{row} (a prompt of {length} token, {padding} padding)",
                      "{row} (a prompt of {length} tokens, {padding} padding)", len(PROMPTS[b])).format(
        row=b, length=len(PROMPTS[b]), padding=LONGEST - len(PROMPTS[b])) for b in wrong]
    listed = items[0] if items else ""
    for item in items[1:]:
        listed = _("{first}, {second}").format(first=listed, second=item)
    return _("rows that differ: {rows}.").format(rows=listed) if wrong else ""


def history(calls: list[dict]) -> list[list[int]]:
    """Each row's token ids over all the calls, in order."""
    rows = [[] for _ in calls[0]["tokens"]]
    for call in calls:
        for row, fed in zip(rows, call["tokens"]):
            row += fed
    return rows


@pytest.mark.points(3)
def test_each_row_equals_its_prompt_generated_alone(probe, expected):
    got, want = scripted(probe, expected)
    rows = expect.no_error(got["results"][0], named_call())
    alone = [expect.no_error(one, _("Generator.generate of one prompt alone")) for one in got["alone"]]
    seen = expected.mistakes("batch_scripted", config=SCRIPTED, prompts=PROMPTS, max_new_tokens=NEW, seed=3)
    hint = (row_report(rows, alone) + " " + (mistake_hint(seen, lambda s: s["results"][0].get("value"), rows) or
                                             _("Each row must equal its prompt generated alone, token for "
                                               "token."))).strip()
    expect.equal(rows, alone, _("{call} against generate(prompt, {new}) of each prompt alone").format(call=named_call(),
                                                                                                      new=NEW),
                 hint=hint)
    expect.equal(rows, want["results"][0]["value"], named_call(), hint=hint)


@pytest.mark.points(3)
def test_rows_are_left_padded_with_pad_id(probe, expected):
    pad = 7
    got, want = scripted(probe, expected, pad_id=pad)
    expect.no_error(got["results"][0], _("generate_batch with pad_id={pad}").format(pad=pad))
    first, right = (got["calls"] or [{"tokens": None}])[0]["tokens"], want["calls"][0]["tokens"]
    lengths = [len(p) for p in PROMPTS]
    real = [row[LONGEST - n:] for row, n in zip(right, lengths)]
    hint = _(ROW_RULE)
    if first == [r + [pad] * (LONGEST - n) for r, n in zip(real, lengths)]:
        hint = _("your prefill rows are padded on the right: pad on the left, so that every row's last real token is "
                 "in the last column, where the next token's logits are read.")
    elif isinstance(first, list) and [row[LONGEST - n:] for row, n in zip(first, lengths)] == real:
        hint = _("the padding columns do not all hold pad_id={pad}: pad with self.pad_id. {rule}").format(
            pad=pad, rule=_(ROW_RULE))
    expect.equal(first, right, _("token ids of the first model call (pad_id={pad})").format(pad=pad), hint=hint)


@pytest.mark.points(3)
def test_the_prompts_are_prefilled_in_one_call(probe, expected):
    got, want = scripted(probe, expected)
    expect.no_error(got["results"][0], named_call())
    first = (got["calls"] or [None])[0]
    shape = [len(PROMPTS), LONGEST]
    # compared in English, as before; only the message is translated
    fed = None if first is None else f"{[len(first['tokens']), len(first['tokens'][0])]} at cache length " \
        f"{first['length']}"
    seen = _("no call") if first is None else _("{shape} at cache length {length}").format(
        shape=[len(first['tokens']), len(first['tokens'][0])], length=first['length'])
    expect.that(first is not None and fed == f"{shape} at cache length 0",
                _("the first model call should feed the whole padded batch {shape} to an empty cache, got "
                  "{seen}").format(shape=shape, seen=seen),
                hint=_("One prefill call runs every prompt at once; decoding then feeds one token per row."))
    given = _("a KVCache of batch {batch!s}").format(batch=first['cache_batch']) if first['is_kvcache'] \
        else _("no KVCache")
    expect.that(first["is_kvcache"] and first["cache_batch"] == len(PROMPTS),
                _("the model must be called with a KVCache of batch {batch}, got {given}").format(batch=len(PROMPTS),
                                                                                                 given=given),
                hint=_("Make it with self.new_cache(len(prompts))."))
    expect.equal(first["tokens"], want["calls"][0]["tokens"], _("token ids of the prefill call"), hint=_(ROW_RULE))


@pytest.mark.points(3)
def test_each_step_feeds_one_token_per_row(probe, expected):
    got, want = scripted(probe, expected)
    expect.no_error(got["results"][0], named_call())
    wide = [(i, len(c["tokens"][0])) for i, c in enumerate(got["calls"][1:], 1) if len(c["tokens"][0]) != 1]
    hint = _("{new} new tokens take one prefill and {decodes} calls of [B, 1]: the tokens chosen in the step before; "
             "the last new token is never fed.").format(new=NEW, decodes=NEW - 1)
    if wide:
        hint = _("call {call} fed {columns} columns: the cache holds the rest, feed only the new token. "
                 "{hint}").format(call=wide[0][0], columns=wide[0][1], hint=hint)
    expect.equal([c["tokens"] for c in got["calls"][1:]], [c["tokens"] for c in want["calls"][1:]],
                 _("token ids fed by the decode calls"), hint=hint)
    expect.equal([[c["cache"], c["length"]] for c in got["calls"]], [[c["cache"], c["length"]] for c in want["calls"]],
                 _("[cache, its length] at each call"), hint=_("All calls of one generate_batch share one cache."))


@pytest.mark.points(3)
def test_attention_mask_marks_padding_on_every_call(probe, expected):
    got, want = scripted(probe, expected)
    expect.no_error(got["results"][0], named_call())
    masks, right = [c["mask"] for c in got["calls"]], [c["mask"] for c in want["calls"]]
    hint = _(MASK_RULE)
    wrong = next((i for i, (mask, good) in enumerate(zip(masks, right)) if mask != good), None)
    if wrong is not None and masks[wrong] is None:
        hint = _("call {call} passed no attention_mask, so the padding is attended to. {rule}").format(
            call=wrong, rule=_(MASK_RULE))
    elif wrong is not None:
        seen = history(got["calls"][:wrong + 1])
        if masks[wrong] == [[int(t != 0) for t in row] for row in seen]:
            hint = _("your mask marks every token equal to pad_id as padding, but real tokens (in the prompts, or "
                     "generated) can equal pad_id: build the mask from the prompts' lengths. {rule}").format(
                         rule=_(MASK_RULE))
    expect.equal(masks, right, _("attention_mask of each call (as 0/1)"), hint=hint)


@pytest.mark.points(3)
def test_positions_count_real_tokens_only(probe, expected):
    got, want = scripted(probe, expected)
    expect.no_error(got["results"][0], named_call())
    positions, right = [c["positions"] for c in got["calls"]], [c["positions"] for c in want["calls"]]
    hint = _(POSITION_RULE)
    wrong = next((i for i, (pos, good) in enumerate(zip(positions, right)) if pos != good), None)
    if wrong is not None:
        call = got["calls"][wrong]
        width = len(call["tokens"][0])
        indices = [list(range(call["length"], call["length"] + width)) for _ in call["tokens"]]
        if positions[wrong] is None:
            hint = _("call {call} passed no positions: the model then uses sequence indices, which count the "
                     "padding. {rule}").format(call=wrong, rule=_(POSITION_RULE))
        elif positions[wrong] == indices:
            hint = _("the positions of call {call} are sequence indices: they count the padding. {rule}").format(
                call=wrong, rule=_(POSITION_RULE))
    expect.equal(positions, right, _("positions of each call"), hint=hint)


@pytest.mark.points(2)
def test_prompts_of_equal_length_need_no_padding(probe, expected):
    prompts = [[4, 8, 15], [16, 23, 42]]
    got, want = scripted(probe, expected, prompts=prompts)
    rows = expect.no_error(got["results"][0], _("generate_batch of two prompts of 3 tokens"))
    alone = [expect.no_error(one, _("Generator.generate of one prompt alone")) for one in got["alone"]]
    expect.equal(rows, alone, _("rows of equal-length prompts against each prompt generated alone"))
    expect.equal(rows, want["results"][0]["value"], _("generate_batch of two prompts of 3 tokens"))
    expect.equal([c["mask"] for c in got["calls"]], [c["mask"] for c in want["calls"]],
                 _("attention_mask of each call (as 0/1)"),
                 hint=_("With no padding every column is a real token: {rule}").format(rule=_(MASK_RULE)))


@pytest.mark.points(1)
def test_a_batch_of_one_equals_generate(probe, expected):
    got, want = scripted(probe, expected, prompts=[[9, 1, 5, 3]])
    rows = expect.no_error(got["results"][0], _("generate_batch of one prompt"))
    alone = expect.no_error(got["alone"][0], _("Generator.generate of the same prompt"))
    expect.equal(rows, [alone], _("generate_batch([prompt]) against [generate(prompt)]"))
    expect.equal(rows, want["results"][0]["value"], _("generate_batch of one prompt"))


@pytest.mark.points(1)
def test_max_new_tokens_zero_returns_new_copies_of_the_prompts(probe, expected):
    got, want = scripted(probe, expected, max_new_tokens=0)
    rows = expect.no_error(got["results"][0], "generate_batch(prompts, 0)")
    expect.equal(rows, want["results"][0]["value"], "generate_batch(prompts, 0)")
    expect.equal(got["same_objects"][0], [False] * (len(PROMPTS) + 1),
                 _("whether each returned row (and, last, the returned list) is the caller's own list object"),
                 hint=_("Return new lists (e.g. [list(p) for p in prompts]), even when nothing is generated."))


@pytest.mark.points(1)
def test_the_callers_lists_are_left_alone(probe, expected):
    got, want = scripted(probe, expected)
    expect.no_error(got["results"][0], named_call())
    expect.equal(got["prompts_after"][0], want["prompts_after"][0], _("the prompts list passed in, after the call"),
                 hint=_("Build each row in a new list (list(prompt) + ...); neither pad nor extend the caller's "
                        "lists."))
    expect.equal(got["same_objects"][0], [False] * (len(PROMPTS) + 1),
                 _("whether each returned row (and, last, the returned list) is the caller's own list object"),
                 hint=_("Return new lists."))


@pytest.mark.points(1)
def test_returns_lists_of_python_ints(probe, expected):
    got, want = scripted(probe, expected)
    rows = expect.no_error(got["results"][0], named_call())
    expect.that(type(rows) is list and all(type(row) is list for row in rows),
                _("{call} should return a list of lists, got {type}: {rows!r}").format(call=named_call(),
                                                                                       type=type(rows).__name__,
                                                                                       rows=rows))
    odd = [t for row in rows for t in row if type(t) is not int]
    expect.that(not odd, _("{call} should return Python ints, got {odd!r} among them").format(call=named_call(),
                                                                                              odd=odd[:3]),
                hint=_("Turn each chosen token into an int (int(...) or .tolist())."))
    expect.equal([len(row) for row in rows], [len(row) for row in want["results"][0]["value"]],
                 _("length of each returned row"),
                 hint=_("Each row is its prompt and max_new_tokens new tokens, no padding."))


@pytest.mark.points(2)
def test_every_call_starts_a_fresh_cache(probe, expected):
    got, want = scripted(probe, expected, repeats=2)
    for result in got["results"]:
        expect.no_error(result, named_call())
    expect.equal([[c["cache"], c["length"]] for c in got["calls"]], [[c["cache"], c["length"]] for c in want["calls"]],
                 _("[cache, its length] at each call of two generate_batch calls"),
                 hint=_("Make a new cache (self.new_cache(len(prompts))) at the start of every generate_batch call."))
    expect.equal(got["results"][1]["value"], got["results"][0]["value"],
                 _("the second of two generate_batch calls on the same prompts, against the first"),
                 hint=_("A second call must not see the first call's tokens."))


@pytest.mark.points(1)
@pytest.mark.parametrize("prompts,new,length", [
    ([], NEW, None),
    ([[1, 2], []], NEW, None),
    (PROMPTS, -1, None),
    (PROMPTS, NEW, LONGEST + NEW - 1),
], ids=["no_prompts", "empty_prompt", "negative_count", "too_long"])
def test_invalid_batch_requests_raise_value_error(probe, expected, prompts, new, length):
    what = (f"generate_batch({prompts}, {new})" if length is None else
            _("generate_batch needing {needed} positions (longest prompt {longest} + {new}) with "
              "max_seq_len={length}").format(needed=LONGEST + NEW, longest=LONGEST, new=NEW, length=length))
    if length is not None:
        fits, _reference = scripted(probe, expected, generator_len=length + 1)
        expect.no_error(fits["results"][0], _("generate_batch with P + max_new_tokens == max_seq_len == "
                                              "{length}").format(length=length + 1))
    got, _reference = scripted(probe, expected, prompts=prompts, max_new_tokens=new, generator_len=length)
    expect.raised(got["results"][0], "value_error", what,
                  hint=_("ValueError for no prompts, an empty prompt, a negative max_new_tokens, or P + "
                         "max_new_tokens > max_seq_len (P: the longest prompt's length)."))
    expect.equal(got["calls"], [], _("model calls before the ValueError"),
                 hint=_("Check the request before the prefill."))


@pytest.mark.points(4)
@pytest.mark.uses(1, 2)
def test_batched_rows_equal_each_prompt_decoded_alone_on_a_real_model(probe, expected):
    args = dict(config=MODEL, seed=21, prompts=[[3, 14, 15], [9, 2, 6, 5, 35, 8, 9, 7], [9, 3, 2, 3, 8], [4]],
                max_new_tokens=6)
    got, want = probe("batch_real", **args), expected("batch_real", **args)
    rows = expect.no_error(got["outputs"], _("generate_batch on a real model (prompts of lengths 3, 8, 5, 1)"),
                           needs=WHOLE_MODEL)
    hint = mistake_hint(expected.mistakes("batch_real", **args), lambda seen: seen["outputs"].get("value"), rows)
    expect.equal(rows, want["greedy"], _("rows against each prompt decoded alone without a cache"),
                 hint=hint or _("Row b must equal its prompt decoded alone: {positions} {mask}").format(
                     positions=_(POSITION_RULE), mask=_(MASK_RULE)),
                 needs=WHOLE_MODEL)


@pytest.mark.points(1)
def test_max_new_tokens_zero_calls_no_model(probe, expected):
    got, _want = scripted(probe, expected, max_new_tokens=0)
    expect.no_error(got["results"][0], "generate_batch(prompts, 0)")
    expect.equal(len(got["calls"]), 0, _("model calls made by generate_batch(prompts, 0)"),
                 hint=_("N new tokens take one prefill and N - 1 decode calls; for N = 0 there is nothing to compute: "
                        "return copies of the prompts without calling the model."))

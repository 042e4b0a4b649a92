"""TODO 3: paged_attention: each sequence's new tokens attend over that sequence's own positions, read through its
block table, causally, with no padding.

The probe draws a pool, queries and tables from a seed and calls paged_attention alone; the last check runs a whole
model on blocks the checks reserve for each sequence (the stand-in cache only works out the slots), so it too runs
TODO 3 alone. A failing output that equals what
a known mistake computes gets that mistake's hint.
"""

import pytest

from kvchecks import expect
from kvchecks.i18n import N_, _
from kvpaging_checks.checking import raised
from kvpaging_checks.configs import ATTENTION, HEADS, LOGITS, MODEL

pytestmark = pytest.mark.todo3

GATHER = N_("Position t of sequence b is slot t % bs of block block_tables[b][t // bs]; read positions 0 .. "
            "context_lens[b] - 1 of that sequence only.")
CAUSAL = N_("Sequence b's new tokens are its last query_lens[b] positions: new token i is at position "
            "context_lens[b] - query_lens[b] + i and attends over positions 0 .. that one.")
ROWS = N_("query holds every sequence's new tokens end to end: sequence b's query_lens[b] rows, then the next "
          "sequence's, and so must the output.")


def run(probe, expected, what, hint, config=HEADS, **args):
    """The output for ``args`` against the reference's (a known mistake's hint when it equals that mistake's)."""
    args = dict(config=config, seed=29, **args)
    got, want = probe("attention_run", **args), expected("attention_run", **args)
    mistakes = {name: seen.get("value") for name, seen in expected.mistakes("attention_run", **args).items()}
    expect.no_error(got, what)
    expect.close(got["value"], want["value"], what, hint=hint, mistakes=mistakes, **ATTENTION)
    return got


@pytest.mark.points(3)
def test_one_sequence_decoding_over_scattered_blocks(probe, expected):
    run(probe, expected, _("output for one new token at position 9 of a sequence held in blocks [7, 2, 5]"),
        _("The blocks of a sequence are wherever the pool had room, in the order of its table. {gather}").format(
            gather=_(GATHER)), tables=[[7, 2, 5]], context_lens=[10], query_lens=[1])


@pytest.mark.points(2)
def test_a_prefill_with_nothing_cached_is_causal(probe, expected):
    run(probe, expected, _("output for a prompt of 6 new tokens in blocks [3, 0]"),
        _("With nothing cached, new token i attends over positions 0 .. i: not over the later new tokens. "
          "{causal}").format(causal=_(CAUSAL)), tables=[[3, 0]], context_lens=[6], query_lens=[6])


@pytest.mark.points(3)
def test_a_chunk_after_cached_positions_sees_them(probe, expected):
    run(probe, expected, _("output for 4 new tokens after 7 cached positions, in blocks [4, 1, 9]"), _(CAUSAL),
        tables=[[4, 1, 9]], context_lens=[11], query_lens=[4])


@pytest.mark.points(3)
def test_a_batch_of_different_lengths_without_padding(probe, expected):
    run(probe, expected, _("output for three sequences of 7, 3 and 12 positions with 1, 3 and 2 new tokens"),
        _("{rows} {gather} {causal}").format(rows=_(ROWS), gather=_(GATHER), causal=_(CAUSAL)),
        tables=[[0, 6], [8], [2, 3, 5]], context_lens=[7, 3, 12], query_lens=[1, 3, 2])


@pytest.mark.points(3)
def test_slots_past_the_length_are_never_read(probe, expected):
    run(probe, expected, _("output when every slot no sequence holds (the rest of each last block, the unused blocks) "
                           "holds 50"),
        _("The slots of a last block past context_lens[b] hold left-overs of earlier sequences: they are no position "
          "of this one. {gather}").format(gather=_(GATHER)),
        tables=[[1, 4], [6, 0]], context_lens=[5, 6], query_lens=[1, 2], stale=50.0)


@pytest.mark.points(2)
def test_query_heads_share_key_value_heads_in_groups(probe, expected):
    config = dict(HEADS, num_heads=6, num_kv_heads=2)
    run(probe, expected, _("output with 6 query heads and 2 key/value heads"),
        _("Query head h uses key/value head h // G, G = H // Hkv: the G query heads of a group are consecutive "
          "(repeat_interleave, as dense_attention does)."), config=config, tables=[[2, 9], [5]],
        context_lens=[8, 2], query_lens=[2, 1])


@pytest.mark.points(1)
def test_a_new_tensor_and_everything_given_left_alone(probe, expected):
    got = run(probe, expected, _("output for two sequences"), _(GATHER), tables=[[3, 1], [7]], context_lens=[6, 4],
              query_lens=[3, 1])
    expect.equal([got["unchanged"], got["lists_unchanged"], got["shares_query"]], [True, True, False],
                 _("[the pools and query as they were, the lists as they were, the output shares the query's "
                   "memory]"),
                 hint=_("paged_attention only reads: it returns a new tensor and changes neither the pools, nor the "
                        "query, nor the tables and lengths it is given."))


BAD = {
    "lists_differ": dict(tables=[[0], [1]], context_lens=[2, 3], query_lens=[1]),
    "rows_differ": dict(tables=[[0]], context_lens=[3], query_lens=[2], rows=3),
    "more_new_than_held": dict(tables=[[0, 1]], context_lens=[3], query_lens=[4], rows=4),
    "table_too_short": dict(tables=[[0]], context_lens=[6], query_lens=[1]),
}


@pytest.mark.points(2)
@pytest.mark.parametrize("case", sorted(BAD))
def test_arguments_that_do_not_fit_raise_value_error(probe, case):
    got = probe("attention_run", config=HEADS, seed=29, **BAD[case])
    shown = {k: v for k, v in BAD[case].items()}
    raised(got, "ValueError", _("paged_attention with {args}").format(args=shown),
           _("Raise ValueError when the three lists differ in length, when query_lens do not add up to the rows of "
             "query, when a sequence has more new tokens than positions, or when its table holds too few blocks "
             "for its length."))


@pytest.mark.points(4)
def test_a_whole_model_on_a_paged_cache_equals_the_model_without_one(probe, expected):
    requests = [[3, 14, 15, 9, 2, 6, 5, 35, 8, 9, 7], [9, 32, 3, 8], [46, 26, 43, 38, 32, 7, 9, 50, 2, 8, 8, 4]]
    calls = [[[0, 6], [1, 1]], [[1, 2], [2, 5], [0, 1]], [[0, 2], [2, 5], [1, 1]], [[2, 2], [0, 2]]]
    args = dict(config=MODEL, seed=31, requests=requests, calls=calls, num_blocks=12, block_size=4,
                own_append=False)
    got = probe("paged_model", **args)
    for i, (out, right) in enumerate(zip(got["outputs"], got["uncached"])):
        expect.close(out, right, _("logits of forward call {number} (three sequences fed in pieces into blocks the "
                                   "checks reserved) against the model without a cache").format(number=i + 1), **LOGITS,
                     hint=_("{gather} {causal}").format(gather=_(GATHER), causal=_(CAUSAL)))

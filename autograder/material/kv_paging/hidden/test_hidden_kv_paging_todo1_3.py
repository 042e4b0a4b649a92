"""Hidden checks of TODOs 1-3: the public checks' ideas on other pool shapes, seeds, schedules and edge cases.

Never shipped to students. Same fixtures and markers as ``tests/kv_paging``; the reference's outputs for these
calls are in ``goldens.json`` beside this file.
"""

import pytest

from kvchecks import expect
from kvchecks.i18n import N_, _
from kvpaging_checks.checking import mistake_hint, out_of_blocks, pool_difference
from kvpaging_checks.configs import ATTENTION, LOGITS, MODEL

LOWEST = N_("allocate(n) takes the n lowest-numbered blocks whose reference count is 0, in increasing order, each with "
            "count 1; fewer free than n: OutOfBlocks, nothing changed.")
SLOTS = N_("Position p goes to slot block_tables[s][p // bs] * bs + p % bs; a new block at p // bs == len(table); a "
           "shared block (count above 1) is copied before it is written.")
GATHER = N_("Each new token attends over its own sequence's positions 0 .. its position, read through its block "
            "table, never past context_lens[b].")


def allocator_steps(probe, expected, config, ops, hint):
    """Each call's result and the reference counts after it, against the reference's."""
    args = dict(config=config, ops=ops, seed=61)
    got, want = probe("allocator_ops", **args), expected("allocator_ops", **args)
    for i, (step, ref) in enumerate(zip(got["steps"], want["steps"])):
        what = _("call {number} of {count}").format(number=i + 1, count=len(ops))
        if "error" in ref:
            if ref["error"].get("out_of_blocks"):
                out_of_blocks(step, what, hint)
            expect.equal(step["ref_counts"], ref["ref_counts"], _("ref_counts after the refused {what}").format(
                what=what), hint=hint)
            continue
        expect.no_error(step, what)
        expect.equal([step.get("value"), step["ref_counts"]], [ref.get("value"), ref["ref_counts"]],
                     _("[what it returned, ref_counts] after {what}").format(what=what), hint=hint)


def allocate(n):
    return {"op": "allocate", "n": n}


def free(*blocks):
    return {"op": "free", "blocks": list(blocks)}


def share(*blocks):
    return {"op": "share", "blocks": list(blocks)}


@pytest.mark.todo1
@pytest.mark.points(2)
def test_a_pool_of_one_block(probe, expected):
    config = dict(num_blocks=1, block_size=3, num_layers=1, num_kv_heads=1, head_dim=2)
    allocator_steps(probe, expected, config, [allocate(1), allocate(1), free(0), allocate(0), allocate(1)],
                    _(LOWEST))


@pytest.mark.todo1
@pytest.mark.points(3)
def test_a_long_run_of_allocations_shares_and_frees(probe, expected):
    config = dict(num_blocks=16, block_size=2, num_layers=2, num_kv_heads=1, head_dim=2)
    ops = [allocate(5), allocate(3), free(2, 6), share(0, 0, 4), allocate(4), free(0), free(4, 4, 0), allocate(2),
           free(1, 3), allocate(6), allocate(1), free(5, 7, 9), allocate(3)]
    allocator_steps(probe, expected, config, ops, _(LOWEST))


@pytest.mark.todo1
@pytest.mark.points(2)
def test_a_refusal_after_frees_changes_nothing(probe, expected):
    config = dict(num_blocks=16, block_size=4, num_layers=1, num_kv_heads=2, head_dim=2)
    ops = [allocate(10), free(3, 8, 1), allocate(10), allocate(9), allocate(1)]
    allocator_steps(probe, expected, config, ops, _(LOWEST))


def paged_steps(probe, expected, config, ops, hint):
    """After each operation the slots, tables, lengths, reference counts and pool, against the reference's."""
    args = dict(config=config, ops=ops, seed=67)
    got, want = probe("paged_ops", **args), expected("paged_ops", **args)
    mistakes = expected.mistakes("paged_ops", **args)
    for i, (step, ref) in enumerate(zip(got["steps"], want["steps"])):
        what = _("operation {number} of {count}").format(number=i + 1, count=len(ops))
        seen = {name: m["steps"][i] for name, m in mistakes.items() if i < len(m["steps"])}
        if "error" in ref:
            out_of_blocks(step, what, hint)
        else:
            expect.no_error(step, what)
        mine = [step.get("value"), step["tables"], step["lengths"], step["ref_counts"]]
        expect.equal(mine, [ref.get("value"), ref["tables"], ref["lengths"], ref["ref_counts"]],
                     _("[slots returned, block_tables, lengths, ref_counts] after {what}").format(what=what),
                     hint=mistake_hint(seen, lambda s: [s.get("value"), s["tables"], s["lengths"], s["ref_counts"]],
                                       mine) or hint)
        for kind in ("keys", "values"):
            difference = pool_difference(step[kind], ref[kind], want["fill"])
            expect.that(not difference, _("the pool's {kind} after {what}: {difference}").format(
                kind=kind, what=what, difference=difference), hint=hint)


def op(kind, *args):
    names = {"add": ("seq",), "append": ("seq", "n"), "fork": ("parent", "child"), "free": ("seq",)}
    return {"op": kind, **dict(zip(names[kind], args))}


@pytest.mark.todo2
@pytest.mark.points(2)
def test_blocks_of_one_slot(probe, expected):
    config = dict(num_blocks=12, block_size=1, num_layers=2, num_kv_heads=1, head_dim=2)
    ops = [op("add", 0), op("append", 0, 3), op("add", 1), op("append", 1, 2), op("fork", 0, 2), op("append", 2, 1),
           op("append", 0, 2), op("append", 1, 1)]
    paged_steps(probe, expected, config, ops, _(SLOTS))


@pytest.mark.todo2
@pytest.mark.points(3)
def test_forks_of_forks_copy_only_what_they_write(probe, expected):
    config = dict(num_blocks=10, block_size=8, num_layers=1, num_kv_heads=2, head_dim=2)
    ops = [op("add", 0), op("append", 0, 11), op("fork", 0, 1), op("fork", 1, 2), op("append", 2, 1),
           op("append", 1, 6), op("append", 0, 2), op("append", 2, 12), op("free", 1), op("append", 0, 4)]
    paged_steps(probe, expected, config, ops, _(SLOTS))


@pytest.mark.todo2
@pytest.mark.points(2)
def test_freed_blocks_serve_the_next_sequence(probe, expected):
    config = dict(num_blocks=6, block_size=3, num_layers=1, num_kv_heads=1, head_dim=2)
    ops = [op("add", 0), op("append", 0, 7), op("add", 1), op("append", 1, 4), op("free", 0), op("add", 2),
           op("append", 2, 8), op("append", 1, 2), op("append", 1, 1)]
    paged_steps(probe, expected, config, ops, _(SLOTS))


@pytest.mark.todo2
@pytest.mark.points(2)
def test_a_copy_and_a_new_block_one_short_is_refused(probe, expected):
    config = dict(num_blocks=5, block_size=4, num_layers=1, num_kv_heads=1, head_dim=2)
    ops = [op("add", 0), op("append", 0, 6), op("fork", 0, 1), op("add", 2), op("append", 2, 8), op("append", 1, 3),
           op("append", 1, 2), op("append", 0, 2)]
    paged_steps(probe, expected, config, ops, _("A call that needs a copy of a shared block and a new block takes "
                                                "two: with one free it raises OutOfBlocks and changes nothing."))


REQUESTS = [[8, 1, 30, 22, 57, 4, 13, 40, 2], [19, 19, 5], [33, 7, 41, 60, 12, 9, 0, 18, 25, 3, 44, 6]]


@pytest.mark.todo2
@pytest.mark.points(3)
@pytest.mark.uses(3)
def test_a_model_on_blocks_of_two_with_forks(probe, expected):
    requests = REQUESTS + [REQUESTS[0][:5] + [11, 50, 37], REQUESTS[2][:7] + [1, 2]]
    calls = [[[0, 5], [2, 7]], [[3, "fork", 0], [4, "fork", 2]], [[3, 1], [4, 1], [0, 1], [1, 3]],
             [[3, 2], [0, 3], [4, 1], [2, 5]]]
    args = dict(config=MODEL, seed=71, requests=requests, calls=calls, num_blocks=24, block_size=2)
    got = probe("paged_model", **args)
    for i, (out, right) in enumerate(zip(got["outputs"], got["uncached"])):
        expect.close(out, right, _("logits of forward call {number} on blocks of 2 slots, with forks, against the "
                                   "model without a cache").format(number=i + 1), **LOGITS, needs=(3,),
                     hint=_(SLOTS))


def attention(probe, expected, config, what, **args):
    args = dict(config=config, seed=73, **args)
    got, want = probe("attention_run", **args), expected("attention_run", **args)
    mistakes = {name: seen.get("value") for name, seen in expected.mistakes("attention_run", **args).items()}
    expect.no_error(got, what)
    expect.close(got["value"], want["value"], what, hint=_(GATHER), mistakes=mistakes, **ATTENTION)


@pytest.mark.todo3
@pytest.mark.points(2)
def test_blocks_of_one_slot_each(probe, expected):
    config = dict(num_heads=2, num_kv_heads=2, head_dim=4, num_blocks=9, block_size=1)
    attention(probe, expected, config, _("output for sequences held one position per block"),
              tables=[[8, 0, 3, 5], [1, 7, 2]], context_lens=[4, 3], query_lens=[2, 3], stale=40.0)


@pytest.mark.todo3
@pytest.mark.points(2)
def test_one_key_value_head_for_eight_query_heads(probe, expected):
    config = dict(num_heads=8, num_kv_heads=1, head_dim=2, num_blocks=12, block_size=4)
    attention(probe, expected, config, _("output with 8 query heads sharing one key/value head"),
              tables=[[11, 3, 7, 0, 5]], context_lens=[19], query_lens=[3])


@pytest.mark.todo3
@pytest.mark.points(3)
def test_a_batch_with_a_sequence_that_feeds_nothing(probe, expected):
    config = dict(num_heads=4, num_kv_heads=2, head_dim=4, num_blocks=10, block_size=3)
    attention(probe, expected, config, _("output for four sequences, one of them with no new token"),
              tables=[[4], [0, 9, 2], [6, 1], [8, 3, 5]], context_lens=[2, 9, 4, 7], query_lens=[2, 0, 1, 7],
              stale=-30.0)


@pytest.mark.todo3
@pytest.mark.points(3)
def test_a_whole_model_on_blocks_of_three(probe, expected):
    calls = [[[0, 4], [1, 3], [2, 6]], [[0, 5], [2, 2]], [[2, 4]]]
    args = dict(config=MODEL, seed=79, requests=REQUESTS, calls=calls, num_blocks=12, block_size=3, own_append=False)
    got = probe("paged_model", **args)
    for i, (out, right) in enumerate(zip(got["outputs"], got["uncached"])):
        expect.close(out, right, _("logits of forward call {number} on blocks of 3 slots the checks reserved, "
                                   "against the model without a cache").format(number=i + 1), **LOGITS,
                     hint=_(GATHER))

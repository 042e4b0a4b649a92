"""TODO 2: PagedKVCache.append: each new position's slot through the block table, a new block at each boundary,
copy on write before a shared block is written, and a refusal that changes nothing.

The cache gets a stand-in allocator (the checks' own allocate), so these checks run TODO 2 alone. After each
append the probe writes keys and values that spell out their sequence and position into the slots append
returned, so a misplaced entry says where it came from. The last two checks run a whole model on the cache (and
so TODO 3's paged attention too).
"""

import pytest

from kvchecks import expect
from kvchecks.i18n import N_, _
from kvpaging_checks.checking import mistake_hint, out_of_blocks, pool_difference, raised
from kvpaging_checks.configs import LOGITS, MODEL, POOL, TINY_POOL

pytestmark = pytest.mark.todo2

ATTENTION = (3,)  # the whole-model checks also run TODO 3 (paged_attention)
SLOT = N_("Position p of sequence s goes to slot block_tables[s][p // bs] * bs + p % bs; the new positions are L .. L "
          "+ n - 1, L = lengths[s] before the call.")
BOUNDARY = N_("A position past the table's last block (p // bs == len(table)) takes allocator.allocate(1), appended "
              "to the table; no other position takes a block.")
COPY = N_("Copy on write: a position in a block whose reference count is above 1 gets a new block first "
          "(allocate(1)), copy_block(old, new), free([old]), and the table points to the new block; the other "
          "holders keep the old block as it was.")
UNCHANGED = N_("Check first, change after: when the pool has fewer free blocks than the call takes (blocks_needed), "
               "raise OutOfBlocks before taking or copying any block.")


def add(seq: int, reserve: int = 0, length: int = 0) -> dict:
    return {"op": "add", "seq": seq, "reserve": reserve, "length": length}


def append(seq: int, n: int) -> dict:
    return {"op": "append", "seq": seq, "n": n}


def fork(parent: int, child: int) -> dict:
    return {"op": "fork", "parent": parent, "child": child}


def run(probe, expected, ops, config=POOL):
    args = dict(config=config, ops=ops, seed=17)
    got, want = probe("paged_ops", **args), expected("paged_ops", **args)
    return got, want, expected.mistakes("paged_ops", **args)


def named(ops, i: int) -> str:
    """Operation ``i``, as a message names it."""
    op = ops[i]
    if op["op"] == "append":
        return _("append({seq}, {n}) (operation {number})").format(seq=op["seq"], n=op["n"], number=i + 1)
    if op["op"] == "fork":
        return _("fork({parent}, {child}) (operation {number})").format(parent=op["parent"], child=op["child"],
                                                                       number=i + 1)
    return _("add_sequence({seq}) (operation {number})").format(seq=op["seq"], number=i + 1)


LABELS = {"tables": N_("block_tables after {what}"), "lengths": N_("lengths after {what}"),
          "ref_counts": N_("ref_counts after {what}")}


def check(got, want, mistakes, ops, hint, fields=("value", "tables", "lengths", "ref_counts", "pool")):
    """After each operation: what append returned, the tables, lengths, reference counts and the pool, exactly as
    the reference's (a known mistake's hint when the student's equals that mistake's)."""
    fill = want["fill"]
    for i, (step, ref) in enumerate(zip(got["steps"], want["steps"])):
        what = named(ops, i)
        if "error" in ref:
            continue
        expect.no_error(step, what)
        seen = {name: m["steps"][i] for name, m in mistakes.items() if i < len(m["steps"])}
        if "value" in fields and ops[i]["op"] == "append":
            expect.equal(step.get("value"), ref["value"], _("slots returned by {what}").format(what=what),
                         hint=mistake_hint(seen, lambda s: s.get("value"), step.get("value")) or hint)
        for field, label in LABELS.items():
            if field in fields:
                expect.equal(step[field], ref[field], _(label).format(what=what),
                             hint=mistake_hint(seen, lambda s, f=field: s.get(f), step[field]) or hint)
        if "pool" in fields:
            for kind in ("keys", "values"):
                difference = pool_difference(step[kind], ref[kind], fill)
                if difference:
                    expect.fail(_("the pool's {kind} after {what}: {difference}.").format(
                        kind=kind, what=what, difference=difference),
                        mistake_hint(seen, lambda s, k=kind: s.get(k), step[kind]) or hint)


@pytest.mark.points(3)
def test_decode_steps_fill_each_block_then_take_the_next(probe, expected):
    ops = [add(0), add(1)] + [append(seq, 1) for _ in range(6) for seq in (0, 1)]
    got, want, mistakes = run(probe, expected, ops)
    check(got, want, mistakes, ops, _("Two sequences take turns, one position per call. {slot} {boundary}").format(
        slot=_(SLOT), boundary=_(BOUNDARY)), fields=("value", "pool"))


@pytest.mark.points(3)
def test_a_new_block_at_each_boundary_only(probe, expected):
    ops = [add(0), add(1)] + [append(seq, 1) for _ in range(5) for seq in (0, 1)] + [append(1, 4)]
    got, want, mistakes = run(probe, expected, ops)
    check(got, want, mistakes, ops, _(BOUNDARY), fields=("tables", "ref_counts"))


@pytest.mark.points(2)
def test_a_prefill_spanning_blocks(probe, expected):
    ops = [add(0), append(0, 10), append(0, 3), add(1), append(1, 5)]
    got, want, mistakes = run(probe, expected, ops)
    check(got, want, mistakes, ops, _("One call may cover several blocks: each position in order, a new block at each "
                                      "boundary. {slot}").format(slot=_(SLOT)))


@pytest.mark.points(2)
def test_lengths_grow_by_n(probe, expected):
    ops = [add(0), append(0, 3), append(0, 1), append(0, 6), add(1), append(1, 2)]
    got, want, mistakes = run(probe, expected, ops)
    check(got, want, mistakes, ops, _("After append(s, n), lengths[s] is n more than before."), fields=("lengths",))


@pytest.mark.points(1)
def test_append_zero_changes_nothing(probe, expected):
    ops = [add(0), append(0, 0), append(0, 4), append(0, 0)]
    got, want, mistakes = run(probe, expected, ops)
    check(got, want, mistakes, ops, _("append(s, 0) returns [] and changes nothing: no block is taken, even at a "
                                      "boundary."))


@pytest.mark.points(2)
def test_reserved_blocks_are_filled_before_new_ones(probe, expected):
    ops = [add(0), append(0, 1), add(1, reserve=2), append(1, 6), append(1, 3)]
    got, want, mistakes = run(probe, expected, ops)
    check(got, want, mistakes, ops, _("A table may hold blocks its length does not use yet (a prefix cache reserves a "
                                      "prompt's blocks): positions go into them first, and a new block is taken only "
                                      "past the table's last block. {slot}").format(slot=_(SLOT)))


@pytest.mark.points(4)
def test_copy_on_write_of_a_shared_last_block(probe, expected):
    ops = [add(0), append(0, 6), fork(0, 1), append(1, 1), append(1, 1)]
    got, want, mistakes = run(probe, expected, ops)
    check(got, want, mistakes, ops, _("After fork(0, 1) both sequences hold blocks 0 and 1 (reference count 2); "
                                      "position 6 of sequence 1 falls in block 1. {copy}").format(copy=_(COPY)))


@pytest.mark.points(3)
def test_the_last_holder_writes_in_place(probe, expected):
    ops = [add(0), append(0, 6), fork(0, 1), append(0, 1), append(1, 1), append(0, 2), append(1, 2)]
    got, want, mistakes = run(probe, expected, ops)
    check(got, want, mistakes, ops, _("Once sequence 0 has its own copy, block 1's reference count is 1: sequence 1 "
                                      "holds it alone and writes into it in place, with no copy. {copy}").format(
                                          copy=_(COPY)))


@pytest.mark.points(2)
def test_shared_full_blocks_are_never_copied(probe, expected):
    ops = [add(0), append(0, 8), fork(0, 1), append(1, 2), append(0, 1)]
    got, want, mistakes = run(probe, expected, ops)
    check(got, want, mistakes, ops, _("A block is copied only when a new position falls in it: after a fork at a block "
                                      "boundary, the next positions go to new blocks and the shared ones are only "
                                      "read. {boundary}").format(boundary=_(BOUNDARY)))


@pytest.mark.points(2)
def test_a_chunk_over_a_shared_block_copies_it_then_takes_new_ones(probe, expected):
    ops = [add(0), append(0, 5), fork(0, 1), append(1, 8)]
    got, want, mistakes = run(probe, expected, ops)
    check(got, want, mistakes, ops, _("{copy} {boundary}").format(copy=_(COPY), boundary=_(BOUNDARY)))


@pytest.mark.points(3)
def test_a_refused_append_changes_nothing(probe, expected):
    ops = [add(0), append(0, 5), add(1), append(1, 1), append(1, 4), fork(0, 2), append(2, 1), append(0, 1),
           append(1, 1), append(1, 1)]
    got, want, mistakes = run(probe, expected, ops, config=TINY_POOL)
    refused = [i for i, step in enumerate(want["steps"]) if "error" in step]
    for i in refused:
        out_of_blocks(got["steps"][i], named(ops, i), _("append raises OutOfBlocks when the pool has fewer free blocks "
                                                        "than the call takes, the copies of shared blocks included."))
        for field in ("tables", "lengths", "ref_counts"):
            expect.equal(got["steps"][i][field], want["steps"][i][field],
                         _(LABELS[field]).format(what=_("the refused {what}").format(what=named(ops, i))),
                         hint=_(UNCHANGED))
    check(got, want, mistakes, ops, _(UNCHANGED))


@pytest.mark.points(2)
def test_bad_requests_raise_and_change_nothing(probe, expected):
    ops = [add(0), append(0, 3), append(5, 1), append(0, -1)]
    got, want, mistakes = run(probe, expected, ops)
    raised(got["steps"][2], "KeyError", named(ops, 2), _("A sequence the cache does not hold: KeyError."))
    raised(got["steps"][3], "ValueError", named(ops, 3), _("A negative count: ValueError."))
    check(got, want, mistakes, ops, _("A refused call changes nothing."), fields=("tables", "lengths", "ref_counts"))


REQUESTS = [[3, 14, 15, 9, 2, 6, 5, 35, 8, 9, 7], [9, 32, 3, 8], [46, 26, 43, 38, 32, 7, 9, 50, 2, 8, 8, 4, 1]]


@pytest.mark.points(4)
@pytest.mark.uses(3)
def test_a_paged_model_equals_the_model_without_a_cache(probe, expected):
    calls = [[[0, 5], [1, 2]], [[0, 1], [1, 1], [2, 6]], [[0, 3], [2, 1]], [[1, 1], [2, 4], [0, 1]],
             [[0, 1], [2, 2]]]
    args = dict(config=MODEL, seed=19, requests=REQUESTS, calls=calls, num_blocks=12, block_size=4)
    got, want = probe("paged_model", **args), expected("paged_model", **args)
    for i, (out, right) in enumerate(zip(got["outputs"], got["uncached"])):
        expect.close(out, right, _("logits of forward call {number} (three sequences of different lengths fed in "
                                   "pieces) against the model without a cache").format(number=i + 1), **LOGITS,
                     needs=ATTENTION, hint=_("Each sequence's keys and values must be where its table says: {slot} "
                                             "{boundary}").format(slot=_(SLOT), boundary=_(BOUNDARY)))
    expect.equal(got["tables"], want["tables"], _("block_tables at the end"), needs=ATTENTION, hint=_(BOUNDARY))


@pytest.mark.points(3)
@pytest.mark.uses(3)
def test_forked_sequences_continue_apart(probe, expected):
    requests = [REQUESTS[0][:6] + [21, 4, 17], REQUESTS[0][:6] + [40, 40, 2, 11]]
    calls = [[[0, 6]], [[1, "fork", 0]], [[1, 1], [0, 1]], [[0, 2], [1, 3]]]
    args = dict(config=MODEL, seed=23, requests=requests, calls=calls, num_blocks=8, block_size=4)
    got, want = probe("paged_model", **args), expected("paged_model", **args)
    for i, (out, right) in enumerate(zip(got["outputs"], got["uncached"])):
        expect.close(out, right, _("logits of forward call {number} after sequence 1 forked from sequence 0 in the "
                                   "middle of a block, against the model without a cache").format(number=i + 1),
                     **LOGITS, needs=ATTENTION, hint=_(COPY))
    expect.equal(got["ref_counts"], want["ref_counts"], _("ref_counts at the end"), needs=ATTENTION, hint=_(COPY))

"""TODO 1: BlockAllocator.allocate: the n lowest-numbered free blocks, each with one reference, and a refusal that
changes nothing.

The probe fills the pool with seeded values first (allocate must leave them alone) and drives allocate between
calls of the provided free and share, recording the reference counts after each call.
"""

import pytest

from kvchecks import expect
from kvchecks.i18n import N_, _
from kvpaging_checks.checking import out_of_blocks, raised
from kvpaging_checks.configs import POOL

pytestmark = pytest.mark.todo1

LOWEST = N_("allocate(n) returns the n lowest-numbered blocks whose reference count is 0, in increasing order, as a "
            "list of ints.")
UNCHANGED = N_("Check first, change after: when fewer than n blocks are free, raise OutOfBlocks before taking any "
               "block.")


def allocate(n: int) -> dict:
    return {"op": "allocate", "n": n}


def free(*blocks: int) -> dict:
    return {"op": "free", "blocks": list(blocks)}


def share(*blocks: int) -> dict:
    return {"op": "share", "blocks": list(blocks)}


def run(probe, expected, ops, config=POOL):
    args = dict(config=config, ops=ops, seed=7)
    return probe("allocator_ops", **args), expected("allocator_ops", **args)


def describe(ops) -> str:
    """The calls, as a message shows them: ``allocate(3), free([1]), allocate(2)``."""
    shown = [f"allocate({op['n']})" if op["op"] == "allocate" else f"{op['op']}({op['blocks']})" for op in ops]
    text = shown[0]
    for item in shown[1:]:
        text = _("{first}, {second}").format(first=text, second=item)
    return text


def check_steps(got, want, ops, hint, fields=("value", "ref_counts")):
    """Each call's result and the reference counts after it, against the reference's."""
    for i, (step, ref, op) in enumerate(zip(got["steps"], want["steps"], ops)):
        what = describe(ops[:i + 1])
        if "error" in ref:
            continue
        expect.no_error(step, what)
        if "value" in fields and op["op"] == "allocate":
            expect.equal(step["value"], ref["value"], _("blocks returned by the last call of {calls}").format(
                calls=what), hint=hint)
        if "ref_counts" in fields:
            expect.equal(step["ref_counts"], ref["ref_counts"], _("ref_counts after {calls}").format(calls=what),
                         hint=hint)


@pytest.mark.points(3)
def test_allocate_takes_the_lowest_free_blocks_in_order(probe, expected):
    ops = [allocate(3), allocate(2), allocate(1)]
    got, want = run(probe, expected, ops)
    check_steps(got, want, ops, _(LOWEST), fields=("value",))


@pytest.mark.points(2)
def test_each_allocated_block_has_one_reference(probe, expected):
    ops = [allocate(2), allocate(3)]
    got, want = run(probe, expected, ops)
    check_steps(got, want, ops, _("Each block allocate takes gets reference count 1: one holder. The others keep "
                                  "theirs (0: free)."), fields=("ref_counts",))
    expect.equal(got["steps"][-1]["num_free"], want["steps"][-1]["num_free"],
                 _("num_free() after {calls}").format(calls=describe(ops)),
                 hint=_("num_free() counts the blocks whose reference count is 0."))


@pytest.mark.points(3)
def test_freed_blocks_are_taken_again_lowest_first(probe, expected):
    ops = [allocate(6), free(4, 1), allocate(3)]
    got, want = run(probe, expected, ops)
    check_steps(got, want, ops, _("A block whose count went back to 0 is free like any other: allocate takes the "
                                  "lowest-numbered free blocks, whichever were freed. {rule}").format(rule=_(LOWEST)))


@pytest.mark.points(3)
def test_a_shared_block_is_taken_only_when_every_holder_freed_it(probe, expected):
    ops = [allocate(3), share(1), free(1), allocate(2), free(1), allocate(1)]
    got, want = run(probe, expected, ops)
    check_steps(got, want, ops, _("A shared block has a reference count above 1: free drops one reference, and the "
                                  "block is free only when its count is 0. {rule}").format(rule=_(LOWEST)))


@pytest.mark.points(3)
def test_a_refused_allocation_changes_nothing(probe, expected):
    ops = [allocate(5), allocate(4), allocate(3), allocate(1)]
    got, want = run(probe, expected, ops)
    expect.no_error(got["steps"][0], describe(ops[:1]))
    for i in (1, 3):
        what = describe(ops[:i + 1])
        step = got["steps"][i]
        out_of_blocks(step, what, _("When fewer than n blocks are free, allocate raises OutOfBlocks."))
        expect.equal(step["ref_counts"], want["steps"][i]["ref_counts"],
                     _("ref_counts after the refused last call of {calls}").format(calls=what), hint=_(UNCHANGED))
    check_steps(got, want, ops, _(UNCHANGED))


@pytest.mark.points(2)
def test_allocate_takes_every_free_block_and_no_more(probe, expected):
    ops = [allocate(2), free(0), allocate(7), allocate(1)]
    got, want = run(probe, expected, ops)
    check_steps(got, want, ops[:3], _("n may be every free block: then all of them are taken. {rule}").format(
        rule=_(LOWEST)))
    out_of_blocks(got["steps"][3], describe(ops), _("With no block free, allocate(1) raises OutOfBlocks."))


@pytest.mark.points(1)
def test_allocate_zero_returns_an_empty_list(probe, expected):
    ops = [allocate(0), allocate(2), allocate(0)]
    got, want = run(probe, expected, ops)
    check_steps(got, want, ops, _("allocate(0) returns [] and changes nothing."))


@pytest.mark.points(1)
def test_a_negative_count_raises_value_error_and_changes_nothing(probe, expected):
    ops = [allocate(2), allocate(-1)]
    got, want = run(probe, expected, ops)
    raised(got["steps"][1], "ValueError", describe(ops), _("A count below 0 is a caller's mistake: raise ValueError."))
    expect.equal(got["steps"][1]["ref_counts"], want["steps"][1]["ref_counts"],
                 _("ref_counts after the refused allocate(-1)"), hint=_(UNCHANGED))


@pytest.mark.points(2)
def test_allocate_leaves_the_pool_contents_alone(probe, expected):
    ops = [allocate(3), free(0, 2), allocate(4), share(3), allocate(1)]
    got, want = run(probe, expected, ops)
    check_steps(got, want, ops, _(LOWEST))
    expect.equal([got["same_buffers"], got["pool_unchanged"]], [True, True],
                 _("[the pool holds its tensors made in __init__, every key and value as before]"),
                 hint=_("allocate hands out block numbers only: it neither clears the blocks' slots (the writer "
                        "overwrites them) nor makes new tensors."))

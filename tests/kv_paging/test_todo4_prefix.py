"""TODO 4: PrefixCache.admit: chained block keys, the longest cached prefix reused (one more reference each), at
least one prompt token left to prefill, unreferenced blocks evicted least recently used first, a refusal that
changes nothing.

The cache gets a stand-in allocator (the checks' own allocate), and the probe prefills a prompt itself (it writes
keys naming each position into the reserved blocks, then calls the provided commit), so these checks run TODO 4
alone. The last two run a real model through the prefix cache (TODOs 2 and 3 too).
"""

import pytest

from kvchecks import expect
from kvchecks.i18n import N_, _
from kvpaging_checks.checking import mistake_hint, out_of_blocks, raised
from kvpaging_checks.configs import MODEL, PREFIX

pytestmark = pytest.mark.todo4

MODEL_TODOS = (2, 3)  # the whole-model checks also run append and paged_attention
SYSTEM = [5, 17, 2, 40, 8, 33, 12, 9]  # a system prompt of two blocks of 4
REQUESTS = [
    SYSTEM + [21, 4, 30],                      # 0: two full blocks of the system prompt, then its own tokens
    SYSTEM + [44, 1, 7, 19, 26],               # 1: the same system prompt, other tokens
    SYSTEM,                                    # 2: the system prompt alone (a multiple of the block size)
    SYSTEM[:4] + [11, 11, 3, 6, 27],           # 3: the first block only, then a miss
    SYSTEM[:4] + SYSTEM[:4] + [13, 2],         # 4: the first block's tokens twice
    [3, 3, 48, 20, 16, 7, 7, 1, 36, 14, 22, 0],  # 5: three full blocks of another prompt
    list(range(20, 48)),                       # 6: seven full blocks, none cached
    [6, 6, 6, 6, 6],                           # 7: one full block and one token
    list(range(10, 42)),                       # 8: eight full blocks, none cached
    list(range(26, 50)),                       # 9: six full blocks, none cached
]
CHAIN = N_("A block's key chains its tokens to its parent's key: key_i = block_key(key_{i-1}, prompt[i*bs:(i+1)*bs]), "
           "key_{-1} = None.")
REUSE = N_("Reuse table[key_0], table[key_1], ... while the key is in table, stopping at the first that is not and at "
           "(len(prompt) - 1) // bs blocks; share each reused block (one more reference) and reserve new blocks for "
           "the rest of the prompt: add_sequence(seq_id, reused + allocate(rest), length=len(reused) * bs).")
EVICT = N_("While the pool has fewer free blocks than the rest needs, evict a block that only the prefix cache holds "
           "(reference count 1): the oldest stamp first, among equal stamps the deepest. Evicting removes it from "
           "table, block_keys, stamps and depths and frees it.")
UNCHANGED = N_("Check first, change after: when the free and evictable blocks are fewer than the rest needs, raise "
               "OutOfBlocks before evicting, sharing, stamping or advancing the clock.")


def admit(seq: int, request: int) -> dict:
    return {"op": "admit", "seq": seq, "request": request}


def prefill(seq: int) -> dict:
    return {"op": "prefill", "seq": seq}


def release(seq: int) -> dict:
    return {"op": "release", "seq": seq}


def serve(seq: int, request: int) -> list[dict]:
    """Admit, prefill and commit."""
    return [admit(seq, request), prefill(seq)]


def named(ops, i: int) -> str:
    op = ops[i]
    if op["op"] == "admit":
        return _("admit({seq}, request {request}) (operation {number})").format(seq=op["seq"], request=op["request"],
                                                                               number=i + 1)
    if op["op"] == "prefill":
        return _("the prefill and commit of sequence {seq} (operation {number})").format(seq=op["seq"], number=i + 1)
    return _("release({seq}) (operation {number})").format(seq=op["seq"], number=i + 1)


FIELDS = {"value": N_("positions reused by {what}"), "tables": N_("block_tables after {what}"),
          "lengths": N_("lengths after {what}"), "ref_counts": N_("ref_counts after {what}"),
          "table": N_("the blocks in the prefix cache's table after {what}"),
          "keys": N_("the prefix cache's table (key -> block) after {what}"),
          "stamps": N_("stamps (block -> stamp) after {what}"), "clock": N_("clock after {what}")}


def observed(step: dict, field: str):
    """A field of one step as the checks compare it: ``table`` is the cached blocks, ``keys`` the table itself."""
    if field == "table":
        table = step.get("table")
        return sorted(table.values()) if isinstance(table, dict) else table
    return step.get("table" if field == "keys" else field)


def check(probe, expected, ops, hint, fields=tuple(f for f in FIELDS if f != "keys"), config=PREFIX):
    """After each operation the fields named, exactly as the reference's (a known mistake's hint when the student's
    equals that mistake's)."""
    args = dict(config=config, requests=REQUESTS, ops=ops, seed=37)
    got, want = probe("prefix_ops", **args), expected("prefix_ops", **args)
    mistakes = expected.mistakes("prefix_ops", **args)
    for i, (step, ref) in enumerate(zip(got["steps"], want["steps"])):
        what = named(ops, i)
        if "error" in ref:
            continue
        expect.no_error(step, what)
        if ops[i]["op"] == "prefill":
            expect.equal(step["prefilled"], True, _("{what}: the sequence's table holds blocks for the whole "
                                                   "prompt").format(what=what),
                         hint=_("admit reserves every block the prompt needs: the reused ones, then allocate(rest)."))
        seen = {name: m["steps"][i] for name, m in mistakes.items() if i < len(m["steps"])}
        for field in fields:
            if field == "value" and ops[i]["op"] != "admit":
                continue
            expect.equal(observed(step, field), observed(ref, field), _(FIELDS[field]).format(what=what),
                         hint=mistake_hint(seen, lambda s, f=field: observed(s, f), observed(step, field)) or hint)
    return got, want


@pytest.mark.points(2)
def test_a_first_prompt_reuses_nothing(probe, expected):
    ops = [admit(0, 0)]
    check(probe, expected, ops, _("With nothing cached, admit reuses nothing, returns 0 and reserves "
                                  "ceil(len(prompt) / bs) new blocks for the sequence. {reuse}").format(reuse=_(REUSE)))


@pytest.mark.points(4)
def test_a_shared_prefix_reuses_its_full_blocks(probe, expected):
    ops = serve(0, 0) + [admit(1, 1)]
    check(probe, expected, ops, _("Both prompts start with the same two full blocks. {reuse} {chain}").format(
        reuse=_(REUSE), chain=_(CHAIN)), fields=tuple(FIELDS))


@pytest.mark.points(3)
def test_at_least_one_token_is_left_to_prefill(probe, expected):
    ops = serve(0, 0) + [admit(1, 2)] + serve(2, 7) + [admit(3, 7)]
    check(probe, expected, ops, _("A prompt of 8 tokens whose two blocks are both cached reuses one: its last token "
                                  "must be computed, since its logits give the first new token. {reuse}").format(
                                      reuse=_(REUSE)))


@pytest.mark.points(2)
def test_the_longest_prefix_stops_at_the_first_miss(probe, expected):
    ops = serve(0, 0) + [admit(1, 3)]
    check(probe, expected, ops, _(REUSE))


@pytest.mark.points(4)
def test_equal_tokens_after_another_prefix_are_another_block(probe, expected):
    ops = serve(0, 0) + serve(1, 4) + [admit(2, 4)]
    check(probe, expected, ops, _("Prompt 4's second block holds the same tokens as its first, after another prefix: "
                                  "its keys and values differ, so its key must too. {chain}").format(chain=_(CHAIN)),
          fields=("value", "tables", "ref_counts", "keys"))


@pytest.mark.points(2)
def test_reused_blocks_get_a_reference_and_the_new_stamp(probe, expected):
    ops = serve(0, 0) + serve(1, 1) + [release(0)] + serve(2, 2)
    check(probe, expected, ops, _("The clock advances once per admit (and once per commit); each reused block gets one "
                                  "more reference and the clock's new value as its stamp."),
          fields=("ref_counts", "stamps", "clock"))


@pytest.mark.points(4)
def test_unreferenced_blocks_are_evicted_oldest_first(probe, expected):
    ops = serve(0, 0) + [release(0)] + serve(1, 5) + [release(1)] + serve(2, 9) + [release(2), admit(3, 0)]
    check(probe, expected, ops, _("Prompt 9 needs one block more than are free: the system prompt's two blocks are "
                                  "the oldest, and of those the deeper one goes, so a later prompt still finds the "
                                  "first. {evict}").format(evict=_(EVICT)))


@pytest.mark.points(3)
def test_blocks_in_use_are_never_evicted(probe, expected):
    ops = serve(0, 0) + serve(1, 5) + [release(1)] + [admit(2, 6)]
    check(probe, expected, ops, _("A block a sequence holds has a reference count above 1: it is never evicted, "
                                  "however old. {evict}").format(evict=_(EVICT)))


@pytest.mark.points(3)
def test_a_reused_block_counts_as_recently_used(probe, expected):
    ops = serve(0, 0) + [release(0)] + serve(1, 5) + [release(1)] + serve(2, 1) + [release(2)] + [admit(3, 6)]
    check(probe, expected, ops, _("Least recently used, not first cached: prompt 1 reused the system prompt's blocks "
                                  "after prompt 5 was cached, so prompt 5's blocks go first. {evict}").format(
                                      evict=_(EVICT)))


@pytest.mark.points(3)
def test_an_evicted_prefix_is_forgotten(probe, expected):
    ops = serve(0, 0) + [release(0)] + serve(1, 5) + serve(2, 9) + [release(1), release(2), admit(3, 0)]
    check(probe, expected, ops, _("An evicted block holds nothing of its prompt any more: its key leaves table, and a "
                                  "later prompt finds no such prefix. {evict}").format(evict=_(EVICT)))


@pytest.mark.points(3)
def test_a_refused_admit_changes_nothing(probe, expected):
    ops = serve(0, 0) + [release(0)] + serve(1, 5) + [admit(2, 8)]
    got, want = check(probe, expected, ops, _(UNCHANGED))
    out_of_blocks(got["steps"][-1], named(ops, len(ops) - 1),
                  _("admit raises OutOfBlocks when the free blocks and those it may evict are fewer than the rest of "
                    "the prompt needs."))
    for field in ("tables", "ref_counts", "table", "stamps", "clock"):
        expect.equal(observed(got["steps"][-1], field), observed(want["steps"][-1], field),
                     _(FIELDS[field]).format(what=_("the refused {what}").format(what=named(ops, len(ops) - 1))),
                     hint=_(UNCHANGED))


@pytest.mark.points(2)
def test_bad_requests_raise_value_error_and_change_nothing(probe, expected):
    requests = REQUESTS + [[]]
    ops = serve(0, 0) + [admit(0, 1), admit(1, len(requests) - 1)]
    args = dict(config=PREFIX, requests=requests, ops=ops, seed=37)
    got, want = probe("prefix_ops", **args), expected("prefix_ops", **args)
    raised(got["steps"][2], "ValueError", _("admit of a sequence the cache holds already"),
           _("A sequence the cache holds already cannot be admitted again: ValueError."))
    raised(got["steps"][3], "ValueError", _("admit of an empty prompt"), _("An empty prompt: ValueError."))
    for i in (2, 3):
        for field in ("tables", "ref_counts", "stamps", "clock"):
            expect.equal(observed(got["steps"][i], field), observed(want["steps"][i], field),
                         _(FIELDS[field]).format(what=_("the refused {what}").format(what=named(ops, i))),
                         hint=_(UNCHANGED))


MODEL_REQUESTS = [SYSTEM * 2 + [21, 4, 30], SYSTEM * 2 + [44, 1], SYSTEM * 2 + [7, 19, 26, 30, 12],
                  SYSTEM[:6] + [50, 3]]


@pytest.mark.points(4)
@pytest.mark.uses(*MODEL_TODOS)
def test_prefix_cached_generation_equals_the_model_without_a_cache(probe, expected):
    args = dict(config=MODEL, seed=41, requests=MODEL_REQUESTS, waves=[[0, 1], [2, 3]], max_new_tokens=5,
                num_blocks=16, block_size=4)
    got, want = probe("prefix_model", **args), expected("prefix_model", **args)
    expect.equal(got["outputs"], got["alone"], _("new tokens of 4 requests sharing a 16-token system prompt, served in "
                                                 "two waves through the prefix cache, against each decoded alone "
                                                 "without a cache"), needs=MODEL_TODOS,
                 hint=_("A reused block must hold exactly what the request would have computed: {chain} "
                        "{reuse}").format(chain=_(CHAIN), reuse=_(REUSE)))
    expect.equal(got["outputs"], want["outputs"], _("new tokens of the 4 requests"), needs=MODEL_TODOS,
                 hint=_(REUSE))


@pytest.mark.points(3)
@pytest.mark.uses(*MODEL_TODOS)
def test_only_the_uncached_positions_are_prefilled(probe, expected):
    args = dict(config=MODEL, seed=41, requests=MODEL_REQUESTS, waves=[[0, 1], [2, 3]], max_new_tokens=5,
                num_blocks=16, block_size=4)
    got, want = probe("prefix_model", **args), expected("prefix_model", **args)
    expect.equal(got["reused"], want["reused"], _("positions each request reused"), needs=MODEL_TODOS, hint=_(REUSE))
    expect.equal(got["prefilled"], want["prefilled"], _("prompt positions the model computed for each request"),
                 needs=MODEL_TODOS, hint=_("A request prefills only the positions after its reused blocks."))

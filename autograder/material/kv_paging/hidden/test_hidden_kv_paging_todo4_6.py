"""Hidden checks of TODOs 4-6: the public checks' ideas on other block sizes, seeds, schedules and edge cases.

Never shipped to students. Same fixtures and markers as ``tests/kv_paging``; the reference's outputs for these
calls are in ``goldens.json`` beside this file.
"""

import pytest

from kvchecks import expect
from kvchecks.i18n import N_, _
from kvpaging_checks.checking import mistake_hint
from kvpaging_checks.configs import MODEL, SCRIPTED

PREFIX = N_("Keys chain each block to its parent; reuse the cached prefix up to the first miss and at most "
            "(len(prompt) - 1) // bs blocks, one more reference each; evict blocks only the prefix cache holds, oldest "
            "stamp then deepest first, only as many as the rest needs.")
SERVE = N_("Preempt the newest while the running do not fit; unless preempted, admit in order while blocks and "
           "max_running allow; one forward over every running request; retire the finished at once.")
INT8 = N_("Each row (one position, one head) is stored as round(x / s) with s = max|x| / 127, in place at "
          "current_length, and every stored position is read back as q * s.")
SMALL_PREFIX = dict(num_blocks=12, block_size=2, num_layers=1, num_kv_heads=1, head_dim=2, vocab_size=40)
STEM = [7, 3, 3, 9, 12, 30, 1, 1]
REQUESTS = [STEM + [5], STEM + [6, 2, 2], STEM[:6] + [8, 8, 8], [9, 9, 9, 9, 9], STEM[:2] + [20] * 9,
            [31, 32, 33, 34, 35, 36, 37, 38, 39, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]]


def prefix_steps(probe, expected, ops, hint, config=SMALL_PREFIX):
    args = dict(config=config, requests=REQUESTS, ops=ops, seed=83)
    got, want = probe("prefix_ops", **args), expected("prefix_ops", **args)
    mistakes = expected.mistakes("prefix_ops", **args)
    for i, (step, ref) in enumerate(zip(got["steps"], want["steps"])):
        what = _("operation {number} of {count}").format(number=i + 1, count=len(ops))
        if "error" not in ref:
            expect.no_error(step, what)
        seen = {name: m["steps"][i] for name, m in mistakes.items() if i < len(m["steps"])}

        def pick(s):
            return [s.get("value"), s["tables"], s["ref_counts"], sorted(s["table"].values()), s["stamps"]]

        expect.equal(pick(step), pick(ref), _("[positions reused, block_tables, ref_counts, cached blocks, stamps] "
                                              "after {what}").format(what=what),
                     hint=mistake_hint(seen, pick, pick(step)) or hint)


def admit(seq, request):
    return {"op": "admit", "seq": seq, "request": request}


def serve(seq, request):
    return [admit(seq, request), {"op": "prefill", "seq": seq}]


def release(seq):
    return {"op": "release", "seq": seq}


@pytest.mark.todo4
@pytest.mark.points(3)
def test_long_chains_of_small_blocks(probe, expected):
    ops = serve(0, 0) + serve(1, 1) + serve(2, 2) + [release(0)] + serve(3, 0) + serve(4, 4)
    prefix_steps(probe, expected, ops, _(PREFIX), config=dict(SMALL_PREFIX, num_blocks=16))


@pytest.mark.todo4
@pytest.mark.points(3)
def test_eviction_among_equal_stamps_takes_the_deepest_first(probe, expected):
    ops = serve(0, 1) + [release(0)] + serve(1, 3) + [release(1)] + serve(2, 5)
    prefix_steps(probe, expected, ops, _(PREFIX))


@pytest.mark.todo4
@pytest.mark.points(2)
def test_eviction_takes_only_what_the_rest_needs(probe, expected):
    ops = serve(0, 1) + serve(1, 3) + [release(0), release(1)] + serve(2, 4) + [admit(3, 1)]
    prefix_steps(probe, expected, ops, _(PREFIX))


@pytest.mark.todo4
@pytest.mark.points(3)
@pytest.mark.uses(2, 3)
def test_three_waves_through_blocks_of_two(probe, expected):
    requests = [STEM * 2 + [4], STEM * 2 + [5, 6], STEM + [4], STEM * 2 + [4, 4], STEM[:3] + [2]]
    args = dict(config=MODEL, seed=89, requests=requests, waves=[[0], [1, 2], [3, 4]], max_new_tokens=4,
                num_blocks=30, block_size=2)
    got, want = probe("prefix_model", **args), expected("prefix_model", **args)
    expect.equal([got["outputs"], got["reused"]], [got["alone"], want["reused"]],
                 _("[new tokens, positions reused] of 5 requests in three waves on blocks of 2, against each decoded "
                   "alone without a cache"), needs=(2, 3), hint=_(PREFIX))


def schedule(probe, expected, hint, fields=("running", "waiting", "calls"), **scenario):
    args = dict(config=SCRIPTED, seed=97, **scenario)
    got, want = probe("schedule_scripted", **args), expected("schedule_scripted", **args)
    mistakes = expected.mistakes("schedule_scripted", **args)
    for i, (step, ref) in enumerate(zip(got["steps"], want["steps"])):
        expect.no_error(step, _("step {step}").format(step=i + 1))
        seen = {name: m["steps"][i] for name, m in mistakes.items() if i < len(m["steps"])}

        def pick(s):
            return [s.get(field) for field in fields]

        expect.equal(pick(step), pick(ref), _("[{fields}] after step {step}").format(
            fields=", ".join(fields), step=i + 1), hint=mistake_hint(seen, pick, pick(step)) or hint)
    expect.equal([got["outputs"], len(got["steps"])], [got["alone"], len(want["steps"])],
                 _("[outputs, steps until every request finished], against each prompt decoded alone"),
                 hint=mistake_hint(mistakes, lambda s: [s["outputs"], len(s["steps"])],
                                   [got["outputs"], len(got["steps"])]) or hint)


PROMPTS = [[4, 8, 15, 16, 23, 42], [1, 2], [90, 80, 70, 60, 50], [3, 3, 3], [12, 24, 36, 48, 60, 72, 84]]


@pytest.mark.todo5
@pytest.mark.points(2)
@pytest.mark.uses(2)
def test_one_request_at_a_time(probe, expected):
    schedule(probe, expected, _(SERVE), requests=PROMPTS[:3], max_new_tokens=[3, 2, 4], arrivals=[0, 0, 0],
             num_blocks=10, max_running=1)


@pytest.mark.todo5
@pytest.mark.points(3)
@pytest.mark.uses(2)
def test_a_pool_that_holds_little_more_than_one_request(probe, expected):
    schedule(probe, expected, _(SERVE), fields=("running", "waiting", "tables"), requests=PROMPTS[:4],
             max_new_tokens=[6, 9, 5, 7], arrivals=[0, 0, 1, 1], num_blocks=4)


@pytest.mark.todo5
@pytest.mark.points(2)
@pytest.mark.uses(2)
def test_prefills_of_one_token_per_step(probe, expected):
    schedule(probe, expected, _(SERVE), fields=("calls", "outputs"), requests=PROMPTS[2:5], max_new_tokens=[2, 3, 2],
             arrivals=[0, 1, 1], num_blocks=12, prefill_chunk=1)


@pytest.mark.todo5
@pytest.mark.points(2)
@pytest.mark.uses(2)
def test_requests_of_one_token_finish_at_their_prefill(probe, expected):
    schedule(probe, expected, _(SERVE), fields=("value", "running", "tables"), requests=PROMPTS,
             max_new_tokens=[1, 1, 3, 1, 2], arrivals=[0, 0, 0, 1, 1], num_blocks=12, max_running=3)


@pytest.mark.todo5
@pytest.mark.points(3)
@pytest.mark.uses(2, 3)
def test_a_real_model_under_pressure(probe, expected):
    requests = [[5, 9, 2, 41, 7, 7, 30], [12, 3], [60, 1, 18, 18, 2, 9, 33, 4], [27, 27, 27], [8, 44, 10, 3, 2]]
    args = dict(config=MODEL, seed=101, requests=requests, max_new_tokens=[5, 9, 4, 6, 3], arrivals=[0, 0, 1, 2, 2],
                num_blocks=9, block_size=3, max_running=4)
    got = probe("schedule_real", **args)
    expect.equal([got["error"], got["outputs"]], [None, got["alone"]],
                 _("[an error while serving, outputs] of 5 requests on a real model with 9 blocks of 3 slots, against "
                   "each prompt decoded alone without a cache"), needs=(2, 3), hint=_(SERVE))


def int8(probe, expected, config, ops, hint):
    args = dict(config=config, ops=ops, seed=103)
    got, want = probe("int8_ops", **args)["steps"], expected("int8_ops", **args)["steps"]
    mistakes = expected.mistakes("int8_ops", **args)
    for i, (step, ref) in enumerate(zip(got, want)):
        what = _("update number {number}").format(number=i + 1)
        if "error" in ref:
            expect.that("error" in step, _("{what} should raise ValueError, but it returned a value").format(
                what=what), hint=hint)
            continue
        expect.no_error(step, what)
        seen = {name: m["steps"][i] for name, m in mistakes.items() if i < len(m["steps"])}
        for index, name in enumerate(("keys", "values", "key_scales", "value_scales")):
            expect.close(step["buffers"][index].double(), ref["buffers"][index].double(),
                         _("cache.{name} after {what}").format(name=name, what=what), atol=0, rtol=1e-6,
                         hint=mistake_hint(seen, lambda s, k=index: s["buffers"][k], step["buffers"][index]) or hint)
        for j, kind in enumerate(("keys", "values")):
            expect.close(step["returned"][j], ref["returned"][j], _("{kind} returned by {what}").format(
                kind=kind, what=what), atol=1e-7, rtol=1e-6, hint=hint)


def update(layer, n, **extra):
    return {"op": "update", "layer": layer, "n": n, **extra}


@pytest.mark.todo6
@pytest.mark.points(2)
def test_the_smallest_cache(probe, expected):
    config = dict(num_layers=1, num_kv_heads=1, head_dim=2, max_seq_len=4)
    ops = [update(0, 2, magnitudes=[2.0, 0.5]), {"op": "set_length", "value": 2}, update(0, 1),
           {"op": "set_length", "value": 3}, update(0, 1, zero_rows=[[0, 0]])]
    int8(probe, expected, config, ops, _(INT8))


@pytest.mark.todo6
@pytest.mark.points(2)
def test_decode_steps_up_to_max_seq_len_and_one_past(probe, expected):
    config = dict(num_layers=2, num_kv_heads=2, head_dim=4, max_seq_len=5)
    ops = []
    for t in range(6):
        ops += [update(1, 1, magnitudes=[0.1 * (t + 1)]), {"op": "set_length", "value": t + 1}]
    int8(probe, expected, config, ops, _("{rule} A write past max_seq_len raises ValueError.").format(rule=_(INT8)))


@pytest.mark.todo6
@pytest.mark.points(2)
def test_magnitudes_a_million_apart(probe, expected):
    config = dict(num_layers=1, num_kv_heads=4, head_dim=16, max_seq_len=8)
    ops = [update(0, 5, magnitudes=[1e-4, 1e3, 1.0, 3e-2, 250.0])]
    int8(probe, expected, config, ops, _(INT8))


@pytest.mark.todo6
@pytest.mark.points(3)
def test_a_model_with_one_key_value_head_on_the_int8_cache(probe, expected):
    config = dict(MODEL, num_heads=4, num_kv_heads=1, depth=3)
    args = dict(config=config, seed=107, prompt=[40, 2, 2, 17, 9, 31], max_new_tokens=10, max_seq_len=16)
    got, want = probe("int8_model", **args), expected("int8_model", **args)
    difference = float((got["logits"] - got["uncached"]).abs().max())
    expect.that(difference <= 0.25, _("the largest difference between the logits on the int8 cache and the model "
                                      "without a cache is {difference:.3g}, above 0.25").format(difference=difference),
                hint=_(INT8))
    expect.equal(got["tokens"], want["tokens"], _("10 greedy tokens on the int8 cache"), hint=_(INT8))

"""TODO 5: Scheduler.step: continuous batching with first-come admission, one batched forward per step, finished
requests retired at once and the newest request preempted (and computed again) when the pool runs out.

Most checks give the scheduler a scripted model: it appends through your PagedKVCache.append (TODO 2), stores each
token id in its slot and predicts the next token from the tokens it reads back through the block table, so TODOs 1
and 3 do not run and a request that reads blocks it no longer owns gets other tokens. The last check serves a real
model (TODO 3 too).
"""

import pytest

from kvchecks import expect
from kvchecks.i18n import N_, _
from kvpaging_checks.checking import mistake_hint
from kvpaging_checks.configs import MODEL, SCRIPTED

pytestmark = [pytest.mark.todo5, pytest.mark.uses(2)]  # the scripted model appends through TODO 2

MODEL_TODOS = (2, 3)  # the real model's check also runs append and paged_attention
PROMPTS = [[5, 17, 2, 40, 8], [11, 0], [60, 9, 9, 21, 3, 3, 71], [30, 1, 4], [88, 12, 45, 2, 19, 7]]
ROOM = N_("While the running requests need more blocks than are free (blocks_needed of each one's feed), preempt the "
          "newest: free its sequence, set computed to 0 and put it at the front of waiting.")
ADMIT = N_("Then, unless the step preempted a request, admit the first waiting request while fewer than max_running "
           "run and its first feed's blocks fit beside what the running need; stop at the first that does not fit "
           "(first come, first served).")
FORWARD = N_("Then one model(tokens, cache, seq_ids) call over every running request in running's order, each feeding "
             "tokens[computed : computed + feed(r)].")
RETIRE = N_("A request that has fed all its tokens takes the argmax of its last row as its next output; with "
            "max_new_tokens outputs it is finished: free its sequence at once, move it from running to finished.")

SCENARIOS = {
    # three requests at once, room for all: prefill, then decode together, leaving one by one
    "together": dict(requests=PROMPTS[:3], max_new_tokens=[4, 6, 2], arrivals=[0, 0, 0], num_blocks=16),
    # arrivals while others run, a batch of 2: each leaves a place that the next waiting request takes
    "arrivals": dict(requests=PROMPTS[:4], max_new_tokens=[3, 5, 2, 4], arrivals=[0, 0, 2, 5], num_blocks=16,
                     max_running=2),
    # a pool of 5 blocks for requests that need 3, 3 and 2 of them (and a fourth that arrives later): the newest
    # running request is preempted, goes before the fourth, and is computed again
    "preemption": dict(requests=[PROMPTS[0] + [6], PROMPTS[4][:5], PROMPTS[3], PROMPTS[1]],
                       max_new_tokens=[7, 8, 6, 3], arrivals=[0, 0, 0, 1], num_blocks=5),
    # a long prompt waits for room; the short one behind it waits its turn
    "first_come": dict(requests=[PROMPTS[0], PROMPTS[2] + PROMPTS[4], PROMPTS[1]], max_new_tokens=[6, 2, 2],
                       arrivals=[0, 1, 1], num_blocks=5),
    # prefills of at most 3 tokens per step beside the decoding requests
    "chunked": dict(requests=[PROMPTS[2], PROMPTS[1], PROMPTS[4]], max_new_tokens=[3, 4, 3], arrivals=[0, 0, 1],
                    num_blocks=16, prefill_chunk=3),
    # a pool of 2 blocks: the newcomer's block would fit the free blocks, not beside the running request's next one
    "tight": dict(requests=[PROMPTS[2][:4], PROMPTS[3]], max_new_tokens=[4, 2], arrivals=[0, 1], num_blocks=2),
    # nothing arrives before step 2
    "idle": dict(requests=PROMPTS[1:3], max_new_tokens=[2, 2], arrivals=[2, 3], num_blocks=8),
}


def run(probe, expected, scenario: str):
    args = dict(config=SCRIPTED, seed=43, **SCENARIOS[scenario])
    got, want = probe("schedule_scripted", **args), expected("schedule_scripted", **args)
    mistakes = expected.mistakes("schedule_scripted", **args)
    return got, want, mistakes


def check_steps(got, want, mistakes, fields, hint):
    """After each step the fields named, exactly as the reference's."""
    labels = {"value": N_("ids returned by step {step}"), "running": N_("running after step {step}"),
              "waiting": N_("waiting after step {step}"), "calls": N_("model calls in step {step}"),
              "tables": N_("block_tables after step {step}"), "free": N_("free blocks after step {step}"),
              "outputs": N_("outputs after step {step}")}
    for i, (step, ref) in enumerate(zip(got["steps"], want["steps"])):
        expect.no_error(step, _("step {step}").format(step=i + 1))
        seen = {name: m["steps"][i] for name, m in mistakes.items() if i < len(m["steps"])}
        for field in fields:
            expect.equal(step.get(field), ref.get(field), _(labels[field]).format(step=i + 1),
                         hint=mistake_hint(seen, lambda s, f=field: s.get(f), step.get(field)) or hint)
    expect.equal(len(got["steps"]), len(want["steps"]), _("steps until every request finished"), hint=hint)


def check_outputs(got, want, mistakes, what):
    for i, step in enumerate(got["steps"]):
        expect.no_error(step, _("step {step}").format(step=i + 1))
    hint = mistake_hint(mistakes, lambda s: s.get("outputs"), got["outputs"]) or _(
        "Each request's output must be the greedy decoding of its prompt alone, whatever runs beside it. {retire}"
    ).format(retire=_(RETIRE))
    expect.equal(got["int_outputs"], True, _("{what}: every output is a Python int").format(what=what),
                 hint=_("Append int(logits[row].argmax()), not the tensor argmax returns."))
    expect.equal(got["outputs"], got["alone"], _("{what}: each request's output against its prompt decoded "
                                                 "alone").format(what=what), hint=hint)
    expect.equal(got["outputs"], want["outputs"], what, hint=hint)


@pytest.mark.points(4)
@pytest.mark.parametrize("scenario", ["together", "arrivals"])
def test_every_request_equals_its_prompt_decoded_alone(probe, expected, scenario):
    got, want, mistakes = run(probe, expected, scenario)
    check_outputs(got, want, mistakes, _("outputs of the requests served together"))


@pytest.mark.points(3)
def test_one_forward_per_step_over_every_running_request(probe, expected):
    got, want, mistakes = run(probe, expected, "together")
    check_steps(got, want, mistakes, ("calls",), _("{forward} A decoding request feeds its last output only: the "
                                                  "cache holds the rest.").format(forward=_(FORWARD)))


@pytest.mark.points(3)
def test_admission_is_first_come_first_served_while_blocks_allow(probe, expected):
    got, want, mistakes = run(probe, expected, "first_come")
    check_steps(got, want, mistakes, ("running", "waiting"), _(ADMIT))


@pytest.mark.points(2)
def test_max_running_bounds_the_batch(probe, expected):
    got, want, mistakes = run(probe, expected, "arrivals")
    check_steps(got, want, mistakes, ("running",), _("At most max_running requests run at once. {admit}").format(
        admit=_(ADMIT)))


@pytest.mark.points(3)
def test_late_arrivals_join_the_running_batch(probe, expected):
    got, want, mistakes = run(probe, expected, "arrivals")
    check_steps(got, want, mistakes, ("running", "waiting", "calls"),
                _("Continuous batching: a request that arrives while others run is admitted at the next step with "
                  "room for it, and prefills in the same forward as their decoding. {admit}").format(admit=_(ADMIT)))


@pytest.mark.points(3)
def test_finished_requests_free_their_blocks_at_once(probe, expected):
    got, want, mistakes = run(probe, expected, "together")
    check_steps(got, want, mistakes, ("tables", "free", "running"), _(RETIRE))


@pytest.mark.points(2)
def test_step_returns_the_ids_that_finished_in_it(probe, expected):
    got, want, mistakes = run(probe, expected, "arrivals")
    check_steps(got, want, mistakes, ("value",), _("step returns the ids of the requests that finished in it, in "
                                                  "batch order ([] when none did)."))


@pytest.mark.points(3)
def test_no_position_is_computed_twice(probe, expected):
    got, want, mistakes = run(probe, expected, "arrivals")
    needed = {str(i): len(p) + n - 1 for i, (p, n) in enumerate(zip(SCENARIOS["arrivals"]["requests"],
                                                                      SCENARIOS["arrivals"]["max_new_tokens"]))}
    expect.equal(got["fed"], needed, _("tokens each request fed the model over the run, without a preemption"),
                 hint=_("A request feeds each of its prompt's tokens once and each output but the last once: "
                        "len(prompt) + max_new_tokens - 1 positions. {forward}").format(forward=_(FORWARD)))


@pytest.mark.points(4)
def test_the_newest_request_is_preempted_when_the_pool_runs_out(probe, expected):
    got, want, mistakes = run(probe, expected, "preemption")
    check_steps(got, want, mistakes, ("running", "waiting", "tables"), _(ROOM))


@pytest.mark.points(3)
def test_a_preempted_request_computes_again_and_equals_its_prompt_decoded_alone(probe, expected):
    got, want, mistakes = run(probe, expected, "preemption")
    check_outputs(got, want, mistakes, _("outputs with a pool of 5 blocks, where the newest request is preempted"))
    expect.equal(got["fed"], want["fed"], _("tokens each request fed the model over the run"),
                 hint=_("A preempted request computes its prompt and its outputs so far again: that is the price of "
                        "preemption by recomputation. {room}").format(room=_(ROOM)))


@pytest.mark.points(2)
def test_a_newcomer_fits_only_beside_what_the_running_need(probe, expected):
    got, want, mistakes = run(probe, expected, "tight")
    check_steps(got, want, mistakes, ("running", "waiting"),
                _("The running request needs the last free block for its next position, so the newcomer waits. "
                  "{admit}").format(admit=_(ADMIT)))
    check_outputs(got, want, mistakes, _("outputs with a pool of 2 blocks"))


@pytest.mark.points(3)
def test_a_chunked_prefill_feeds_at_most_the_chunk(probe, expected):
    got, want, mistakes = run(probe, expected, "chunked")
    check_steps(got, want, mistakes, ("calls", "outputs"),
                _("With prefill_chunk, a request feeds at most that many of its tokens per step (feed(r)); only the "
                  "step that feeds its last token gives an output. {retire}").format(retire=_(RETIRE)))
    check_outputs(got, want, mistakes, _("outputs with prefills of at most 3 tokens per step"))


@pytest.mark.points(1)
def test_a_step_with_nothing_to_do_calls_nothing(probe, expected):
    got, want, mistakes = run(probe, expected, "idle")
    check_steps(got, want, mistakes, ("value", "calls"), _("With no request running or admitted, step returns [] "
                                                          "without calling the model."))


@pytest.mark.points(4)
@pytest.mark.uses(*MODEL_TODOS)
def test_a_real_model_serves_every_request_as_its_prompt_alone(probe, expected):
    requests = [[3, 14, 15, 9, 2, 6], [5, 35, 8], [9, 7, 9, 32, 3, 8, 4, 6, 2], [6, 4, 33, 8]]
    args = dict(config=MODEL, seed=47, requests=requests, max_new_tokens=[6, 8, 3, 5], arrivals=[0, 0, 1, 3],
                num_blocks=7, block_size=4, max_running=3, prefill_chunk=4)
    got, want = probe("schedule_real", **args), expected("schedule_real", **args)
    expect.equal(got["error"], None, _("an error while serving a real model"), needs=MODEL_TODOS,
                 hint=_("{room} {admit}").format(room=_(ROOM), admit=_(ADMIT)))
    expect.equal(got["outputs"], got["alone"], _("outputs of 4 requests served on a real model with a pool of 7 "
                                                 "blocks and prefills of at most 4 tokens, against each prompt "
                                                 "decoded alone without a cache"), needs=MODEL_TODOS,
                 hint=_("{room} {forward} {retire}").format(room=_(ROOM), forward=_(FORWARD), retire=_(RETIRE)))
    expect.equal([got["fed"], got["preempted"]], [want["fed"], want["preempted"]],
                 _("[tokens fed per request, preemptions] over the run"), needs=MODEL_TODOS, hint=_(ROOM))

"""Feedback that fits the mistake: each common mistake earns the hint that names it, and no hint that does not fit.

Each case is a real submission (the reference with one TODO body replaced by the mistake, from
``autograder/examples/``), checked in process like the student's ``pytest``; one case is also graded by
``kvkit grade`` to show the grader says the same.
"""

from __future__ import annotations

import pytest

from kvkit.paths import TODOS
from kvkit.examples import write_package
from kvkit.grade import grade
from selfcheck_support import checks_in_process, example_package

# mistake body -> (check, text its message must hold, texts it must not hold)
CASES = {
    "mistakes/todo2_no_scale": ("test_uncached_attention_matches_the_reference",
                                "not divided by sqrt(head_dim)", ["mask", "cache"]),
    "mistakes/todo2_mask_not_offset": ("test_chunk_after_a_cached_prefix_is_masked_correctly",
                                       "triu(ones(S, L + S), diagonal=1)", ["sqrt"]),
    "bodies/todo2_is_causal_with_cache": ("test_decode_steps_equal_uncached",
                                          "is_causal aligns its mask with the top-left corner", ["sqrt"]),
    "bodies/todo2_square_mask": ("test_chunk_after_a_cached_prefix_is_masked_correctly",
                                 "the scores, and any mask, are [S, L + S] per head", []),
    "bodies/todo2_reads_up_to_current_length": ("test_cached_prefill_equals_uncached",
                                                "attend over the (keys, values) that kv_cache.update returns", []),
    "bodies/todo1_torch_cat": ("test_update_writes_at_current_length",
                               "update replaced cache.keys[layer] or cache.values[layer] with a new tensor",
                               ["position", "meant for"]),
    "clauses/todo1_swaps_keys_and_values": ("test_update_keeps_keys_and_values_apart",
                                            "holds the new key where its value belongs", []),
    "clauses/todo1_writes_at_zero": ("test_update_writes_at_current_length",
                                     "position 0 holds the entry meant for position 3", []),
    "bodies/todo3_advance_per_layer": ("test_current_length_advances_once_after_the_last_layer",
                                       "Every layer of one call must see the same cache length", []),
    "bodies/todo3_positions_from_zero": ("test_positions_start_at_the_cache_length",
                                         "in the call made with current_length=4, pos_emb was given positions [0]",
                                         []),
    "bodies/todo4_refeeds_last_prompt_token": ("test_first_new_token_comes_from_the_prefill_logits",
                                               "fed the last prompt token again", []),
    "bodies/todo4_one_cache_across_calls": ("test_every_generate_call_starts_a_fresh_cache",
                                            "Make a new cache at the start of every generate call", []),
}


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    cache = {}

    def get(body: str):
        if body not in cache:
            folder = example_package(body, tmp_path_factory.mktemp(body.replace("/", "_")))
            cache[body] = (folder, checks_in_process(folder))
        return cache[body]

    return get


@pytest.mark.parametrize("body", sorted(CASES))
def test_each_common_mistake_earns_its_hint(checked, body):
    check, wanted, unwanted = CASES[body]
    _, results = checked(body)
    result = results[check]
    assert not result.passed, f"{body} passes {check}"
    assert wanted in result.message, result.message
    hints = result.message.split("\n", 1)[-1]  # the lines after the first, where hints go
    for text in unwanted:
        assert text not in hints, f"{check} on {body} says {text!r}, which does not fit:\n{result.message}"


def test_a_students_exception_names_the_todo_the_exception_and_the_students_line(checked):
    _, results = checked("bodies/todo2_square_mask")
    message = results["test_chunk_after_a_cached_prefix_is_masked_correctly"].message
    first, where = message.splitlines()[:2]
    assert first.startswith("your TODO 2 (Attention.forward) raised RuntimeError: ")
    assert where.startswith("  at kvcache/model.py, line ") and "masked_fill" in where
    assert "kvchecks" not in message and "probes.py" not in message  # no frames of the checks


def test_whole_model_checks_blame_the_todo_that_fails_and_only_that_one(checked):
    _, results = checked("bodies/todo3_positions_from_zero")  # TODOs 1 and 2 are right
    whole = results["test_chunked_prefill_equals_one_shot"]
    assert not whole.passed
    assert "TODO 1 and TODO 2 pass all their checks so far, so look at TODO 3" in whole.message
    assert "fix those first" not in whole.message
    _, results = checked("mistakes/todo2_no_scale")  # TODO 2 is wrong
    whole = results["test_chunked_prefill_equals_one_shot"]
    assert "TODO 2 fails" in whole.message and "fix those first" in whole.message and "TODO 1 fails" not in whole.message


def test_an_unfinished_todo_is_named_by_the_checks_of_the_todos_that_need_it(tmp_path):
    results = checks_in_process(write_package(tmp_path, {TODOS[1].function: "stub"}))
    message = results["test_chunked_prefill_equals_one_shot"].message
    assert message.startswith("TODO 1 (KVCache.update) is not implemented yet (NotImplementedError at kvcache/cache.py")
    assert "this check of TODO 3 (Transformer.forward) runs TODO 1 (KVCache.update) too" in message
    assert results["test_positions_start_at_the_cache_length"].passed  # TODO 3's own checks do not need TODO 1


def test_kvkit_grade_gives_the_same_feedback_as_the_self_check(checked):
    folder, results = checked("bodies/todo1_torch_cat")
    graded = {r.name.split("::")[-1]: r for r in grade(folder).results}
    for name, result in results.items():
        assert graded[name].passed == result.passed, name
        if not result.passed:
            assert graded[name].message == result.message, name

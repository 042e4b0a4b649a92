"""Feedback that fits the mistake: each common mistake earns the hint that names it, and no hint that does not fit.

Each case is a real submission (the reference with one TODO body replaced by the mistake, from the assignment's
examples folder, which pins the hints in ``hints.toml``), checked in process like the student's ``pytest``; one
case of part 1 is also graded by ``kvkit grade`` to show the grader says the same.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from kvchecks import mistakes
from kvkit.examples import write_package
from kvkit.grade import grade
from kvkit.paths import EXAMPLES, TODOS
from selfcheck_support import checks_in_process, example_package


def cases() -> dict[str, dict]:
    """The assignment's pinned hints (``<examples>/hints.toml``): mistake body -> check, says, never."""
    path = EXAMPLES / "hints.toml"
    return tomllib.loads(path.read_text()) if path.is_file() else {}


CASES = cases()


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    cache = {}

    def get(body: str):
        if body not in cache:
            folder = example_package(body, tmp_path_factory.mktemp(body.replace("/", "_")))
            cache[body] = (folder, checks_in_process(folder))
        return cache[body]

    return get


@pytest.mark.every_assignment
def test_every_known_mistake_has_its_hint_pinned():
    """Each mistake the goldens record (the checks package's MISTAKES) has a pinned case below."""
    pinned = {Path(body).name for body in CASES}
    assert not [m.name for m in mistakes.registry().values() if m.name not in pinned]


@pytest.mark.every_assignment
@pytest.mark.parametrize("body", sorted(CASES))
def test_each_common_mistake_earns_its_hint(checked, body):
    check, wanted, unwanted = CASES[body]["check"], CASES[body]["says"], CASES[body]["never"]
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

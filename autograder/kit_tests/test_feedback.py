"""Feedback that fits the mistake: each common mistake earns the hint that names it, and no hint that does not fit.

Each case is a real submission (the reference with one TODO body replaced by the mistake, from the assignment's
examples folder, which pins the hints in ``hints.toml``), checked in process like the student's ``pytest``; one
case of part 1 is also graded by ``kvkit grade`` to show the grader says the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kvchecks import mistakes
from kvchecks.assignment import using
from kvkit.examples import example_bodies, write_package
from kvkit.grading.grade import grade
from layouts_support import PART1, per_assignment
from message_rules import internal_identifiers, wrong_plurals
from selfcheck_support import checks_in_process, pinned_hints

pytestmark = pytest.mark.slow  # every case runs the checks (in process) on a submission


cases = pinned_hints  # the assignment's pinned hints: mistake body -> check, says, never


def known_mistakes(layout) -> dict[str, mistakes.Mistake]:
    """The known mistakes of ``layout``'s checks package (``MISTAKES``), by name."""
    with using(layout.assignment.manifest):
        return mistakes.registry()


@pytest.fixture
def checked(body_checks):
    return body_checks


@pytest.fixture
def example_results(example_checks):
    """Check results of each example submission of ``examples.toml`` (each checked once per session)."""
    return example_checks


def diagnoses(layout) -> dict[str, str]:
    """Every hint that names a mistake -> the body it is pinned to: each known mistake's hint (``MISTAKES``) and
    the ``says`` of each pinned case marked ``signature = true`` (a hint the checks give only on that signature)."""
    found = {known.hint: f"mistakes/{known.name}" for known in known_mistakes(layout).values()}
    for body, case in cases(layout).items():
        if case.get("signature"):
            found.setdefault(case["says"], body)
    return found


def _own(layout, body: str) -> set[str]:
    """A body's own diagnoses: its pinned ``says`` and its known mistake's hint."""
    pinned, known = cases(layout), known_mistakes(layout)
    texts = {pinned[body]["says"]} if body in pinned else set()
    if body.startswith("mistakes/") and Path(body).name in known:
        texts.add(known[Path(body).name].hint)
    return texts


def allowed(layout, bodies: list[str]) -> set[str]:
    """The diagnoses pinned to ``bodies`` (``examples.toml`` names bodies/ files without their folder): their own,
    and what their ``also`` names (a text, or another body whose mistake computes exactly the same)."""
    texts, pinned = set(), cases(layout)
    for body in bodies:
        body = body if "/" in body else f"bodies/{body}"
        texts |= _own(layout, body)
        for also in pinned.get(body, {}).get("also", ()):
            texts |= _own(layout, also) if (also in pinned or also.startswith("mistakes/")) else {also}
    return texts


def _hint_lines(message: str) -> str:
    return message.split("\n", 1)[1] if "\n" in message else ""


def fired(results: dict, texts) -> dict[str, list[str]]:
    """Which of ``texts`` each failed check's hint lines (the lines after the first) hold."""
    found = {name: [t for t in texts if t in _hint_lines(r.message)] for name, r in results.items() if not r.passed}
    return {name: hit for name, hit in found.items() if hit}


def example_corpus(layout) -> list[tuple[str, list[str]]]:
    """(what to check, the bodies whose diagnoses it may earn): each pinned case, then each example submission."""
    corpus = [(body, [body]) for body in sorted(cases(layout))]
    for name, bodies in sorted(example_bodies(layout).items()):
        corpus.append((f"example:{name}", [b for b in bodies.values() if b != "stub"]))
    return corpus


CORPUS = per_assignment(example_corpus)


def corpus_results(layout, what: str, checked, example_results) -> dict:
    if what.startswith("example:"):
        return example_results(layout, what.split(":", 1)[1])
    return checked(layout, what)[1]


@pytest.mark.parametrize("layout,what,bodies", CORPUS)
def test_no_hint_fires_but_the_pinned_ones(checked, example_results, layout, what, bodies):
    """A hint that names a mistake (a known mistake's, a pinned case's) appears only on the bodies pinned to it:
    each hint fires on the signature of its own mistake, never beside another."""
    results = corpus_results(layout, what, checked, example_results)
    named = diagnoses(layout)
    others = set(named) - allowed(layout, bodies)
    wrong = fired(results, others)
    assert not wrong, f"{what}: hints pinned to other mistakes fired: " + "; ".join(
        f"{name}: {[named[t] for t in texts]}" for name, texts in wrong.items())


@pytest.mark.parametrize("layout,what,bodies", CORPUS)
def test_every_failure_reads_well(checked, example_results, layout, what, bodies):
    """No failure names the kit's internal identifiers or says "1 positions"; every failed hidden check says why
    (a hint, or where the error came from, below its first line)."""
    internal = internal_identifiers(layout)
    for name, result in corpus_results(layout, what, checked, example_results).items():
        if result.passed:
            continue
        assert not internal.search(result.message), f"{what}, {name}: {internal.search(result.message)[0]!r} in\n" \
                                                     f"{result.message}"
        assert not wrong_plurals(result.message), f"{what}, {name}: {result.message}"
        if result.hidden and "NotImplementedError" not in result.message:
            assert len(result.message.strip().splitlines()) > 1, f"{what}, hidden {name} says no why: {result.message}"


@pytest.mark.parametrize("layout,body", per_assignment(lambda layout: [(body,) for body in sorted(cases(layout))]))
def test_each_common_mistake_earns_its_hint(checked, layout, body):
    case = cases(layout)[body]
    check, wanted, unwanted = case["check"], case["says"], case["never"]
    _, results = checked(layout, body)
    result = results[check]
    assert not result.passed, f"{body} passes {check}"
    assert wanted in result.message, result.message
    hints = result.message.split("\n", 1)[-1]  # the lines after the first, where hints go
    for text in unwanted:
        assert text not in hints, f"{check} on {body} says {text!r}, which does not fit:\n{result.message}"


def test_a_students_exception_names_the_todo_the_exception_and_the_students_line(checked):
    _, results = checked(PART1, "bodies/todo2_square_mask")
    message = results["test_chunk_after_a_cached_prefix_is_masked_correctly"].message
    first, where = message.splitlines()[:2]
    assert first.startswith("your TODO 2 (Attention.forward) raised RuntimeError: ")
    assert where.startswith("  at kvcache/model.py, line ") and "masked_fill" in where
    assert "kvchecks" not in message and "probes.py" not in message  # no frames of the checks


def test_whole_model_checks_blame_the_todo_that_fails_and_only_that_one(checked):
    _, results = checked(PART1, "bodies/todo3_positions_from_zero")  # TODOs 1 and 2 are right
    whole = results["test_chunked_prefill_equals_one_shot"]
    assert not whole.passed
    assert "This check also runs TODO 1 and TODO 2, which pass their own checks, so look at TODO 3 first" in \
        whole.message
    assert whole.blame == "own" and "blocked" not in whole.message
    _, results = checked(PART1, "mistakes/todo2_no_scale")  # TODO 2 is wrong
    whole = results["test_chunked_prefill_equals_one_shot"]
    assert whole.blame == "blocked" and whole.blocked_by == (2,)
    assert whole.message.startswith("TODO 3 (Transformer.forward): blocked by TODO 2 (Attention.forward), which fails "
                                    "its own checks") and "TODO 1" not in whole.message.splitlines()[0]


def test_an_unfinished_todo_is_named_by_the_checks_of_the_todos_that_need_it(tmp_path):
    results = checks_in_process(PART1, write_package(PART1, tmp_path, {PART1.assignment.todos[1].function: "stub"}))
    message = results["test_chunked_prefill_equals_one_shot"].message
    blocked, first = message.splitlines()[:2]
    assert blocked.startswith("TODO 3 (Transformer.forward): blocked by TODO 1 (KVCache.update), which is not "
                              "implemented yet")
    assert first.startswith("TODO 1 (KVCache.update) is not implemented yet (NotImplementedError at kvcache/cache.py")
    assert results["test_positions_start_at_the_cache_length"].passed  # TODO 3's own checks do not need TODO 1


def test_kvkit_grade_gives_the_same_feedback_as_the_self_check(checked):
    folder, results = checked(PART1, "bodies/todo1_torch_cat")
    graded = {r.name.split("::")[-1]: r for r in grade(PART1, folder).results}
    for name, result in results.items():
        assert graded[name].passed == result.passed, name
        if not result.passed:
            assert graded[name].message == result.message, name


def test_goldens_without_the_call_blame_the_kit_not_the_code(tmp_path):
    """A call the goldens lack (the kit's files out of date) says so and what to run; an error the check meets in what
    the code returned still says that; the self-check, the notebook and the grader word both alike."""
    from kvchecks.failures import check_failure
    from kvchecks.goldens import GoldenFile, MissingGolden
    from kvchecks.notebook import describe_failure

    (tmp_path / "goldens.json").write_text("{}")
    with pytest.raises(MissingGolden) as missing:
        GoldenFile(tmp_path / "goldens.json").lookup("cache_ops", {"seed": 1})
    for said in (check_failure(missing.value, "test_x.py:3"), describe_failure(missing.value)):
        assert said == str(missing.value) and "kvkit goldens" in said and "your code" not in said
    assert check_failure(ValueError("bad shape"), "test_x.py:3") == (
        "the check could not use what your code returned: ValueError: bad shape (test_x.py:3)")

"""Blame that is right: a failing check that runs several TODOs names the TODO whose code is wrong.

Each case is a real submission (the reference with some TODO bodies replaced by the examples' mistakes, or by a
patch of the reference's body), checked in process like the student's ``pytest``. The rules themselves
(:mod:`kvchecks.blame`) are checked on made-up verdicts first.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from kvchecks.assignment import using
from kvchecks.blame import BLOCKED, OWN, UNKNOWN, Record, assign
from kvchecks.plugin import score_lines
from kvkit.examples import example_body, patched_body, write_package
from kvkit.paths import Layout
from layouts_support import PART1
from selfcheck_support import _Results, checks_in_process

SERVING = Layout.named("kv_serving")
SERVING_TODOS = {1: "Attention.forward", 2: "apply_rotary", 3: "SinkWindowCache.update",
                 4: "BatchGenerator.generate_batch", 5: "KVCache.crop", 6: "SpeculativeDecoder.generate"}

# A TODO 6 that crops the draft's cache past what it holds: the provided-looking error comes from crop (TODO 5),
# which is right to raise; the caller, TODO 6, is wrong.
DRAFT_CROPPED_PAST_ITS_LENGTH = """
-     draft_cache.crop(min(draft_cache.current_length, len(out) - 1))
+     draft_cache.crop(len(out) - 1)
"""


def record(todo, uses=(), passed=False, unfinished=(), recognised=()):
    return Record(todo, frozenset(uses) | {todo}, passed, frozenset(unfinished), frozenset(recognised))


# -- the rules ---------------------------------------------------------------------------------------------------------
def test_a_check_is_blocked_by_a_todo_whose_own_checks_fail():
    verdicts = assign([record(1), record(2, passed=True), record(2, uses=(1,))])
    assert verdicts[0].kind == OWN and verdicts[1] is None
    assert verdicts[2].kind == BLOCKED and verdicts[2].todos == (1,)


def test_a_check_whose_other_todos_pass_blames_its_own():
    verdicts = assign([record(1, passed=True), record(2, passed=True), record(3, uses=(1, 2))])
    assert verdicts[2].kind == OWN and verdicts[2].todos == (1, 2)


def test_blame_passes_through_a_whole_model_check_that_fails_on_its_own():
    """TODO 3's whole-model check fails while TODOs 1 and 2 pass: a check of TODO 4 that runs the model too is
    blocked by TODO 3, not blamed on TODO 4."""
    verdicts = assign([record(1, passed=True), record(2, passed=True), record(3, passed=True),
                       record(3, uses=(1, 2)), record(4, passed=True), record(4, uses=(1, 2, 3))])
    assert verdicts[3].kind == OWN
    assert verdicts[5].kind == BLOCKED and verdicts[5].todos == (3,)


def test_a_todo_with_no_check_run_leaves_the_cause_unknown():
    verdicts = assign([record(3, passed=True), record(3, uses=(1, 2)), record(1, passed=True)])
    assert verdicts[1].kind == UNKNOWN and verdicts[1].todos == (2,) and verdicts[1].untested


def test_two_todos_whose_joint_checks_fail_both_ways_are_not_guessed():
    verdicts = assign([record(1, passed=True), record(2, passed=True), record(1, uses=(2,)), record(2, uses=(1,)),
                       record(3, passed=True), record(3, uses=(1, 2))])
    assert verdicts[2].kind == UNKNOWN and verdicts[2].todos == (2,)
    assert verdicts[3].kind == UNKNOWN and verdicts[3].todos == (1,)
    assert verdicts[5].kind == UNKNOWN


def test_a_stub_the_check_reached_is_the_first_thing_to_fix():
    verdicts = assign([record(2, passed=True), record(2, uses=(1,), unfinished=(1,)), record(1, unfinished=(1,))])
    assert verdicts[1].kind == BLOCKED and verdicts[1].todos == (1,)
    assert verdicts[2].kind == OWN


# -- real submissions --------------------------------------------------------------------------------------------------
def check_case(tmp_path: Path, layout: Layout, bodies: dict[int, str], table: bool = False):
    """The self-check's results (check name -> Result as a dict) of ``layout``'s reference with ``bodies`` swapped
    in: each an example body (``mistakes/NAME``, ``clauses/NAME``) or ``patch:`` and a patch of the reference's body.
    With ``table``: ``(results, the score table's lines)``."""
    todos = layout.assignment.todos
    swapped = {todos[todo].function: (patched_body(layout, todo, body[6:]) if body.startswith("patch:")
                                      else example_body(layout, todo, next(layout.examples.glob(body + ".*"))))
               for todo, body in bodies.items()}
    results = checks_in_process(layout, write_package(layout, tmp_path, swapped))
    as_dicts = {name: json.loads(json.dumps(asdict(r))) for name, r in results.items()}  # tuples read as lists
    if not table:
        return as_dicts
    with using(layout.assignment.manifest):
        return as_dicts, score_lines(list(results.values()))


def failing(results: dict[str, dict]) -> dict[str, dict]:
    return {name: r for name, r in results.items() if not r["passed"]}


def culprits(results: dict[str, dict]) -> set[int]:
    """The TODOs the failures name as the cause."""
    found = set()
    for r in failing(results).values():
        found |= set(r["blocked_by"]) if r["blame"] == BLOCKED else {r["todo"]} if r["blame"] == OWN else set()
    return found


@pytest.fixture(scope="module")
def three_broken(tmp_path_factory):
    """Part 2 with TODOs 1, 4 and 6 wrong (attention without the scale, batches without the mask, a speculative loop
    that accepts every proposal); TODOs 2, 3 and 5 right."""
    return check_case(tmp_path_factory.mktemp("three"), SERVING, {
        1: "mistakes/todo1_no_scale", 4: "mistakes/todo4_no_attention_mask",
        6: "clauses/todo6_accepts_every_proposal"}, table=True)


@pytest.mark.slow
def test_correct_todos_show_blocked_by_the_broken_one(three_broken):
    results, _ = three_broken
    for todo in (2, 3, 5):
        mine = [r for r in failing(results).values() if r["todo"] == todo]
        assert mine, f"no check of TODO {todo} runs TODO 1"
        for r in mine:
            assert r["blame"] == BLOCKED and r["blocked_by"] == [1], r
            first = r["message"].splitlines()[0]
            assert first.startswith(f"TODO {todo} ({SERVING_TODOS[todo]}): blocked by TODO 1 (Attention.forward)")
            assert "fix those first" not in r["message"] and f"TODO {todo} fails" not in r["message"]


@pytest.mark.slow
def test_a_run_with_three_todos_broken_names_only_those_three(three_broken):
    results, _ = three_broken
    assert culprits(results) == {1, 4, 6}
    assert not [r for r in failing(results).values() if r["blame"] == UNKNOWN]


@pytest.mark.slow
def test_the_score_table_shows_the_blocked_checks_and_what_to_fix_first(three_broken):
    _, lines = three_broken
    row = next(line for line in lines if line.startswith("TODO 2 "))
    assert "blocked by TODO 1" in row, lines
    assert lines[-1].startswith("Fix first: TODO 1, which fails its own checks (checks of other TODOs it blocks: "), \
        lines


@pytest.mark.slow
def test_a_rotary_that_returns_float64_is_blamed_for_the_others_failures(tmp_path):
    results = check_case(tmp_path, SERVING, {2: "clauses/todo2_returns_float64"})
    own = [r for r in failing(results).values() if r["todo"] == 2 and r["blame"] == OWN]
    assert own, "TODO 2's own checks should catch a float64 result"
    others = [r for r in failing(results).values() if r["todo"] != 2]
    assert others and all(r["blame"] == BLOCKED and r["blocked_by"] == [2] for r in others), others
    assert culprits(results) == {2}


@pytest.mark.slow
def test_an_error_from_crop_called_wrongly_names_the_caller_not_crop(tmp_path):
    results = check_case(tmp_path, SERVING, {6: "patch:" + DRAFT_CROPPED_PAST_ITS_LENGTH})
    real = results["test_speculative_decoding_equals_target_greedy_on_real_models"]
    assert not real["passed"]
    assert "your TODO 5 (KVCache.crop) raised" not in real["message"], real["message"]
    assert "your TODO 6 (SpeculativeDecoder.generate) called TODO 5 (KVCache.crop), which raised ValueError" in \
        real["message"], real["message"]
    assert "called at kvserving/speculative.py, line " in real["message"] and "draft_cache.crop(" in real["message"]
    assert real["blame"] == OWN and culprits(results) == {6}


@pytest.mark.slow
def test_an_error_in_the_provided_cache_names_the_students_calling_line(tmp_path):
    """A TODO 6 that never crops the target's cache: the provided KVCache.update overflows, inside TODO 1's call."""
    results = check_case(tmp_path, SERVING, {6: "clauses/todo6_target_not_cropped"})
    real = results["test_speculative_decoding_equals_target_greedy_on_real_models"]
    message = real["message"]
    assert "your TODO 6 (SpeculativeDecoder.generate) called TODO 1 (Attention.forward), which raised " \
           "CacheOverflowError" in message, message
    assert "(raised inside KVCache.update, which that line calls)" in message
    assert "called at kvserving/speculative.py, line " in message
    assert "kvserving/cache.py" not in message  # the provided file's line is not the student's to fix
    assert real["blame"] == OWN and culprits(results) == {6}


@pytest.mark.slow
def test_part_1_whole_model_checks_blame_the_todo_that_fails(tmp_path):
    results = {name: r for name, r in checks_in_process(PART1, _part1_package(tmp_path)).items()}
    generate = results["test_generate_matches_uncached_greedy_decoding"]
    assert not generate.passed and generate.blame == BLOCKED and generate.blocked_by == (3,), generate.message


def _part1_package(tmp_path: Path) -> Path:
    body = example_body(PART1, 3, PART1.examples / "bodies" / "todo3_positions_from_zero.py")
    return write_package(PART1, tmp_path, {PART1.assignment.todos[3].function: body})


# -- the declarations --------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_every_check_declares_the_todos_it_runs(tmp_path, layout):
    """With TODO j left unfinished, every check of another TODO that fails carries ``uses(j)``: the blame never
    relies on the failure to say which TODOs it ran."""
    import contextlib
    import io

    class Declared:
        def __init__(self) -> None:
            self.uses: dict[str, tuple] = {}

        @pytest.hookimpl(trylast=True)
        def pytest_collection_modifyitems(self, items):
            for item in items:
                props = dict(item.user_properties)
                self.uses[item.nodeid.split("::")[-1]] = props.get("uses", ())

    missing = []
    todos = layout.assignment.todos
    for todo in todos:
        folder = write_package(layout, tmp_path / f"stub{todo}", {todos[todo].function: "stub"})
        declared, grab = Declared(), _Results()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            pytest.main([str(layout.public_tests), str(layout.hidden_tests), f"--impl={folder}", "-p",
                         "no:cacheprovider",
                         "--import-mode=importlib", "-q", "-W", "ignore"], plugins=[declared, grab])
        assert grab.results, f"no check ran on {folder}"
        missing += [f"{r.name} (TODO {r.todo}) runs TODO {todo}" for r in grab.results
                    if not r.passed and r.todo != todo and todo not in declared.uses.get(r.name.split("::")[-1], ())]
    assert not missing, "add @pytest.mark.uses(...) to: " + "; ".join(missing)


# -- the notebook ------------------------------------------------------------------------------------------------------
def test_a_notebook_demo_names_the_unfinished_todo_and_the_notebook_ends_with_the_score_table(capsys, layout):
    """On the skeleton's classes: a demo cell says which TODO it needs (no traceback, so Run All goes on), and the
    last cell prints the self-check's score table for the checks that ran (a notebook's assignment is the one beside
    its checks: here, the one this test makes the current one)."""
    import inspect

    from kvchecks.backends import load_package
    from kvchecks.notebook import NotebookChecks

    work, public = layout.assignment, layout.public_tests
    with using(work.manifest):
        package = load_package(layout.skeleton)
        checks = NotebookChecks({name: getattr(package, name) for name in work.exports if hasattr(package, name)},
                                folder=public.parent)
        todo = work.todos[1]
        owner, _, method = todo.function.rpartition(".")
        function = getattr(getattr(package, owner), method) if owner else getattr(package, method)
        with checks.demo():
            function(*[None] * len(inspect.signature(function).parameters))
        said = capsys.readouterr().out
        assert said.startswith(f"This cell needs TODO 1 ({todo.function}), which is not implemented yet"), said
        assert "Traceback" not in said

        first = sorted(public.glob("test_todo1_*.py"))[0]
        name = next(line.split("(")[0][4:] for line in first.read_text().splitlines()
                    if line.startswith("def test_") and "parametrize" not in line)
        checks.run(f"{public.name}/{first.name}::{name}")
        capsys.readouterr()
        checks.score_table()
        table = capsys.readouterr().out.splitlines()
        assert table[0].endswith("score per TODO")
        assert table[1:] == score_lines(list(checks.records.values()))
        assert table[1].startswith(f"TODO 1  {todo.function}") and "0 / " in table[1] and \
            "(0/1 checks pass)" in table[1]


def test_a_recognised_mistake_settles_which_of_two_todos_is_wrong():
    """TODO 1's joint checks with TODO 2 fail and TODO 2's joint check with TODO 1 fails, both pass their own
    checks; one of TODO 1's failures is exactly a known mistake of TODO 1: TODO 1 is blamed, TODO 2 blocked."""
    verdicts = assign([record(1, passed=True), record(2, passed=True), record(1, uses=(2,), recognised=(1,)),
                       record(1, uses=(2,)), record(2, uses=(1,))])
    assert verdicts[2].kind == OWN and verdicts[3].kind == OWN
    assert verdicts[4].kind == BLOCKED and verdicts[4].todos == (1,)


def test_a_mistake_recognised_while_a_todo_it_runs_fails_its_own_checks_blames_that_todo():
    """A TODO 2 that ignores its base makes TODO 1's output equal a known mistake of TODO 1 (ignoring rope_base);
    TODO 2's own check fails, so TODO 1's failure is blocked by TODO 2, not blamed on TODO 1."""
    verdicts = assign([record(1, passed=True), record(2), record(1, uses=(2,), recognised=(1,))])
    assert verdicts[2].kind == BLOCKED and verdicts[2].todos == (2,)

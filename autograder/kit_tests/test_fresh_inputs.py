"""Fresh inputs at grade time: a replay of the published observations earns nothing; honest code loses nothing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from hostile_support import make_submission
from kvchecks.backends import InProcessBackend
from kvchecks.fresh import redraw
from kvkit.examples import EXAMPLE_BODIES, write_example
from kvkit.fresh import FRESH_ONLY, FreshInputs
from kvkit.grade import grade, run_checks
from kvkit.paths import ASSIGNMENT, HIDDEN_TESTS, PUBLIC_TESTS, REFERENCE, ROOT, TODOS

pytestmark = [pytest.mark.slow, pytest.mark.every_assignment]


def published_calls():
    for folder in (PUBLIC_TESTS, HIDDEN_TESTS):
        for key in json.loads((folder / "goldens.json").read_text()):
            call = json.loads(key)
            if "mistake" not in call:
                yield call["probe"], call["args"]


def test_every_published_call_is_redrawn_with_its_shapes_kept():
    calls = list(published_calls())
    assert len(calls) > 30
    for probe, args in calls:
        fresh = redraw(probe, args, "some key")
        assert fresh != args, f"{probe}({args}) is not redrawn: a replay of it would pass"
        assert redraw(probe, args, "some key") == fresh and redraw(probe, args, "another key") != fresh
        for name in ("config", "chunks", "batch", "length", "layer_idx", "max_new_tokens", "reply_tokens"):
            assert fresh.get(name) == args.get(name), (probe, name)
        for name in ("prompt", "turns"):
            if name in args:
                assert json.dumps(fresh[name]).count(",") == json.dumps(args[name]).count(","), (probe, name)


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    """The skeleton, plus code that answers every published probe call with its published observation."""
    sub = make_submission(tmp_path_factory.mktemp("replay"), {n: "stub" for n in TODOS},
                          at_import=["import_replays_goldens"])
    shutil.copy(PUBLIC_TESTS / "goldens.json", sub / ASSIGNMENT.package / "goldens.json")
    return sub


def test_replaying_the_published_goldens_scores_what_the_skeleton_scores(replay, graded):
    report = grade(replay)
    assert report.score == graded("assignments").score == 0
    fresh_only = [r for r in report.results if FRESH_ONLY in r.message]
    enough = len([r for r in report.results if not r.hidden]) // 3  # a third of the public checks, at least
    assert len(fresh_only) > enough, "the replay should pass the published inputs of the public checks"
    assert all(r.message.startswith(f"TODO {r.todo} (") for r in fresh_only)
    # the student's own self-check has no fresh inputs: there the replay passes (so the attack is real); in a
    # process of its own, since the replay rewrites the probe table of the process it runs in
    run = subprocess.run([sys.executable, "-m", "pytest", str(PUBLIC_TESTS), f"--impl={replay}", "-q"], cwd=ROOT,
                         capture_output=True, text=True)
    assert int(re.search(r"(\d+) passed", run.stdout).group(1)) > enough, run.stdout[-2000:]


@pytest.mark.parametrize("example", ["reference"] + sorted(n for n in EXAMPLE_BODIES if n.startswith("alternative")))
def test_correct_code_passes_on_many_fresh_draws(tmp_path, example):
    folder = REFERENCE if example == "reference" else write_example(example, tmp_path)
    for draw in range(6):
        fresh = FreshInputs(REFERENCE, draw_key=f"kit-test-{draw}")
        failed = [f"{r.name}: {r.message}" for r in run_checks(InProcessBackend(folder), fresh) if not r.passed]
        assert not failed, f"{example} fails on fresh draw {draw}:\n" + "\n".join(failed)

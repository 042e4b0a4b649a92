"""Fresh inputs at grade time: a replay of the published observations earns nothing; honest code loses nothing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from hostile_support import make_submission
from kvchecks.assignment import using
from kvchecks.backends import InProcessBackend
from kvchecks.fresh import redraw
from kvkit.examples import example_bodies, write_example
from kvkit.grading.fresh import FRESH_ONLY, FreshInputs
from kvkit.grading.grade import grade, run_checks
from kvkit.registry import ROOT


def published_calls(layout):
    for folder in (layout.public_tests, layout.hidden_tests):
        for key in json.loads((folder / "goldens.json").read_text()):
            call = json.loads(key)
            if "mistake" not in call:
                yield call["probe"], call["args"]


def test_every_published_call_is_redrawn_the_same_way_per_key_with_its_shapes_kept(layout):
    """That every call is redrawn at all, and that there are enough of them for the replay below to mean something,
    is a requirement (``kvkit.requirements.the_fresh_inputs_redraw_every_published_call``)."""
    calls = list(published_calls(layout))
    assert calls
    with using(layout.assignment.manifest):  # its checks package's redraw rules
        for probe, args in calls:
            fresh = redraw(probe, args, "some key")
            assert redraw(probe, args, "some key") == fresh and redraw(probe, args, "another key") != fresh
            for name in ("config", "chunks", "batch", "length", "layer_idx", "max_new_tokens", "reply_tokens"):
                assert fresh.get(name) == args.get(name), (probe, name)
            for name in ("prompt", "turns"):
                if name in args:
                    assert json.dumps(fresh[name]).count(",") == json.dumps(args[name]).count(","), (probe, name)


def replay(layout, folder):
    """The skeleton, plus code that answers every published probe call with its published observation."""
    sub = make_submission(layout, folder, {n: "stub" for n in layout.assignment.todos},
                          at_import=["import_replays_goldens"])
    shutil.copy(layout.public_tests / "goldens.json", sub / layout.assignment.package / "goldens.json")
    return sub


@pytest.mark.slow  # graders
def test_replaying_the_published_goldens_scores_what_the_skeleton_scores(tmp_path, graded, layout):
    replayed = replay(layout, tmp_path / "replay")
    report = grade(layout, replayed)
    assert report.score == graded(layout, "assignments").score == 0
    fresh_only = [r for r in report.results if FRESH_ONLY in r.message]
    enough = len([r for r in report.results if not r.hidden]) // 3  # a third of the public checks, at least
    assert len(fresh_only) > enough, "the replay should pass the published inputs of the public checks"
    assert all(r.message.startswith(f"TODO {r.todo} (") for r in fresh_only)
    # the student's own self-check has no fresh inputs: there the replay passes (so the attack is real); in a
    # process of its own, since the replay rewrites the probe table of the process it runs in
    run = subprocess.run([sys.executable, "-m", "pytest", str(layout.public_tests), f"--impl={replayed}", "-q"],
                         cwd=ROOT, capture_output=True, text=True)
    assert int(re.search(r"(\d+) passed", run.stdout).group(1)) > enough, run.stdout[-2000:]


DRAWS = 6


def correct_code(layout, folder) -> dict[str, object]:
    """The reference and every ``alternative*`` example (other correct code): name -> its package folder."""
    names = [n for n in sorted(example_bodies(layout)) if n.startswith("alternative")]
    return {"reference": layout.reference, **{n: write_example(layout, n, folder / n) for n in names}}


@pytest.mark.slow  # every check, on each correct package, six times
@pytest.mark.parametrize("draw", range(DRAWS))
def test_correct_code_passes_on_many_fresh_draws(tmp_path, layout, draw):
    """Each draw's reference observations are computed once (``FreshInputs`` keeps them) for every correct package."""
    fresh = FreshInputs(layout.reference, draw_key=f"kit-test-{draw}")
    for example, folder in correct_code(layout, tmp_path).items():
        with using(layout.assignment.manifest):  # the backend reads the assignment's probes
            backend = InProcessBackend(folder)
        failed = [f"{r.name}: {r.message}" for r in run_checks(layout, backend, fresh) if not r.passed]
        assert not failed, f"{example} fails on fresh draw {draw}:\n" + "\n".join(failed)

"""The saved reference outputs match what the reference produces now."""

from __future__ import annotations

import json
import shutil

import torch

from kvchecks import codec
from kvkit.goldens import record
from kvkit.registry import ROOT


# float32 results differ between CPUs (vector widths, summation order) by a few units in the last place: 6e-6 on
# logits of size ~10 has been seen; the checks compare logits at 1e-4, so anything staler than this is a real change.
ATOL = RTOL = 2e-5


def same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return (isinstance(b, torch.Tensor) and a.shape == b.shape
                and torch.allclose(a.double(), b.double(), atol=ATOL, rtol=RTOL))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-5 * max(1.0, abs(a))
    return a == b


def test_goldens_are_up_to_date(tmp_path, layout):
    public, hidden = layout.public_tests, layout.hidden_tests
    shutil.copy(ROOT / "conftest.py", tmp_path / "conftest.py")
    shutil.copytree(public, tmp_path / "tests", ignore=shutil.ignore_patterns("goldens.json", "__pycache__"))
    shutil.copytree(hidden, tmp_path / "hidden", ignore=shutil.ignore_patterns("goldens.json", "__pycache__"))
    code, output = record(layout, [tmp_path / "tests", tmp_path / "hidden"], rootdir=tmp_path)
    assert code == 0, output[-3000:]
    for fresh, saved in ((tmp_path / "tests", public), (tmp_path / "hidden", hidden)):
        new = json.loads((fresh / "goldens.json").read_text())
        old = json.loads((saved / "goldens.json").read_text())
        assert new.keys() == old.keys(), f"{saved}/goldens.json asks for other probe calls: run `kvkit goldens`"
        stale = [k for k in new if not same(codec.from_jsonable(new[k]), codec.from_jsonable(old[k]))]
        assert not stale, f"{saved}/goldens.json is stale for {len(stale)} calls: run `kvkit goldens`"


def test_greedy_goldens_are_far_from_ties(layout):
    """Greedy checks compare token ids; the reference's choices must not hinge on rounding (every observation that
    reports its greedy ``margin``)."""
    for folder in (layout.public_tests, layout.hidden_tests):
        for key, entry in json.loads((folder / "goldens.json").read_text()).items():
            call = json.loads(key)
            margin = entry.get("margin") if isinstance(entry, dict) else None
            if margin is not None and "mistake" not in call:
                assert margin > 1e-3, f"{key}: top-2 logit gap {margin}"

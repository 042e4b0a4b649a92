"""``kvkit goldens`` rewrites only the probe calls whose observation changed.

float32 results differ between CPUs by a few units in the last place, so a maintainer who records part 1's goldens on
another machine (or adds one check, as ``docs/maintaining.md`` walks through) must not rewrite every tensor of them:
a recording keeps each saved observation that is the same within the tolerance of ``kvkit goldens --check``.
"""

from __future__ import annotations

import base64
import json
import shutil

import numpy as np

from kvchecks import codec
from kvkit.commands.goldens import ATOL, record, same
from kvkit.registry import ROOT
from layouts_support import PART1


def float32_tensor(value) -> dict | None:
    """The first float32 tensor of more than four values in an observation's JSON form (none if it has none)."""
    if isinstance(value, dict):
        if value.get("__tensor__") == "float32":
            return value if len(base64.b64decode(value["data"])) > 16 else None
        value = list(value.values())
    if isinstance(value, list):
        return next((found for item in value if (found := float32_tensor(item)) is not None), None)
    return None


def nudged(value, by: float):
    """A copy of an observation's JSON form with ``by`` added to the first value of its first float32 tensor."""
    copy = json.loads(json.dumps(value))
    tensor = float32_tensor(copy)
    data = np.frombuffer(base64.b64decode(tensor["data"]), dtype=np.float32).copy()
    data[0] += by
    tensor["data"] = base64.b64encode(data.tobytes()).decode()
    return copy


def test_a_recording_keeps_what_is_the_same_and_rewrites_what_changed(tmp_path):
    shutil.copy(ROOT / "conftest.py", tmp_path / "conftest.py")
    folder = shutil.copytree(PART1.public_tests, tmp_path / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    committed = json.loads((PART1.public_tests / "goldens.json").read_text())
    close, changed = [call for call, value in committed.items() if float32_tensor(value)][:2]
    saved = {**committed, close: nudged(committed[close], ATOL / 10), changed: nudged(committed[changed], 1.0)}
    (folder / "goldens.json").write_text(json.dumps(saved))

    code, output = record(PART1, [folder], rootdir=tmp_path)

    assert code == 0, output[-2000:]
    recorded = json.loads((folder / "goldens.json").read_text())
    assert recorded[close] == saved[close], "an observation within the tolerance was rewritten"
    assert recorded[changed] != saved[changed], "an observation that changed was kept"
    assert same(codec.from_jsonable(recorded[changed]), codec.from_jsonable(committed[changed]))
    assert [call for call in committed if recorded[call] != committed[call] and call not in (close, changed)] == []

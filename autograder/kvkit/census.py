"""What an assignment's checks are, as its own code says: ``python -m kvkit.census MANIFEST`` prints one JSON object
for :mod:`kvkit.requirements`.

It runs in a process of its own, so that importing an assignment's checks (which may be broken: that is what the
requirements find out) touches no other process. The checks are collected as the course collects them
(:func:`kvkit.course.checks.collect_checks`); then, with the assignment current, its checks package says which
mistakes it knows and, for every probe call of the published goldens, whether the fresh inputs redraw it
(:func:`kvchecks.fresh.redraw`). The JSON holds:

- ``checks``: one entry per graded check: ``name`` (``test_x[id]``), ``file`` (relative to the repository),
  ``todo``, ``points``, ``hidden``;
- ``published``: how many probe calls the goldens publish (known mistakes' calls left out);
- ``unredrawn``: those a replay of the goldens would pass with, as ``probe(args)``;
- ``mistakes``: the names of the known mistakes;
- ``error``: present when the checks could not be collected (then nothing else): pytest's error lines, if any.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kvchecks import mistakes
from kvchecks.assignment import load, using
from kvchecks.fresh import redraw

from .course.checks import collect_checks
from .paths import Layout
from .registry import ROOT


def census(layout: Layout) -> dict:
    """The census of ``layout``'s checks (see the module's docstring)."""
    try:
        items = collect_checks(layout)
    except (RuntimeError, ValueError) as err:  # pytest's own error lines, when it printed any, say what to fix
        said = [line.strip() for line in str(err).splitlines() if line.startswith(("ERROR", "E "))]
        return {"error": " / ".join(said[:3])}
    checks = [{"name": item.nodeid.split("::")[-1], "file": Path(item.path).relative_to(ROOT).as_posix(),
               "todo": item.todo, "points": item.points, "hidden": item.hidden} for item in items]
    folders = (layout.public_tests, layout.hidden_tests)
    calls = [json.loads(key) for folder in folders if (folder / "goldens.json").is_file()
             for key in json.loads((folder / "goldens.json").read_text())]
    calls = [call for call in calls if "mistake" not in call]
    with using(layout.assignment.manifest):
        unredrawn = [f"{c['probe']}({c['args']})" for c in calls if redraw(c["probe"], c["args"], "census") == c["args"]]
        known = sorted(mistakes.registry())
    return {"checks": checks, "published": len(calls), "unredrawn": unredrawn, "mistakes": known}


if __name__ == "__main__":
    print(json.dumps(census(Layout(load(sys.argv[1])))))

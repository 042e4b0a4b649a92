"""Saved reference observations: the expected side of every comparison.

A golden file (``goldens.json`` beside the tests that use it) maps a probe
call, written as canonical JSON of its name and arguments, to what the
reference implementation observed. ``kvkit goldens`` rewrites them.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import codec


def key(probe: str, args: dict) -> str:
    """The canonical text of one probe call."""
    return json.dumps({"probe": probe, "args": codec.to_jsonable(args)}, sort_keys=True, separators=(",", ":"))


class GoldenFile:
    """One ``goldens.json``: read on first use; in record mode, rebuilt from what the tests ask for."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._saved: dict | None = None
        self.recorded: dict[str, object] = {}

    def lookup(self, probe: str, args: dict):
        if self._saved is None:
            self._saved = json.loads(self.path.read_text()) if self.path.exists() else {}
        entry = self._saved.get(key(probe, args))
        if entry is None:
            raise LookupError(f"{self.path} has no reference output for {probe}({args}): run `kvkit goldens`")
        return codec.from_jsonable(entry)

    def record(self, probe: str, args: dict, observed) -> None:
        self.recorded[key(probe, args)] = codec.to_jsonable(observed)

    def write(self) -> None:
        self.path.write_text(json.dumps(dict(sorted(self.recorded.items())), indent=0, sort_keys=True) + "\n")

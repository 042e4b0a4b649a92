"""Where the kit's folders are, relative to the repository root."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "reference"
ASSIGNMENTS = ROOT / "assignments"
PUBLIC_TESTS = ROOT / "tests"
HIDDEN_TESTS = ROOT / "autograder" / "hidden"
EXAMPLES = ROOT / "autograder" / "examples"

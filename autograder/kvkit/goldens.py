"""``kvkit goldens``: rewrite the saved reference outputs (``goldens.json``) from ``reference/``.

Run it after changing a check's inputs or the reference; the kit's tests fail
while a golden file is out of date.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .paths import HIDDEN_TESTS, PUBLIC_TESTS, REFERENCE, ROOT


def record(test_dirs: list[Path], rootdir: Path = ROOT, reference: Path = REFERENCE) -> subprocess.CompletedProcess:
    """Run the checks in ``test_dirs`` on the reference, writing each folder's ``goldens.json``."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", *map(str, test_dirs), "--rootdir", str(rootdir), "-p", "kvchecks.plugin",
         "-p", "no:cacheprovider", "-q", "--record-goldens", "--impl", str(reference)],
        cwd=rootdir, capture_output=True, text=True,
    )


def run(args) -> int:
    result = record([PUBLIC_TESTS, HIDDEN_TESTS])
    if result.returncode != 0:
        print(result.stdout[-3000:], result.stderr[-2000:], sep="\n")
        print("kvkit goldens: the reference failed its own checks; goldens not trusted", file=sys.stderr)
        return 1
    print(f"wrote {PUBLIC_TESTS / 'goldens.json'} and {HIDDEN_TESTS / 'goldens.json'}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("goldens", help="instructors: rewrite goldens.json from the reference")
    p.set_defaults(func=run)

"""What runs inside Gradescope: ``run_autograder`` (in the zip ``kvkit gradescope`` builds,
:mod:`kvkit.commands.gradescope`) grades ``/autograder/submission`` with ``python -m kvkit.grading.gradescope run``
and writes ``/autograder/results/results.json``.

``KVKIT_GRADESCOPE_ROOT`` (default ``/autograder``) lets the same script run under a temporary folder, for testing.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from kvchecks.i18n import LANGUAGES, _, speaking

from ..errors import UsageError
from ..paths import Layout


def run_in_gradescope(layout: Layout, root: Path, lang: str = "en") -> int:
    """Grade ``root/submission`` (of ``layout``'s assignment, reporting in ``lang``) and write
    ``root/results/results.json``; always writes a results file."""
    with speaking(lang):
        return _run_in_gradescope(layout, root, lang)


def _run_in_gradescope(layout: Layout, root: Path, lang: str) -> int:
    from .grade import grade  # here: needs torch and pytest

    root = Path(root).resolve()
    results_path = root / "results" / "results.json"
    results_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    import kvkit

    print(f"kvkit from {Path(kvkit.__file__).parent}")
    try:
        if not (root / "submission").is_dir():
            raise UsageError(_("{folder} does not exist: nothing was submitted").format(folder=root / "submission"))
        report = grade(layout, root / "submission", hide=[root], lang=lang)  # kvkit.grading.intake: no link is followed
    except UsageError as err:
        results = {"score": 0, "execution_time": round(time.perf_counter() - started, 2),
                   "output": _("Your submission could not be graded: {reason}").format(reason=err), "tests": []}
        print(results["output"])
    except Exception as err:  # the grader's own failure: say so, and still leave a results file
        results = {"score": 0, "execution_time": round(time.perf_counter() - started, 2),
                   "output": _("The autograder failed ({kind}); please tell the course staff.").format(
                       kind=type(err).__name__),
                   "tests": []}
        _write(results_path, results)
        raise
    else:
        print(report.table())
        results = report.gradescope()
    results["stdout_visibility"] = "hidden"  # run_autograder's own output is for the staff
    _write(results_path, results)
    print(f"wrote {results_path}")
    return 0


def _write(path: Path, results: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    """``python -m kvkit.grading.gradescope run --root /autograder --assignment NAME --lang LANG``: what
    ``run_autograder`` calls."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m kvkit.grading.gradescope")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="grade ROOT/submission into ROOT/results/results.json")
    p.add_argument("--root", default=os.environ.get("KVKIT_GRADESCOPE_ROOT", "/autograder"))
    p.add_argument("--assignment", required=True, metavar="NAME", help="the assignment the zip grades")
    p.add_argument("--lang", choices=LANGUAGES, default="en", help="the language of the feedback")
    args = parser.parse_args(argv)
    return run_in_gradescope(Layout.named(args.assignment), Path(args.root), args.lang)


if __name__ == "__main__":
    sys.exit(main())

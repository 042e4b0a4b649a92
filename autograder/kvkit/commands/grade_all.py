"""``kvkit grade-all``: grade a folder of submissions in parallel, resumably, into one CSV (the engine:
:mod:`kvkit.grading.grade_all`)."""

from __future__ import annotations

from pathlib import Path

from ..grading.grade import PROBE_TIMEOUT
from ..grading.grade_all import grade_all


def run(args) -> int:
    summary = grade_all(args.layout, Path(args.submissions), Path(args.out), jobs=args.jobs,
                        results_dir=Path(args.results_dir) if args.results_dir else None,
                        hidden=not args.public_only, timeout=args.timeout, progress=not args.no_progress,
                        scheduler=args.scheduler, lang=args.lang, connect_timeout=args.connect_timeout)
    print(f"{summary['students']} submissions: {summary['graded']} graded, {summary['skipped']} already graded "
          f"(skipped), {summary['refused']} not gradable, {summary['errors']} grader errors; {summary['jobs']} jobs, "
          f"{summary['seconds']:.1f} s")
    if summary["skipped_entries"]:
        names = ", ".join(summary["skipped_entries"][:10])
        more = len(summary["skipped_entries"]) - 10
        print(f"skipped {len(summary['skipped_entries'])} entries that are no submission (a folder, .zip or .ipynb): "
              f"{names}{f', and {more} more' if more > 0 else ''}")
    print(f"wrote {summary['csv']} and {summary['results_dir']}/<student>/results.json")
    return 0 if not summary["errors"] else 1


def add_parser(sub) -> None:
    p = sub.add_parser("grade-all", help="grade a folder of submissions (one sub-folder, zip or notebook per "
                                         "student) in parallel, resumably, into a CSV")
    p.add_argument("submissions", help="folder holding one sub-folder, .zip or .ipynb per student")
    p.add_argument("--out", required=True, metavar="GRADES_CSV", help="the CSV to write")
    p.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: the number of cores)")
    p.add_argument("--results-dir", metavar="DIR",
                   help="where <student>/results.json go (default: next to the CSV, GRADES-results/)")
    p.add_argument("--public-only", action="store_true", help="run only the public checks")
    p.add_argument("--timeout", type=float, default=PROBE_TIMEOUT,
                   help="seconds each check may run (default %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="grade on the Dask cluster whose scheduler is at ADDRESS (e.g. tcp://10.0.0.5:8786); the "
                        "results folder and the CSV stay here (see docs/grading.md)")
    p.add_argument("--connect-timeout", type=float, default=None, metavar="SECONDS",
                   help="with --scheduler: seconds to reach the scheduler and to wait for its first worker "
                        "(default 30)")
    p.set_defaults(func=run)

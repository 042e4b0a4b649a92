"""``kvkit grade``: run the public and hidden checks on one submission (the grading itself:
:mod:`kvkit.grading.grade`)."""

from __future__ import annotations

from pathlib import Path

from kvchecks.timing import PROBE_TIMEOUT

from ..grading.intake import received


def run(args) -> int:
    given = Path(args.submission)
    with received(args.layout, given) as taken:  # a submission it refuses is one line before torch is imported (2 s)
        from ..grading.grade import grade

        report = grade(args.layout, taken, hidden=not args.public_only, timeout=args.timeout, lang=args.lang,
                       hide=[given])
    print(report.table())
    if args.json:
        report.write_json(Path(args.json))
        print(f"wrote {args.json}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("grade", help="grade one submission (a folder holding the assignment's package) with public "
                                     "and hidden checks")
    p.add_argument("submission", help="folder that holds the student's package (kvcache/ for part 1), a .zip of it, "
                                      "or a notebook")
    p.add_argument("--json", metavar="RESULTS_JSON", help="also write Gradescope's results.json here")
    p.add_argument("--public-only", action="store_true", help="run only the public checks")
    p.add_argument("--timeout", type=float, default=PROBE_TIMEOUT, help="seconds each check may run (default %(default)s)")
    p.set_defaults(func=run)

"""``kvkit autograde COURSE_ASSIGNMENT --jobs N``: real ``nbgrader autograde`` of a class, N at a time, into the one
gradebook, resuming where a stopped run left off (how: :mod:`kvkit.course.autograde_class`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..course.autograde_class import autograde_class
from ..errors import UsageError
from ..registry import ROOT, courses


def run(args) -> int:
    if args.course_assignment not in courses():
        raise UsageError(f"no course assignment called {args.course_assignment!r}; the kit has {', '.join(courses())}")
    course = Path(args.course).resolve()
    if not (course / "nbgrader_config.py").is_file():
        raise UsageError(f"{course} holds no nbgrader_config.py: give the course folder with --course")
    summary = autograde_class(course, args.course_assignment, args.jobs, say=lambda line: print(line, file=sys.stderr))
    print(f"{summary['students']} submissions of {args.course_assignment}: {summary['autograded']} autograded, "
          f"{summary['skipped']} already autograded (skipped); {summary['jobs']} nbgrader processes, "
          f"{summary['seconds']:.1f} s")
    if summary["failed_workers"] or summary["unfinished"]:
        print(f"not finished: {', '.join(summary['unfinished'][:20]) or 'none'} (nbgrader process "
              f"{', '.join(map(str, summary['failed_workers'])) or 'none'} failed: see its lines above); run the same "
              "command again to autograde what is left", file=sys.stderr)
        return 1
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("autograde", help="nbgrader autograde of a whole class with several nbgrader processes into "
                                         "the one gradebook, resumable")
    p.add_argument("course_assignment", metavar="ASSIGNMENT",
                   help="the course assignment (kv_cache, kv_cache_ja, kv_serving, ...)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="nbgrader processes at once (default: the number of cores)")
    p.add_argument("--course", default=str(ROOT), help="the course folder, holding nbgrader_config.py and "
                                                       "submitted/ (default: the kit's own)")
    p.set_defaults(func=run)

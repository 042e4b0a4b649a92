"""``kvkit notebook``: write the nbgrader courses (``source/`` and ``release/``) of an assignment (its English one and
one per edition), check that the committed ones are up to date, or turn a student's notebook into a package.

What the course holds and how it is made: :mod:`kvkit.course`.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..course.checks import collect_checks
from ..course.folders import ensure_kernel, generate_release, stale_paths, write_source
from ..course.submission import notebook_to_package
from ..course.template import notebook_points
from ..courses import courses_of
from ..errors import UsageError


def run(args) -> int:
    layout = args.layout
    if args.check:
        stale = stale_paths(layout, release=not args.no_release)
        if stale:
            raise UsageError(f"the nbgrader course is out of date ({', '.join(stale[:8])}"
                             f"{', ...' if len(stale) > 8 else ''}): run `kvkit notebook`")
        print("source/ and release/ are up to date")
        return 0
    if args.ensure_kernel:
        print(f"Jupyter kernel python3 runs {ensure_kernel()}")
        return 0
    if args.to_package:
        notebook, out = args.to_package
        notebook_to_package(layout, Path(notebook), Path(out))
        print(f"wrote {Path(out) / layout.assignment.package} from {notebook}")
        return 0
    items = collect_checks(layout)
    for course in courses_of(layout):
        nb = write_source(course, items=items)
        print(f"wrote {nb} ({notebook_points(json.loads(nb.read_text())):g} points) and its support files")
        if not args.no_release:
            print(f"wrote {generate_release(course)} with nbgrader generate_assignment")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("notebook", help="generate the nbgrader course (source/ and release/) from reference/ and tests")
    p.add_argument("--check", action="store_true", help="only check that source/ and release/ are up to date")
    p.add_argument("--no-release", action="store_true", help="skip nbgrader generate_assignment (source/ only)")
    p.add_argument("--to-package", nargs=2, metavar=("NOTEBOOK", "OUT"),
                   help="write OUT/<package>/ from a student's notebook (what kvkit grade runs on)")
    p.add_argument("--ensure-kernel", action="store_true",
                   help="register this Python as the python3 Jupyter kernel if Jupyter does not find one")
    p.set_defaults(func=run)

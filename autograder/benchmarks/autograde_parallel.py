"""``nbgrader autograde`` against ``kvkit autograde --jobs N`` on the same class, measured in one run.

    .venv/bin/python autograder/benchmarks/autograde_parallel.py [--n 12] [--jobs 2] [--json out.json]

Makes one scratch course with ``--n`` submitted notebooks (the reference, the untouched release and the partly
correct example, in turn) and a copy of it; autogrades the first with one real ``nbgrader autograde`` and the copy
with ``kvkit autograde --jobs N``; prints both wall times, their ratio, and whether the two gradebooks hold the
same score for every graded cell of every student; and what ``--jobs`` busy processes get of this machine's cores
(:mod:`cores`), the most the speed-up can reach here.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cores import parallel_ceiling
from kvkit.course.folders import NBGRADER_CONFIG, ensure_kernel, nbgrader_command, nbgrader_env, scratch_course
from kvkit.courses import english
from kvkit.examples import example_texts
from kvkit.paths import Layout
from kvkit.registry import ROOT

KINDS = ("reference", "untouched", "partial")
PART1 = Layout.named("kv_cache")
COURSE = english(PART1)  # nbgrader's assignment kv_cache


def gradebook(course: Path, students: list[str]) -> dict[str, dict[str, float]]:
    from nbgrader.api import Gradebook

    course_id = re.search(r'course_id = "([^"]+)"', NBGRADER_CONFIG.read_text()).group(1)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id) as gb:
        return {s: {g.name: g.score for g in gb.find_submission_notebook(Path(COURSE.notebook_name).stem, COURSE.name,
                                                                         s).grades} for s in students}


def timed(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=nbgrader_env())
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[2:5])} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=12, help="notebooks in the class (default %(default)s)")
    parser.add_argument("--jobs", type=int, default=2, help="kvkit autograde's nbgrader processes (default 2)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    ensure_kernel()
    partial = example_texts(PART1, "partial")
    bodies = {"reference": {}, "untouched": None, "partial": partial}
    students = {f"s{i:02d}_{KINDS[i % 3]}": bodies[KINDS[i % 3]] for i in range(args.n)}
    with tempfile.TemporaryDirectory(prefix="kvkit-bench-autograde-") as tmp:
        serial, parallel = Path(tmp) / "serial", Path(tmp) / "parallel"
        scratch_course(COURSE, serial, students)
        shutil.copytree(serial, parallel)
        one = timed([*nbgrader_command(), "autograde", COURSE.name, "--force"], serial)
        many = timed([sys.executable, "-m", "kvkit.cli", "autograde", COURSE.name, "--jobs", str(args.jobs),
                      "--course", str(parallel)], ROOT)
        same = gradebook(serial, list(students)) == gradebook(parallel, list(students))
    ceiling = parallel_ceiling(args.jobs)
    figures = {"notebooks": args.n, "jobs": args.jobs, "nbgrader_autograde_s": round(one, 1),
               "kvkit_autograde_s": round(many, 1), "speedup": round(one / many, 2),
               "parallel_ceiling": round(ceiling, 2), "same_gradebook": same}
    print(f"{args.n} notebooks of {COURSE.name}: nbgrader autograde {one:.1f} s ({one / args.n:.2f} s each); "
          f"kvkit autograde --jobs {args.jobs} {many:.1f} s ({many / args.n:.2f} s each); {one / many:.2f}x "
          f"({args.jobs} busy processes get {ceiling:.2f}x of one here); "
          f"the same gradebook scores: {same}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Batch grading, serial against parallel, measured in one run.

    .venv/bin/python autograder/benchmarks/batch_speedup.py [--n 40] [--jobs N] [--json out.json]

Builds ``--n`` submissions (a mix of full marks, partly correct, alternative,
seed-bug and untouched-skeleton ones), grades them all with
``kvkit grade-all --jobs 1`` and then with ``--jobs N`` (default: the number
of cores), each into a fresh results folder, and prints both wall times, their
ratio, and each run's wall time per submission against a cold ``kvkit grade
reference`` (a fresh process, torch's import included: the median of one
before, one between and one after the two runs, so a machine whose load
changes weighs on both sides). Both runs must give the same grades. It also prints what two busy processes get of
this machine's cores (:mod:`cores`), the most a ``--jobs 2`` speed-up can reach here.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cores import parallel_ceiling
from kvkit.examples import write_example, write_package
from kvkit.grading.grade_all import grade_all
from kvkit.paths import Layout
from kvkit.registry import ROOT

PART1 = Layout.named("kv_cache")  # its examples: partial, alternative, seed-bugs

KINDS = ["reference", "partial", "skeleton", "alternative", "seed-bugs"]


def make_submissions(folder: Path, n: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        target = folder / f"student{i:03d}"
        if kind == "reference":
            write_package(PART1, target, {})
        elif kind == "skeleton":
            shutil.copytree(PART1.skeleton / "kvcache", target / "kvcache", ignore=shutil.ignore_patterns("__pycache__"))
        else:
            write_example(PART1, kind, target)
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def cold_grade() -> float:
    """Wall seconds of one ``kvkit grade reference`` in a fresh process."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kvkit.cli", "grade", str(ROOT / "reference")], cwd=ROOT, check=True,
                   capture_output=True)
    return time.perf_counter() - started


def grades(csv_path: Path) -> dict[str, str]:
    with open(csv_path, newline="") as f:
        return {row["student"]: row["score"] for row in csv.DictReader(f)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="number of submissions (default %(default)s)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="parallel jobs (default: the cores)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kvkit-bench-batch-") as tmp:
        tmp = Path(tmp)
        counts = make_submissions(tmp / "submissions", args.n)
        colds = [cold_grade()]
        runs = {}
        for jobs in (1, args.jobs):
            if runs:
                colds.append(cold_grade())
            started = time.perf_counter()
            summary = grade_all(PART1, tmp / "submissions", tmp / f"jobs{jobs}.csv", jobs=jobs, progress=False)
            runs[jobs] = time.perf_counter() - started
            assert summary["graded"] == args.n and summary["errors"] == 0, summary
        colds.append(cold_grade())
        cold = sorted(colds)[1]
        ceiling = parallel_ceiling(args.jobs)
        same = grades(tmp / "jobs1.csv") == grades(tmp / f"jobs{args.jobs}.csv")
    figures = {"submissions": args.n, "mix": counts, "cores": os.cpu_count(), "jobs": args.jobs,
               "serial_s": round(runs[1], 1), "parallel_s": round(runs[args.jobs], 1),
               "speedup": round(runs[1] / runs[args.jobs], 2), "parallel_ceiling": round(ceiling, 2), "same_grades": same,
               "cold_grade_s": round(cold, 2),
               "cold_grades_s": [round(c, 2) for c in colds],
               "of_cold_grade": {jobs: round(wall / args.n / cold, 3) for jobs, wall in runs.items()}}
    print(f"{args.n} submissions ({', '.join(f'{v} {k}' for k, v in counts.items())}) on {os.cpu_count()} cores; "
          f"a cold `kvkit grade reference`: {cold:.2f} s (median of {', '.join(f'{c:.2f}' for c in colds)})")
    for jobs, label in ((1, "serial   (--jobs 1)"), (args.jobs, f"parallel (--jobs {args.jobs})")):
        per = runs[jobs] / args.n
        print(f"{label}: {runs[jobs]:6.1f} s  ({per:.2f} s per submission, 1/{cold / per:.1f} of a cold grade)")
    print(f"speed-up: {figures['speedup']:.2f}x ({args.jobs} busy processes get {ceiling:.2f}x of one here); same grades in "
          f"both runs: {same}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())

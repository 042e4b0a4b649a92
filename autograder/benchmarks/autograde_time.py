"""Wall time of real ``nbgrader autograde`` per notebook, for one or more checkouts of the kit, in one run.

    .venv/bin/python autograder/benchmarks/autograde_time.py [--kit DIR ...] [--rounds N]

For each kit (default: this checkout), a scratch course is made from the kit's own ``source/`` and
``nbgrader_config.py`` with three submissions (the reference filled into the release, the untouched release and
a partly correct one), and ``nbgrader autograde`` runs with the kit's own virtual environment. The kits take turns,
``--rounds`` times; the figure is the median wall time per notebook, nbgrader's start included. Give the other
checkout's folder (e.g. a worktree of an older commit, with its ``.venv`` made by ``make setup``) to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[2]
STUDENTS = ("reference", "untouched", "partial")
FILL = """
import shutil, sys
from kvkit.course.submission import fill_notebook
from kvkit.examples import example_texts
try:  # the assignment is a value the kit's functions take
    from kvkit.paths import Layout
    layout = (Layout.named("kv_cache"),)
except (ImportError, AttributeError):  # a checkout from before (commit 7355981): the assignment of the process
    layout = ()
release, out = sys.argv[1], sys.argv[2]
fill_notebook(*layout, release, out + "/reference/kv_cache/kv_cache.ipynb", {})
shutil.copyfile(release, out + "/untouched/kv_cache/kv_cache.ipynb")
fill_notebook(*layout, release, out + "/partial/kv_cache/kv_cache.ipynb", example_texts(*layout, "partial"))
"""
SUPPORT = """
import sys
from pathlib import Path
from kvkit.course.folders import write_support
try:  # the assignment is a value the kit's functions take
    from kvkit.paths import Layout
    layout = (Layout.named("kv_cache"),)
except (ImportError, AttributeError):  # a checkout from before (commit 7355981): the assignment of the process
    layout = ()
write_support(*layout, Path(sys.argv[1]))
"""


def run(kit: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    python = kit / ".venv" / "bin" / "python"
    env = {**os.environ, "PATH": f"{python.parent}:{os.environ.get('PATH', '')}"}
    env.pop("PYTHONPATH", None)
    done = subprocess.run([str(python), *args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{kit}: {' '.join(args[:3])} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done


def prepare(kit: Path, scratch: Path) -> Path:
    course = scratch / kit.name
    shutil.copytree(kit / "source" / "kv_cache", course / "source" / "kv_cache")
    if not (course / "source" / "kv_cache" / "kvchecks").is_dir():  # kits that commit only the notebook
        run(kit, ["-c", SUPPORT, str(course / "source" / "kv_cache")], course)
    shutil.copyfile(kit / "nbgrader_config.py", course / "nbgrader_config.py")
    run(kit, ["-m", "nbgrader", "generate_assignment", "kv_cache", "--force"], course)
    for student in STUDENTS:
        (course / "submitted" / student / "kv_cache").mkdir(parents=True)
    run(kit, ["-c", FILL, str(course / "release" / "kv_cache" / "kv_cache.ipynb"), str(course / "submitted")], course)
    return course


def autograde_seconds(kit: Path, course: Path) -> float:
    started = time.perf_counter()
    run(kit, ["-m", "nbgrader", "autograde", "kv_cache", "--force"], course)
    return (time.perf_counter() - started) / len(STUDENTS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kit", action="append", type=Path, help="a checkout of the kit (default: this one)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    kits = [k.resolve() for k in (args.kit or [HERE])]
    with tempfile.TemporaryDirectory(prefix="kvkit-autograde-time-") as tmp:
        courses = {kit: prepare(kit, Path(tmp) / str(i)) for i, kit in enumerate(kits)}
        times: dict[Path, list[float]] = {kit: [] for kit in kits}
        for _ in range(args.rounds):
            for kit in kits:
                times[kit].append(autograde_seconds(kit, courses[kit]))
    summary = {str(kit): {"per_notebook_s": [round(t, 2) for t in times[kit]],
                          "median_s": round(statistics.median(times[kit]), 2)} for kit in kits}
    for kit in kits:
        print(f"{kit}: nbgrader autograde {summary[str(kit)]['median_s']:.2f} s per notebook (median of "
              f"{args.rounds}; rounds {summary[str(kit)]['per_notebook_s']})")
    if len(kits) == 2:
        ratio = statistics.median(times[kits[0]]) / statistics.median(times[kits[1]])
        print(f"ratio {kits[0].name} / {kits[1].name}: {ratio:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()

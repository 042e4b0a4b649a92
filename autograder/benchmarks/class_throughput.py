"""A class graded with 1 and 2 local jobs and on a loopback Dask cluster, measured in one run.

    .venv/bin/python autograder/benchmarks/class_throughput.py [--n 40] [--workers 2] [--no-dask] [--json out.json]

Builds a synthetic class of ``--n`` submissions (reference, skeleton, partial, hanging and hostile ones, in turn),
times one cold ``kvkit grade reference`` (a fresh process, torch's import included), then grades the class with
``kvkit grade-all --jobs 1``, ``--jobs 2`` and ``--scheduler`` on a Dask scheduler and ``--workers`` workers
started here on 127.0.0.1 (one thread each). For each run it prints the wall time, submissions per minute, the
wall time per submission against the cold grade, and CPU seconds per submission (this process's children, the
Dask workers' process trees included). Every run must give the same grades.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kvkit.examples import write_example, write_package
from kvkit.paths import Layout
from kvkit.registry import ROOT

KINDS = ["reference", "skeleton", "partial", "hanging", "hostile"]
HANG = "while True:\n    pass\n"
PART1 = Layout.named("kv_cache")
ASSIGNMENT, TODOS = PART1.assignment, PART1.assignment.todos
KVKIT = [sys.executable, "-m", "kvkit.cli", "--assignment", ASSIGNMENT.name]
DASK = Path(sys.executable).parent / "dask"


def make_class(folder: Path, n: int) -> dict[str, int]:
    """``n`` submissions, the kinds in turn; a hostile one is a package folder that links to the reference."""
    counts: dict[str, int] = {}
    last = TODOS[max(TODOS)].function  # the generator: a loop there hangs only its own checks
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        target = folder / f"student{i:03d}"
        if kind == "reference":
            write_package(PART1, target, {})
        elif kind == "skeleton":
            write_package(PART1, target, {t.function: "stub" for t in TODOS.values()})
        elif kind == "partial":
            write_example(PART1, "partial", target)
        elif kind == "hanging":
            write_package(PART1, target, {last: HANG})
        else:
            target.mkdir(parents=True)
            (target / ASSIGNMENT.package).symlink_to(ROOT / "reference" / ASSIGNMENT.package)
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def tree_cpu(pids: list[int]) -> float:
    """CPU seconds of the live processes ``pids`` and their descendants (the Dask workers)."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for process in [root, *root.children(recursive=True)]:
                times = process.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
        except psutil.NoSuchProcess:
            continue
    return total


def grades(path: Path) -> dict[str, tuple[str, str]]:
    with open(path, newline="") as f:
        return {row["student"]: (row["score"], row["status"]) for row in csv.DictReader(f)}


def timed(argv: list[str], extra_cpu=lambda: 0.0) -> tuple[float, float]:
    """Wall and CPU seconds of one command (its children and ``extra_cpu``'s processes included)."""
    cpu, extra, started = children_cpu(), extra_cpu(), time.perf_counter()
    run = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(argv[3:6])} failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    return wall, children_cpu() - cpu + extra_cpu() - extra


def start_cluster(tmp: Path, workers: int) -> tuple[str, list[subprocess.Popen]]:
    file = tmp / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": ROOT}
    processes = [subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                   "--scheduler-file", str(file)], **quiet)]
    while not (file.is_file() and file.stat().st_size):
        time.sleep(0.2)
    address = json.loads(file.read_text())["address"]
    for i in range(workers):
        processes.append(subprocess.Popen([str(DASK), "worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                                           "--no-dashboard", "--name", f"w{i}"], **quiet))
    from distributed import Client

    with Client(address, timeout=60) as client:
        client.wait_for_workers(workers, timeout=120)
    return address, processes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="submissions in the class (default %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="Dask workers on this machine (default %(default)s)")
    parser.add_argument("--no-dask", action="store_true", help="only the local runs")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kvkit-bench-class-") as tmp:
        tmp = Path(tmp)
        counts = make_class(tmp / "class", args.n)
        cold, _cpu = timed([*KVKIT, "grade", str(ROOT / "reference")])
        runs, csvs = {}, {}
        for jobs in (1, 2):
            csvs[f"{jobs} local jobs"] = tmp / f"jobs{jobs}.csv"
            runs[f"{jobs} local jobs"] = timed([*KVKIT, "grade-all", str(tmp / "class"), "--out",
                                                str(csvs[f"{jobs} local jobs"]), "--jobs", str(jobs), "--no-progress"])
        if not args.no_dask:
            address, processes = start_cluster(tmp, args.workers)
            try:
                name = f"Dask, {args.workers} workers"
                csvs[name] = tmp / "dask.csv"
                runs[name] = timed([*KVKIT, "grade-all", str(tmp / "class"), "--out", str(csvs[name]),
                                    "--scheduler", address, "--no-progress"],
                                   extra_cpu=lambda: tree_cpu([p.pid for p in processes[1:]]))
            finally:
                for process in processes:
                    process.terminate()
                for process in processes:
                    process.wait(timeout=60)
        first = grades(next(iter(csvs.values())))
        same = all(grades(path) == first for path in csvs.values())
    print(f"{args.n} submissions ({', '.join(f'{v} {k}' for k, v in counts.items())}), {ASSIGNMENT.name}, "
          f"{os.cpu_count()} cores; one cold `kvkit grade reference`: {cold:.2f} s")
    figures = {"assignment": ASSIGNMENT.name, "submissions": args.n, "mix": counts, "cores": os.cpu_count(),
               "cold_grade_s": round(cold, 2), "same_grades": same, "runs": {}}
    for name, (wall, cpu) in runs.items():
        per = wall / args.n
        figures["runs"][name] = {"wall_s": round(wall, 1), "per_minute": round(60 / per, 1),
                                 "wall_per_submission_s": round(per, 3), "of_cold_grade": round(per / cold, 3),
                                 "cpu_per_submission_s": round(cpu / args.n, 2)}
        print(f"{name:>18}: {wall:6.1f} s wall, {60 / per:6.1f} submissions/min, {per:.2f} s each "
              f"(1/{cold / per:.1f} of a cold grade), {cpu / args.n:.2f} CPU s each")
    print(f"same grades in every run: {same}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())

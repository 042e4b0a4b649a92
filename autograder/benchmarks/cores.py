"""What this machine's cores give two busy processes, measured beside the benchmarks that compare N jobs with one.

    .venv/bin/python autograder/benchmarks/cores.py

A two-core virtual machine need not run two busy processes twice as fast as one (its cores may be one physical
core's two threads, or shared with other machines): :func:`parallel_ceiling` times the same pure-Python loop alone,
then in ``jobs`` processes at once, and returns the throughput ratio, about the most a ``--jobs`` speed-up can reach here.
"""

from __future__ import annotations

import multiprocessing
import time

LOOP = 15_000_000


def busy(n: int = LOOP) -> float:
    """Seconds to run a pure-Python loop of ``n`` steps."""
    started, total = time.perf_counter(), 0
    for i in range(n):
        total += i * i
    return time.perf_counter() - started


def parallel_ceiling(jobs: int = 2, rounds: int = 3) -> float:
    """The throughput of ``jobs`` busy processes against one: the fastest of ``rounds`` runs alone against the fastest
    of ``rounds`` runs of ``jobs`` at once (1.0 to ``jobs``)."""
    alone, together = [], []
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        for _ in range(rounds):
            alone.append(pool.apply(busy))
            started = time.perf_counter()
            pool.map(busy, [LOOP] * jobs)
            together.append(time.perf_counter() - started)
    return min(float(jobs), jobs * min(alone) / min(together))


if __name__ == "__main__":
    for jobs in (2,):
        print(f"{jobs} busy processes run {parallel_ceiling(jobs):.2f}x as much work as one in the same time")

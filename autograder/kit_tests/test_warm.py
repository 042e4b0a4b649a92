"""Warm grading (:mod:`kvkit.grading.remote.warm`): children forked by a worker's zygote, and a draw of fresh inputs
shared by the worker's gradings, give the grades of cold grading, and a child can reach neither the zygote nor the
next child; so for the notebooks' kernels forked by the kernel zygote; a zygote serves the processes forked from its
starter (``kvkit autograde --jobs``'s workers), and only its starter ends it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hostile_support import make_submission
from kernel_support import kernel_run
from kvkit.examples import write_example, write_package
from kvkit.grading.grade import grade
from kvkit.grading.remote.warm import SHARED_DRAW_MODES, WARM_MODES, Warm
from kvkit.grading.sandbox import Sandbox, isolation_mode
from layouts_support import PART1

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(isolation_mode() not in WARM_MODES,
                                 reason=f"children start cold in {isolation_mode()} mode")]
MARK = f"kvkit-warm-{os.getpid()}"


@pytest.fixture
def warm():
    worker = Warm()
    yield worker
    worker.close()


def verdicts(report) -> dict[str, bool]:
    return {r.name: r.passed for r in report.results}


def printed(report, word: str) -> list:
    """The list the submission printed after ``word`` (quoted in the report's notes)."""
    found = re.search(rf"{word} (\[.*?\])\s*$", "\n".join(report.notes), re.MULTILINE)
    assert found, report.notes
    return eval(found.group(1))  # noqa: S307 (the test's own submission printed a Python list of strings)


def test_a_class_graded_warm_gets_the_verdicts_of_cold_grading(tmp_path, warm):
    folders = {"reference": write_package(PART1, tmp_path / "reference", {}),
               "skeleton": write_package(PART1, tmp_path / "skeleton",
                                         {t.function: "stub" for t in PART1.assignment.todos.values()}),
               "partial": write_example(PART1, "partial", tmp_path / "partial"),
               "exits": make_submission(PART1, tmp_path / "exits", {3: "todo3_sys_exit"})}
    for name, folder in folders.items():
        cold, hot = grade(PART1, Path(folder)), grade(PART1, Path(folder), warm=warm)
        assert verdicts(hot) == verdicts(cold), name
        assert hot.score == cold.score, name
    zygote = warm.zygotes[PART1.assignment.name, "probe"]
    assert zygote.alive()


def test_a_child_leaves_nothing_for_the_next_one(tmp_path, warm):
    leaves = make_submission(PART1, tmp_path / "leaves", at_import=["import_leaves_traces"], __KVKIT_MARK__=MARK)
    finds = make_submission(PART1, tmp_path / "finds", at_import=["import_finds_traces"], __KVKIT_MARK__=MARK)
    first = grade(PART1, leaves, warm=warm)
    left = printed(first, "LEFT")
    assert "/tmp" in left and "shm" in left  # it could write: its own scratch, its own IPC namespace
    assert first.score == first.max_score
    second = grade(PART1, finds, warm=warm)
    assert printed(second, "TRACES FOUND") == []
    assert second.score == second.max_score


def test_a_child_cannot_signal_or_write_into_the_zygote(tmp_path, warm):
    attacks = make_submission(PART1, tmp_path / "attacks", at_import=["import_attacks_parent"])
    zygote = warm.zygote(PART1)
    before = zygote.proc.pid
    report = grade(PART1, attacks, warm=warm)
    assert report.score == report.max_score
    assert ("mem", before) not in printed(report, "ATTACKED")
    assert warm.zygote(PART1).proc.pid == before and zygote.alive()  # not started again: never touched
    after = grade(PART1, write_package(PART1, tmp_path / "next", {}), warm=warm)
    assert after.score == after.max_score


def test_the_worker_shares_a_draw_only_where_no_child_can_reach_the_next(warm):
    first, second = warm.fresh_inputs(PART1), warm.fresh_inputs(PART1)
    assert (first is second) == (warm.mode in SHARED_DRAW_MODES)


def test_a_zygote_that_died_is_started_again(tmp_path, warm):
    zygote = warm.zygote(PART1)
    os.kill(zygote.proc.pid, signal.SIGKILL)
    zygote.proc.wait()
    report = grade(PART1, write_package(PART1, tmp_path / "reference", {}), warm=warm)
    assert report.score == report.max_score
    assert warm.zygote(PART1) is not zygote


def kernel_prints(warm: Warm, code: str) -> str:
    with Sandbox({}, shared=("ipc",)) as box:
        return asyncio.run(kernel_run(box, warm.zygote(PART1, "kernel"), code))


def test_a_notebooks_kernel_leaves_nothing_for_the_next_one_and_cannot_reach_the_zygote(warm):
    pytest.importorskip("ipykernel")
    zygote = warm.zygote(PART1, "kernel")
    first = kernel_prints(warm, (
        "import os, sys, torch\n"
        f"print('WARM', 'ipykernel' in sys.modules and hasattr(torch, 'tensor'), os.getpid() != {zygote.proc.pid})\n"
        "import matplotlib\ntorch.kvkit_mark = matplotlib.kvkit_mark = 1\nos.environ['KVKIT_MARK'] = '1'\n"
        "open('/tmp/kvkit-kernel-mark', 'w').write('x')\nopen('/dev/shm/kvkit-kernel-mark', 'w').write('x')\n"
        "try:\n"
        f"    os.kill({zygote.proc.pid}, 9)\n"
        "    print('KILLED')\n"
        "except OSError as err:\n"
        "    print('NOT KILLED', type(err).__name__)\n"))
    assert "WARM True True" in first and "NOT KILLED" in first, first
    second = kernel_prints(warm, (
        "import os, sys\nprint('ALREADY', 'torch' in sys.modules, 'matplotlib' in sys.modules)\nimport torch\n"
        "import matplotlib\nprint('PLOTS', matplotlib.get_backend())\n"
        "print('LEFT', hasattr(torch, 'kvkit_mark') or hasattr(matplotlib, 'kvkit_mark'), 'KVKIT_MARK' in os.environ, "
        "os.path.exists('/tmp/kvkit-kernel-mark'), os.path.exists('/dev/shm/kvkit-kernel-mark'))\n"))
    assert "ALREADY True True" in second and "LEFT False False False False" in second, second
    assert "PLOTS module://matplotlib_inline.backend_inline" in second, second  # shown in the notebook, as cold
    assert warm.zygote(PART1, "kernel") is zygote and zygote.alive()


def test_a_zygote_serves_the_processes_forked_from_its_starter_and_only_the_starter_ends_it(warm):
    zygote = warm.zygote(PART1)
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # a worker forked from the starter (kvkit autograde --jobs)
        code = 1
        try:
            shared = warm.zygote(PART1) is zygote and zygote.alive()
            os.read(go_r, 1)  # the starter has ended it now
            code = 0 if shared and not zygote.alive() else 3
            warm.close()  # lets go of it only
        finally:
            os._exit(code)
    worker = os.fork()
    if worker == 0:
        code = 1
        try:
            warm.close()  # a worker that ends first ends nothing of the starter's
            code = 0
        finally:
            os._exit(code)
    assert os.waitstatus_to_exitcode(os.waitpid(worker, 0)[1]) == 0
    assert zygote.alive() and warm.zygote(PART1) is zygote
    zygote.close()
    os.write(go_w, b"x")
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0, "the forked worker saw it alive after its end"


def test_zygotes_launched_together_serve_the_workers_forked_after_the_warm_up(tmp_path):
    """``kvkit autograde --jobs``'s start: both zygotes launched at once from the main thread (a zygote dies with the
    thread that started it), ready after :func:`warm_up`, and alive in a worker forked then."""
    code = ("import os, sys\n"
            "from kvkit.course.autograde_class import ZYGOTES, warm_up\n"
            "from kvkit.grading.remote.warm import worker_warm\n"
            "warm_up('kv_cache')\n"
            "zygotes = worker_warm().zygotes\n"
            "print('KINDS', sorted(kind for _name, kind in zygotes) == sorted(ZYGOTES))\n"
            "print('READY', all(z.ready and z.alive() for z in zygotes.values()), flush=True)\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    print('WORKER', all(z.alive() for z in zygotes.values()), flush=True)\n"
            "    os._exit(0)\n"
            "os.waitpid(pid, 0)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert "KINDS True" in run.stdout and "READY True" in run.stdout and "WORKER True" in run.stdout, (
        run.stdout + run.stderr[-2000:])

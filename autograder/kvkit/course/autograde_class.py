"""Real ``nbgrader autograde`` of a class, N at a time, into the one gradebook, resuming where a stopped run left
off: what ``kvkit autograde COURSE_ASSIGNMENT --jobs N`` runs (:mod:`kvkit.commands.autograde_class`).

nbgrader autogrades one submission after another (its issue #174). This
command splits the submissions that still need autograding among ``--jobs``
``nbgrader autograde`` processes of the course (each excludes the others'
students), which run the kit's own pipeline (``nbgrader_config.py``) unchanged
and write into the same SQLite gradebook, opened with a long busy timeout so
their short writes take turns. Each is a fork of this process, which has
imported nbgrader and the kit's hooks (torch) and started the zygotes of the
notebooks' kernels and grading children once (:func:`warm_up`), so a worker
starts grading at once and the workers share the zygotes. A submission counts as finished when its
autograded notebooks exist, made read-only by nbgrader's last step, and
every graded cell of them has an automatic score in the gradebook; anything else (never autograded, or stopped half-way,
which nbgrader itself would skip as "existing") is autograded again with
``--force``.
"""

from __future__ import annotations

import os
import re
import signal
import stat
import sys
import threading
import time
import traceback
from pathlib import Path

from ..courses import course_named
from ..errors import GraderError, UsageError
from ..stopping import follow_parent, main_thread_only, received

BUSY_TIMEOUT = 600  # seconds a worker waits for the gradebook while another one writes
ZYGOTES = ("probe", "kernel")  # the zygotes the workers share: grading children's and notebooks' kernels'


def course_settings(course: Path) -> tuple[str, str]:
    """The course's ``(db_url, course_id)`` as its ``nbgrader_config.py`` sets them (defaults: nbgrader's)."""
    config = course / "nbgrader_config.py"
    text = config.read_text() if config.is_file() else ""
    course_id = re.search(r"CourseDirectory\.course_id\s*=\s*['\"]([^'\"]+)['\"]", text)
    return f"sqlite:///{course / 'gradebook.db'}", course_id.group(1) if course_id else "default_course"


def submitted_students(course: Path, assignment: str) -> list[str]:
    """Every student with a submitted folder of ``assignment`` (links are not followed: nbgrader's intake refuses
    them, and here they are not a student's folder)."""
    submitted = course / "submitted"
    if not submitted.is_dir():
        raise UsageError(f"{submitted} does not exist: collect the submissions first (nbgrader collect, or copy "
                         "them to submitted/STUDENT/ASSIGNMENT/)")
    students = []
    for name in sorted(os.listdir(submitted)):
        folder = submitted / name / assignment
        try:
            if stat.S_ISDIR(os.lstat(submitted / name).st_mode) and stat.S_ISDIR(os.lstat(folder).st_mode):
                students.append(name)
        except OSError:
            continue
    return students


def finished_students(course: Path, assignment: str, students: list[str]) -> set[str]:
    """The students whose submission of ``assignment`` is fully autograded (notebooks written, every graded cell
    scored)."""
    from nbgrader.api import Gradebook, MissingEntry

    from .gradebook import install_schema_head

    install_schema_head()
    db_url, course_id = course_settings(course)
    done = set()
    with Gradebook(db_url, course_id) as gb:  # also creates the gradebook's tables before the workers start
        try:
            notebooks = [nb.name for nb in gb.find_assignment(assignment).notebooks]
        except MissingEntry:
            raise UsageError(f"the gradebook has no assignment {assignment!r}: run `nbgrader generate_assignment "
                             f"{assignment}` first")
        for student in students:
            try:
                submitted = [gb.find_submission_notebook(nb, assignment, student) for nb in notebooks]
            except MissingEntry:
                continue
            written = all(_finished_file(course / "autograded" / student / assignment / f"{nb}.ipynb")
                          for nb in notebooks)
            if written and all(g.auto_score is not None for nb in submitted for g in nb.grades):
                done.add(student)
    return done


def _finished_file(path: Path) -> bool:
    """An autograded notebook that nbgrader finished: its last step makes the files read-only
    (``Autograde.permissions``, 444); a run stopped before that leaves a file that is still writable, or none."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and not info.st_mode & 0o222


def split(students: list[str], jobs: int) -> list[list[str]]:
    """Round-robin shares of ``students`` for ``jobs`` workers (empty shares dropped)."""
    return [share for share in (students[i::jobs] for i in range(jobs)) if share]


def worker_argv(assignment: str, mine: list[str], everyone: list[str], db_url: str) -> list[str]:
    """The ``nbgrader`` arguments of the worker that autogrades ``mine`` of ``everyone``."""
    others = [s for s in everyone if s not in set(mine)]
    argv = ["autograde", assignment, "--force", f"--CourseDirectory.db_url={db_url}?timeout={BUSY_TIMEOUT}"]
    if others:
        argv.append(f"--CourseDirectory.student_id_exclude={','.join(others)}")
    return argv


def launch_zygotes(assignment: str) -> None:
    """Start the zygotes of ``assignment``'s kernels and grading children, without waiting for them (:func:`warm_up`
    does); from this process's main thread, which their lives follow (:meth:`kvkit.grading.remote.zygote.Zygote.spawn`)."""
    from ..grading.remote.warm import worker_warm

    layout = course_named(assignment).layout
    for kind in ZYGOTES:
        worker_warm().launch(layout, kind)


def warm_up(assignment: str) -> None:
    """While the zygotes (:func:`launch_zygotes`) import torch, import what every worker needs (nbgrader, the kit's
    hooks, torch), once, then wait for them: all before the workers are forked (a zygote that does not start is
    started by each worker, which says why)."""
    from ..grading.remote.warm import worker_warm

    launch_zygotes(assignment)
    from nbgrader.apps.nbgraderapp import NbGraderApp  # noqa: F401

    from ..grading.grade import grade  # noqa: F401
    from . import autograde  # noqa: F401

    layout = course_named(assignment).layout
    for kind in ZYGOTES:
        try:
            worker_warm().zygote(layout, kind)
        except GraderError:
            pass


class Worker:
    """``nbgrader ARGV`` in a fork of this process, in ``cwd`` with ``env``; its stdout and stderr on ``stdout`` (a
    pipe): what ``python -m nbgrader ARGV`` does, without its start-up."""

    def __init__(self, argv: list[str], cwd: Path, env: dict) -> None:
        read, write = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(read)
            self._run(argv, cwd, env, write, parent)
        os.close(write)
        self.stdout = os.fdopen(read, "r", errors="replace")
        self.returncode: int | None = None

    @staticmethod
    def _run(argv: list[str], cwd: Path, env: dict, output: int, parent: int) -> None:
        """The worker: nbgrader's app with ``argv``; never returns. It stops with ``parent``, the command
        (:mod:`kvkit.stopping`)."""
        code = 1
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: the command stops its workers
            follow_parent(parent)
            os.dup2(output, 1)
            os.dup2(output, 2)
            os.close(output)
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(env)
            sys.argv = ["nbgrader", *argv]
            from nbgrader.apps.nbgraderapp import NbGraderApp

            NbGraderApp.launch_instance(argv=argv)
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else int(done.code is not None)
        except KeyboardInterrupt:  # stopped (nbgrader has removed the submission it had begun)
            code = 128 + (received() or signal.SIGTERM)
        except BaseException:  # noqa: BLE001 (the worker's own end: reported on its output)
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)

    def stop(self) -> None:
        """Ask the worker to stop (SIGTERM: nbgrader stops the notebook it autogrades) and wait for it; a worker already
        waited for is not signalled (its pid may be another process's by now)."""
        if self.returncode is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        self.wait()

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode


def autograde_class(course: Path, assignment: str, jobs: int, say=print) -> dict:
    """Autograde every unfinished submission of ``assignment`` in ``course`` with ``jobs`` nbgrader processes."""
    started = time.perf_counter()
    students = submitted_students(course, assignment)
    if students:
        launch_zygotes(assignment)  # they import torch while this process reads the gradebook
    done = finished_students(course, assignment, students)
    todo = [s for s in students if s not in done]
    shares = split(todo, max(1, jobs))
    db_url, _course_id = course_settings(course)
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    if shares:
        warm_up(assignment)
    workers = [Worker(worker_argv(assignment, share, students, db_url), course, env) for share in shares]
    relays = [threading.Thread(target=_relay, args=(w, f"[{i + 1}] ", say), daemon=True)
              for i, w in enumerate(workers)]
    for relay in relays:
        relay.start()
    try:
        codes = [w.wait() for w in workers]
    except KeyboardInterrupt as err:  # Ctrl-C or a stop signal (kvkit.stopping): the workers stop too
        for worker in workers:
            worker.stop()
        err.add_note("the notebooks autograded so far are in the gradebook; the same command autogrades the rest")
        raise
    for relay in relays:
        relay.join()
    failed = [i + 1 for i, code in enumerate(codes) if code != 0]
    finished = finished_students(course, assignment, students)
    unfinished = [s for s in students if s not in finished]
    return {"students": len(students), "autograded": len(todo) - len([s for s in todo if s in unfinished]),
            "skipped": len(done), "unfinished": unfinished, "failed_workers": failed, "jobs": len(shares),
            "seconds": time.perf_counter() - started}


def _relay(process: Worker, prefix: str, say) -> None:
    """Each line a worker prints, prefixed with its number (nbgrader's log, already quoted by the kit where it
    carries a kernel's output)."""
    main_thread_only()
    for line in process.stdout:
        say(prefix + line.rstrip("\n")[:2000])

"""Grade a folder of submissions in parallel, resumably, into one CSV: the engine of ``kvkit grade-all``
(:mod:`kvkit.commands.grade_all`).

``SUBMISSIONS_DIR`` holds one entry per student: a folder, a ``.zip`` or a
notebook (anything ``kvkit grade`` accepts); the entry's name (without
``.zip``/``.ipynb``) is the student's name. Each submission is graded by a
worker process (``--jobs`` of them) that runs the checks exactly as ``kvkit
grade`` does: the worker never imports student code, which runs in that
grading's own confined child.

For each student the results folder gets ``<student>/results.json``
(Gradescope's format) and ``<student>/meta.json`` (score per TODO, status,
and a fingerprint of the checks and of the submission as :mod:`kvkit.grading.intake`
copied it, the copy that is then graded), each written atomically,
``meta.json`` last. An entry that cannot be taken in (a link, a pipe, a name
that is not UTF-8, two entries for one student, anything ``kvkit grade``
refuses) costs only that student: "not graded", with the reason. A rerun skips every student whose
``meta.json`` has the same fingerprint, so a run that was killed halfway loses
no finished grade; a changed submission or changed checks are graded again.
The CSV is written (atomically) from the results folder at the end.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import multiprocessing
import multiprocessing.util
import os
import signal
import stat
import sys
import tempfile
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from kvchecks.i18n import _, speaking

from ..errors import UsageError
from ..paths import Layout
from ..stopping import follow_parent, note_stop, raise_stopped, received, stop_on_signals
from .grade import PROBE_TIMEOUT
from .intake import Submission, take_in

SUFFIXES = (".zip", ".ipynb")
SKIP = {"__MACOSX", "__pycache__"}
KINDS = {stat.S_IFLNK: "a symbolic link", stat.S_IFIFO: "a pipe (FIFO)", stat.S_IFSOCK: "a socket",
         stat.S_IFCHR: "a device", stat.S_IFBLK: "a device"}


@dataclass
class Entry:
    """One student's entry of the submissions folder; ``refused`` says why it cannot be graded, if it cannot."""

    student: str
    path: Path
    refused: str | None = None


def find_submissions(folder: Path) -> tuple[list[Entry], list[str]]:
    """One entry per student, sorted, and the names of the entries that are no submission (skipped).

    Every folder, ``.zip`` and ``.ipynb`` is a student (the name without its
    suffix). An entry that is a link, a pipe, a device or a socket, whose name
    is not UTF-8, or whose student has another entry too, is a student whose
    entry is refused (graded "not graded", with the reason); other files and
    hidden entries are skipped. ``UsageError`` only when the folder itself is
    wrong or holds no submission.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder: give the folder that holds one sub-folder or zip per student")
    entries: list[Entry] = []
    skipped: list[str] = []
    for name in sorted(os.listdir(folder)):
        shown = os.fsencode(name).decode("utf-8", "backslashreplace")
        if name.startswith(".") or name in SKIP:
            skipped.append(shown)
            continue
        path = folder / name
        mode = os.lstat(path).st_mode
        suffix = Path(shown).suffix.lower()
        student = shown[: -len(suffix)] if suffix in SUFFIXES else shown
        if stat.S_ISREG(mode) and suffix not in SUFFIXES:
            skipped.append(shown)
            continue
        entry = Entry(student, path)
        if shown != name:
            entry.refused = _("its name {name!r} is not valid UTF-8: rename it").format(name=shown)
        elif not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
            entry.refused = _("{name} is {kind}: hand in a folder, a .zip or a notebook itself").format(
                name=shown, kind=KINDS.get(stat.S_IFMT(mode), "not a regular file"))
        entries.append(entry)
    by_student: dict[str, list[Entry]] = {}
    for entry in entries:
        by_student.setdefault(entry.student, []).append(entry)
    for student, mine in by_student.items():
        if len(mine) > 1:
            names = ", ".join(e.path.name if e.student == e.path.name else os.fsencode(e.path.name).decode(
                "utf-8", "backslashreplace") for e in mine)
            for entry in mine:
                entry.refused = _("{count} submissions for {student} ({names}): keep one").format(
                    count=len(mine), student=student, names=names)
    if not entries:
        raise UsageError(f"{folder} holds no submissions (sub-folders, .zip or .ipynb files)")
    return entries, skipped


def checks_fingerprint(layout: Layout, hidden: bool = True) -> str:
    """A hash of ``layout``'s checks and their goldens: grades made with other checks are stale."""
    h = hashlib.sha256()
    hidden_tests = layout.hidden_tests
    for tree in [layout.public_tests] + ([hidden_tests] if hidden and hidden_tests.is_dir() else []):
        for path in sorted(tree.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and not path.name.endswith(".pyc"):
                h.update(b"F" + str(path.relative_to(tree)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_meta(results_dir: Path, student: str) -> dict | None:
    try:
        meta = json.loads((results_dir / student / "meta.json").read_text())
        json.loads((results_dir / student / "results.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def graded_row(layout: Layout, student: str, submission: Submission, print_: str, options: dict) -> dict:
    """Grade one submission of ``layout``'s assignment (already taken in by :mod:`kvkit.grading.intake`), in the
    language ``options["lang"]``: its ``results`` and ``meta``, or a grader error (``status``, ``notes``, ``error``).
    Runs where the grading runs (a local worker, a Dask worker)."""
    with speaking(options.get("lang", "en")):
        return _graded_row(layout, student, submission, print_, options)


def _graded_row(layout: Layout, student: str, submission: Submission, print_: str, options: dict) -> dict:
    from .grade import grade  # imported in the worker: pytest and torch, never student code
    from .remote.warm import worker_warm

    started = time.perf_counter()
    try:
        report = grade(layout, submission, hidden=options.get("hidden", True),
                       timeout=options.get("timeout", PROBE_TIMEOUT), lang=options.get("lang", "en"),
                       hide=[Path(p) for p in options.get("hide", [])], warm=worker_warm())
    except UsageError as err:  # the submission is not gradable: a zero with the reason
        return refusal(student, print_, str(err), time.perf_counter() - started)
    except Exception as err:  # the grader failed: recorded, not kept (a rerun tries again)
        text = f"{type(err).__name__}: {err}"
        return {"status": "grader error", "notes": text.splitlines()[0][:300],
                "error": text + "\n" + traceback.format_exc()}
    meta = {"student": student, "fingerprint": print_, "status": "graded",
            "notes": " ".join(n.splitlines()[0] for n in report.notes)[:500],
            "score": report.score, "max_score": report.max_score,
            "todos": {str(t): [got, possible] for t, got, possible in report.by_todo()},
            "seconds": round(report.seconds, 2)}
    return {"results": report.gradescope(), "meta": meta}


def grade_one(layout: Layout, student: str, submission: Submission, results_dir: str, print_: str,
              options: dict) -> dict:
    """Local worker: grade one submission and write its files; the CSV row. A worker told to stop meanwhile
    (:func:`_stop_local_worker`) records nothing and ends."""
    global _grading
    _grading = True
    try:
        outcome = graded_row(layout, student, submission, print_, options)
    except KeyboardInterrupt:  # stopped: the grading has unwound (its sandbox removed, its child ended)
        outcome = None
    finally:
        _grading = False
    if outcome is None or received() is not None:
        _end_local_worker(received() or signal.SIGTERM)
    return record(Path(results_dir) / student, student, outcome)


_grading = False  # in a local worker: grade_one is grading


def _start_local_worker(command: int, environ: dict[str, str]) -> None:
    """A local worker's start (the pool's initializer; ``command``: the pid of the ``kvkit`` process, ``environ``: its
    environment now, which the forkserver may have been started before). Ctrl-C reaches the whole process group, and
    the command stops its workers itself; SIGTERM and SIGHUP stop the worker (:func:`_stop_local_worker`), which also
    gets SIGTERM if the command dies (:func:`kvkit.stopping.follow_parent`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop_on_signals(_stop_local_worker)
    follow_parent(command)
    os.environ.clear()
    os.environ.update(environ)


def _stop_local_worker(signum: int, frame) -> None:
    """A stop signal in a local worker: a running grading unwinds (:func:`grade_one` then ends the worker); an idle
    worker ends at once; a worker that is already stopping goes on with it."""
    if received() is not None:
        return
    if _grading:
        raise_stopped(signum, frame)
    else:
        _end_local_worker(signum)


def _end_local_worker(signum: int) -> None:
    """End this worker: its zygotes (and their harness folders) first, then the process, with status 128 + ``signum``."""
    from .remote.warm import worker_warm

    note_stop(signum)
    worker_warm().close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(128 + signum)


def record(folder: Path, student: str, outcome: dict) -> dict:
    """Write a grading's files (``results.json``, then ``meta.json``) or its grader error; the CSV row."""
    if "meta" not in outcome:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomically(folder / "error.txt", outcome.get("error", outcome.get("notes", "")))
        return {"student": student, "status": "grader error", "notes": outcome.get("notes", ""), "skipped": False}
    return write_grade(folder, outcome["results"], outcome["meta"])


def refusal(student: str, print_: str, reason: str, seconds: float) -> dict:
    """A submission that cannot be graded: a zero with the reason, kept like a grade (a rerun skips it unchanged)."""
    results = {"score": 0, "max_score": 0, "execution_time": round(seconds, 2),
               "output": _("Not graded: {reason}").format(reason=reason), "tests": []}
    meta = {"student": student, "fingerprint": print_, "status": "not graded", "notes": reason[:500],
            "score": 0, "max_score": 0, "todos": {}, "seconds": results["execution_time"]}
    return {"results": results, "meta": meta}


def write_grade(folder: Path, results: dict, meta: dict) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / "results.json", json.dumps(results, indent=2) + "\n")
    write_atomically(folder / "meta.json", json.dumps(meta, indent=2) + "\n")  # last: marks the grade as finished
    return {**meta, "skipped": False}


def take_in_all(layout: Layout, entries: list[Entry], scratch: Path,
                checks: str) -> dict[str, tuple[Submission | None, str, str]]:
    """student -> (the submission taken in, or None; its fingerprint; the reason it was refused, or "").

    Each entry is read once, here, into ``scratch``; the fingerprint is of
    what was copied, so what is graded is what was fingerprinted, however the
    entry changes meanwhile. A refusal costs only that student.
    """
    taken = {}
    for index, entry in enumerate(entries):
        reason = entry.refused
        submission = None
        if reason is None:
            try:
                submission = take_in(layout, entry.path, scratch / str(index))
            except UsageError as err:
                reason = str(err)
        if submission is not None:
            print_ = hashlib.sha256(f"{checks}:{submission.fingerprint}".encode()).hexdigest()
        else:
            print_ = hashlib.sha256(f"{checks}:refused:{reason}".encode()).hexdigest()
        taken[entry.student] = (submission, print_, reason or "")
    return taken


def csv_fields(layout: Layout) -> list[str]:
    """The CSV's columns: one per TODO of ``layout``'s assignment between the totals and the status."""
    return ["student", "score", "max_score", *[f"todo{t}" for t in layout.assignment.todos], "status", "notes"]


def csv_text(layout: Layout, entries: list[Entry], results_dir: Path, errors: dict[str, str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, csv_fields(layout))
    writer.writeheader()
    for entry in entries:
        meta = load_meta(results_dir, entry.student)
        row = {"student": _safe(entry.student)}
        if meta is None:
            row.update(status=errors.get(entry.student, ("not graded yet", ""))[0],
                       notes=errors.get(entry.student, ("", ""))[1])
        else:
            row.update(score=f"{meta['score']:g}", max_score=f"{meta['max_score']:g}", status=meta["status"],
                       notes=_safe(meta.get("notes", "")))
            for t in layout.assignment.todos:
                got = meta.get("todos", {}).get(str(t))
                row[f"todo{t}"] = f"{got[0]:g}" if got else ""
        writer.writerow(row)
    return out.getvalue()


def _safe(text: str) -> str:
    """A cell a spreadsheet shows as text (no formula from a student's output)."""
    text = " ".join(str(text).split())
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def grade_all(layout: Layout, submissions: Path, out_csv: Path, jobs: int | None = None,
              results_dir: Path | None = None, hidden: bool = True, timeout: float = PROBE_TIMEOUT,
              progress: bool = True, scheduler: str | None = None, lang: str = "en",
              connect_timeout: float | None = None) -> dict:
    """Grade every submission of ``layout``'s assignment in ``submissions`` (here, or on the Dask cluster at
    ``scheduler``, reached and given a first worker within ``connect_timeout`` seconds), reporting in ``lang``;
    returns counts, wall time and the entries skipped."""
    with speaking(lang):  # the refusals' reasons; each grading speaks it too (options)
        started = time.perf_counter()
        submissions = Path(submissions).resolve()
        entries, skipped_names = find_submissions(submissions)
        out_csv = Path(out_csv).resolve()
        results_dir = Path(results_dir).resolve() if results_dir else out_csv.with_name(out_csv.stem + "-results")
        if results_dir == submissions or submissions in results_dir.parents:
            raise UsageError(f"the results folder {results_dir} must not lie inside {submissions}")
        results_dir.mkdir(parents=True, exist_ok=True)
        out_csv.parent.mkdir(parents=True, exist_ok=True)
        checks = checks_fingerprint(layout, hidden)
        errors: dict[str, tuple[str, str]] = {}
        with tempfile.TemporaryDirectory(prefix="kvkit-grade-all-") as scratch:
            taken = take_in_all(layout, entries, Path(scratch), checks)
            todo, skipped = [], 0
            for entry in entries:
                submission, print_, reason = taken[entry.student]
                meta = load_meta(results_dir, entry.student)
                if meta is not None and meta.get("fingerprint") == print_:
                    skipped += 1
                elif submission is None:
                    record(results_dir / entry.student, entry.student, refusal(entry.student, print_, reason, 0.0))
                else:
                    todo.append((entry, submission, print_))
            options = {"hidden": hidden, "timeout": timeout, "lang": lang,
                       "hide": [str(submissions), str(results_dir), scratch]}
            jobs = max(1, min(jobs or os.cpu_count() or 1, len(todo) or 1))
            bar = _bar(len(entries), len(entries) - len(todo), progress)

            def on_row(entry: Entry, row: dict) -> None:
                if row.get("status") == "grader error":
                    errors[entry.student] = ("grader error", row.get("notes", ""))
                bar.update(1)
                bar.set_postfix_str(entry.student[:20])

            try:
                if todo and scheduler:
                    _grade_on_cluster(layout, scheduler, todo, results_dir, options, on_row, connect_timeout)
                elif todo:
                    _grade_locally(layout, todo, results_dir, options, jobs, on_row)
            except KeyboardInterrupt as err:  # Ctrl-C or a stop signal (kvkit.stopping)
                err.add_note(f"the grades finished so far are in {out_csv}; the same command grades the rest")
                raise
            finally:
                bar.close()
                write_atomically(out_csv, csv_text(layout, entries, results_dir, errors))
        refused = sum(1 for e in entries if taken[e.student][0] is None)
        return {"students": len(entries), "graded": len(todo) - len(errors), "skipped": skipped, "errors": len(errors),
                "refused": refused, "jobs": jobs, "seconds": time.perf_counter() - started, "csv": str(out_csv),
                "results_dir": str(results_dir), "skipped_entries": skipped_names}


def worker_context() -> multiprocessing.context.BaseContext:
    """How local workers start: forked from this process's forkserver, which imports the grader (torch, pytest) once
    for every worker of the process (a spawned worker imports them itself: about 2 CPU-seconds each). The
    forkserver is a fresh interpreter with no thread of this process, started on first use; the workers follow this
    process (:func:`kvkit.stopping.follow_parent`), and the forkserver ends once it and they have."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__, "kvkit.grading.grade"])
    return context


def _grade_locally(layout: Layout, todo: list, results_dir: Path, options: dict, jobs: int, on_row) -> None:
    """Each submission graded by one of ``jobs`` worker processes of this machine. If this process is stopped
    (Ctrl-C, SIGTERM, SIGHUP: :mod:`kvkit.stopping`), so are the workers, and the gradings they had begun are not
    recorded. The folder of the workers' forkserver's socket is hidden from every child: whoever connects to it as
    this user can have it fork a process outside any jail (a child in ``userns`` mode is this user, and sees a
    temporary folder outside the covered ones)."""
    options = {**options, "hide": [*options.get("hide", []), multiprocessing.util.get_temp_dir()]}
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=worker_context(), initializer=_start_local_worker,
                               initargs=(os.getpid(), dict(os.environ)))
    try:
        pending = {pool.submit(grade_one, layout, e.student, sub, str(results_dir), p, options): e
                   for e, sub, p in todo}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                entry = pending.pop(future)
                try:
                    row = future.result()
                except Exception as err:  # a worker died (killed, out of memory): a rerun tries again
                    row = {"status": "grader error", "notes": f"{type(err).__name__}: {err}"[:300]}
                on_row(entry, row)
    except BaseException:
        for process in list(pool._processes.values()):  # (the pool's own table of its workers)
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _grade_on_cluster(layout: Layout, address: str, todo: list, results_dir: Path, options: dict, on_row,
                      connect_timeout: float | None = None) -> None:
    """Each submission graded on a Dask worker (:mod:`kvkit.grading.cluster`); the files are written here."""
    from .cluster import CONNECT_TIMEOUT, connect, grade_on_cluster

    timeout = CONNECT_TIMEOUT if connect_timeout is None else connect_timeout
    client = connect(address, timeout)
    try:
        def write(entry: Entry, outcome: dict) -> None:
            on_row(entry, record(results_dir / entry.student, entry.student, outcome))

        grade_on_cluster(layout, client, todo, {k: v for k, v in options.items() if k != "hide"}, write,
                         say=lambda line: print(line, file=sys.stderr), timeout=timeout)
    finally:
        client.close()


def _bar(total: int, initial: int, enabled: bool):
    try:
        from tqdm import tqdm
    except ImportError:  # the bar is a convenience: grading works without it
        enabled = False
    if not enabled:
        class _NoBar:
            def update(self, _n): pass
            def set_postfix_str(self, _s): pass
            def close(self): pass
        return _NoBar()
    return tqdm(total=total, initial=initial, desc="grading", unit="submission", file=sys.stderr, dynamic_ncols=True)

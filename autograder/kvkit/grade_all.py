"""``kvkit grade-all``: grade a folder of submissions in parallel, resumably, into one CSV.

``SUBMISSIONS_DIR`` holds one entry per student: a folder, a ``.zip`` or a
notebook (anything ``kvkit grade`` accepts); the entry's name (without
``.zip``/``.ipynb``) is the student's name. Each submission is graded by a
worker process (``--jobs`` of them) that runs the checks exactly as ``kvkit
grade`` does: the worker never imports student code, which runs in that
grading's own confined child.

For each student the results folder gets ``<student>/results.json``
(Gradescope's format) and ``<student>/meta.json`` (score per TODO, status,
and a fingerprint of the submission's bytes and of the checks), each written
atomically, ``meta.json`` last. A rerun skips every student whose
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
import os
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from kvchecks.i18n import _

from .paths import TODOS

from .errors import UsageError
from .grade import PROBE_TIMEOUT
from .paths import HIDDEN_TESTS, PUBLIC_TESTS

SUFFIXES = (".zip", ".ipynb")
SKIP = {"__MACOSX", "__pycache__"}


@dataclass
class Entry:
    student: str
    path: Path


def find_submissions(folder: Path) -> list[Entry]:
    """One entry per student, sorted; ``UsageError`` when there is nothing to grade or names clash."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder: give the folder that holds one sub-folder or zip per student")
    entries, seen = [], {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.name in SKIP or path.is_symlink():
            continue
        if path.is_dir():
            name = path.name
        elif path.is_file() and path.suffix.lower() in SUFFIXES:
            name = path.stem
        else:
            continue
        if name in seen:
            raise UsageError(f"{seen[name].name} and {path.name} are both student {name!r}: keep one")
        seen[name] = path
        entries.append(Entry(name, path))
    if not entries:
        raise UsageError(f"{folder} holds no submissions (sub-folders, .zip or .ipynb files)")
    return entries


def _hash_tree(h, path: Path) -> None:
    if path.is_file():
        h.update(b"F" + path.name.encode() + b"\0" + path.read_bytes())
        return
    for child in sorted(path.rglob("*")):
        if child.is_file() and "__pycache__" not in child.parts and not child.name.endswith(".pyc"):
            h.update(b"F" + str(child.relative_to(path)).encode() + b"\0" + child.read_bytes())
        elif child.is_symlink():
            h.update(b"L" + str(child.relative_to(path)).encode())


def checks_fingerprint(hidden: bool = True) -> str:
    """A hash of the checks and their goldens: grades made with other checks are stale."""
    h = hashlib.sha256()
    _hash_tree(h, PUBLIC_TESTS)
    if hidden and HIDDEN_TESTS.is_dir():
        _hash_tree(h, HIDDEN_TESTS)
    return h.hexdigest()


def fingerprint(path: Path, checks: str) -> str:
    h = hashlib.sha256(checks.encode())
    _hash_tree(h, path)
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


def grade_one(student: str, path: str, results_dir: str, print_: str, options: dict) -> dict:
    """Worker: grade one submission and write its files; the row for the CSV."""
    from .grade import grade  # imported in the worker: pytest and torch, never student code

    folder = Path(results_dir) / student
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    hide = [Path(p) for p in options.get("hide", [])]
    try:
        report = grade(Path(path), hidden=options.get("hidden", True), timeout=options.get("timeout", PROBE_TIMEOUT), hide=hide)
    except UsageError as err:  # the submission is not gradable: a zero with the reason
        results = {"score": 0, "max_score": 0, "execution_time": round(time.perf_counter() - started, 2),
                   "output": _("Not graded: {reason}").format(reason=err), "tests": []}
        meta = {"student": student, "fingerprint": print_, "status": "not graded", "notes": str(err),
                "score": 0, "max_score": 0, "todos": {}, "seconds": results["execution_time"]}
    except Exception as err:  # the grader failed: recorded, not kept (a rerun tries again)
        text = f"{type(err).__name__}: {err}"
        write_atomically(folder / "error.txt", text + "\n" + traceback.format_exc())
        return {"student": student, "status": "grader error", "notes": text.splitlines()[0][:300], "skipped": False}
    else:
        results = report.gradescope()
        meta = {"student": student, "fingerprint": print_, "status": "graded",
                "notes": " ".join(n.splitlines()[0] for n in report.notes)[:500],
                "score": report.score, "max_score": report.max_score,
                "todos": {str(t): [got, possible] for t, got, possible in report.by_todo()},
                "seconds": round(report.seconds, 2)}
    write_atomically(folder / "results.json", json.dumps(results, indent=2) + "\n")
    write_atomically(folder / "meta.json", json.dumps(meta, indent=2) + "\n")  # last: marks the grade as finished
    return {**meta, "skipped": False}


CSV_FIELDS = ["student", "score", "max_score", *[f"todo{t}" for t in TODOS], "status", "notes"]


def csv_text(entries: list[Entry], results_dir: Path, errors: dict[str, str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS)
    writer.writeheader()
    for entry in entries:
        meta = load_meta(results_dir, entry.student)
        row = {"student": entry.student}
        if meta is None:
            row.update(status=errors.get(entry.student, ("not graded yet", ""))[0],
                       notes=errors.get(entry.student, ("", ""))[1])
        else:
            row.update(score=f"{meta['score']:g}", max_score=f"{meta['max_score']:g}", status=meta["status"],
                       notes=_safe(meta.get("notes", "")))
            for t in TODOS:
                got = meta.get("todos", {}).get(str(t))
                row[f"todo{t}"] = f"{got[0]:g}" if got else ""
        writer.writerow(row)
    return out.getvalue()


def _safe(text: str) -> str:
    """A cell a spreadsheet shows as text (no formula from a student's output)."""
    text = " ".join(str(text).split())
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def grade_all(submissions: Path, out_csv: Path, jobs: int | None = None, results_dir: Path | None = None,
              hidden: bool = True, timeout: float = PROBE_TIMEOUT, progress: bool = True) -> dict:
    """Grade every submission in ``submissions``; returns counts and wall time."""
    started = time.perf_counter()
    submissions = Path(submissions).resolve()
    entries = find_submissions(submissions)
    out_csv = Path(out_csv).resolve()
    results_dir = Path(results_dir).resolve() if results_dir else out_csv.with_name(out_csv.stem + "-results")
    if results_dir == submissions or submissions in results_dir.parents:
        raise UsageError(f"the results folder {results_dir} must not lie inside {submissions}")
    results_dir.mkdir(parents=True, exist_ok=True)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    checks = checks_fingerprint(hidden)
    todo, skipped = [], 0
    for entry in entries:
        print_ = fingerprint(entry.path, checks)
        meta = load_meta(results_dir, entry.student)
        if meta is not None and meta.get("fingerprint") == print_:
            skipped += 1
        else:
            todo.append((entry, print_))
    options = {"hidden": hidden, "timeout": timeout, "hide": [str(submissions), str(results_dir)]}
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(todo) or 1))
    errors: dict[str, tuple[str, str]] = {}
    bar = _bar(len(entries), skipped, progress)
    try:
        if todo:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
                pending = {pool.submit(grade_one, e.student, str(e.path), str(results_dir), p, options): e
                           for e, p in todo}
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        entry = pending.pop(future)
                        try:
                            row = future.result()
                        except Exception as err:  # a worker died (killed, out of memory): a rerun tries again
                            row = {"status": "grader error", "notes": f"{type(err).__name__}: {err}"[:300]}
                        if row.get("status") == "grader error":
                            errors[entry.student] = ("grader error", row.get("notes", ""))
                        bar.update(1)
                        bar.set_postfix_str(entry.student[:20])
    finally:
        bar.close()
        write_atomically(out_csv, csv_text(entries, results_dir, errors))
    return {"students": len(entries), "graded": len(todo) - len(errors), "skipped": skipped, "errors": len(errors),
            "jobs": jobs, "seconds": time.perf_counter() - started, "csv": str(out_csv),
            "results_dir": str(results_dir)}


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


def run(args) -> int:
    summary = grade_all(Path(args.submissions), Path(args.out), jobs=args.jobs,
                        results_dir=Path(args.results_dir) if args.results_dir else None,
                        hidden=not args.public_only, timeout=args.timeout, progress=not args.no_progress)
    print(f"{summary['students']} submissions: {summary['graded']} graded, {summary['skipped']} already graded "
          f"(skipped), {summary['errors']} grader errors; {summary['jobs']} jobs, {summary['seconds']:.1f} s")
    print(f"wrote {summary['csv']} and {summary['results_dir']}/<student>/results.json")
    return 0 if not summary["errors"] else 1


def add_parser(sub) -> None:
    p = sub.add_parser("grade-all", help="grade a folder of submissions (one sub-folder, zip or notebook per "
                                         "student) in parallel, resumably, into a CSV")
    p.add_argument("submissions", help="folder holding one sub-folder, .zip or .ipynb per student")
    p.add_argument("--out", required=True, metavar="GRADES_CSV", help="the CSV to write")
    p.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: the number of cores)")
    p.add_argument("--results-dir", metavar="DIR",
                   help="where <student>/results.json go (default: next to the CSV, GRADES-results/)")
    p.add_argument("--public-only", action="store_true", help="run only the public checks")
    p.add_argument("--timeout", type=float, default=PROBE_TIMEOUT, help="seconds each check may run (default %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)

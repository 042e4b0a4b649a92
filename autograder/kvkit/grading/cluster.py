"""``kvkit grade-all DIR --scheduler ADDRESS``: grading a class on a Dask distributed cluster.

The instructor's process takes every submission in (:mod:`kvkit.grading.intake`),
keeps the results folder and the CSV, and sends each submission to the
cluster as bytes (the package's files, its notebook places and notes). A
worker (``dask worker ADDRESS`` on a machine with the same kit installed)
writes them into a folder of its own and grades them exactly as ``kvkit
grade`` does, the student's code confined on that machine; it sends back the
report's ``results.json`` and the row, which the instructor's process writes.

- **Same kit, or refused.** Before grading, every worker reports the
  fingerprint of its kit for the assignment being graded (the grader's code,
  the public and hidden checks and their goldens, the reference, the
  assignment, torch's version); each task names that assignment, so a worker
  needs nothing but the kit installed. A worker
  whose fingerprint differs is left out, with one line naming it; each task
  checks it again on the worker that runs it, so a worker that joins later
  with another kit grades nothing.
- **No grade lost.** A worker that dies mid-run loses its tasks to the
  scheduler, which runs them on another worker; grades already written stay,
  and a rerun skips them as a local run does.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from ..errors import GraderError, UsageError
from ..paths import Layout
from ..registry import ROOT
from .intake import Submission, fingerprint_of

CONNECT_TIMEOUT = 30.0  # seconds to reach the scheduler and see a worker (grade-all --connect-timeout)


class KitMismatch(Exception):
    """Raised on a worker whose kit is not the instructor's: the task is run elsewhere."""


def kit_trees(layout: Layout) -> tuple[Path, ...]:
    """The folders whose files decide a grade of ``layout``'s assignment."""
    return (ROOT / "autograder" / "kvkit", layout.public_tests.parent / "kvchecks", layout.public_tests,
            layout.hidden_tests, layout.reference / layout.assignment.package)


def kit_fingerprint(layout: Layout) -> str:
    """A hash of what decides a grade of ``layout``'s assignment: the grader's code, the checks and goldens, the
    reference, the assignment."""
    import torch

    h = hashlib.sha256(f"{layout.assignment.name}\0torch {torch.__version__}\0".encode())
    for tree in kit_trees(layout):
        if not tree.is_dir():
            continue
        for path in sorted(tree.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".json", ".toml", ".mo"):
                h.update(str(path.relative_to(tree)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def pack(submission: Submission) -> dict:
    """What travels to a worker: the package's files as bytes, the places and notes, the fingerprint."""
    files = {str(p.relative_to(submission.folder)): p.read_bytes()
             for p in sorted(submission.folder.rglob("*")) if p.is_file()}
    return {"given": submission.given, "files": files, "places": submission.places, "notes": list(submission.notes),
            "fingerprint": submission.fingerprint}


def unpack(payload: dict, scratch: Path) -> Submission:
    """The submission a worker grades: the files written into ``scratch``, their fingerprint checked."""
    folder = scratch / "submission"
    for name, data in payload["files"].items():
        target = folder / name
        if not target.resolve().is_relative_to(folder.resolve()):
            raise GraderError(f"a submission's file {name!r} lies outside its folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    submission = Submission(payload["given"], folder, fingerprint_of(folder, payload["places"]), payload["places"],
                            tuple(payload["notes"]))
    if submission.fingerprint != payload["fingerprint"]:
        raise GraderError("a submission arrived changed (its fingerprint differs): not graded")
    return submission


def grade_on_worker(assignment: str, student: str, payload: dict, print_: str, options: dict, kit: str) -> dict:
    """A Dask task: grade one packed submission of ``assignment`` here; the row, with the files the instructor's side
    writes."""
    from .grade_all import graded_row

    mine = worker_kit(assignment)
    if kit != mine:
        raise KitMismatch(f"this worker's kit differs from the instructor's ({mine[:12]} != {kit[:12]})")
    with tempfile.TemporaryDirectory(prefix="kvkit-worker-") as scratch:
        submission = unpack(payload, Path(scratch))
        return graded_row(Layout.named(assignment), student, submission, print_, {**options, "hide": [scratch]})


_KITS: dict[str, str] = {}


def worker_kit(assignment: str) -> str:
    """This process's kit fingerprint for ``assignment`` (computed once; a kit without that assignment has none)."""
    if assignment not in _KITS:
        try:
            _KITS[assignment] = kit_fingerprint(Layout.named(assignment))
        except UsageError as err:
            _KITS[assignment] = f"none: {err}"
    return _KITS[assignment]


def connect(address: str, timeout: float = CONNECT_TIMEOUT):
    """A Dask client of the scheduler at ``address``; ``UsageError`` in one line when it cannot be reached within
    ``timeout`` seconds."""
    try:
        from distributed import Client
    except ImportError:
        raise UsageError("--scheduler needs Dask distributed: pip install 'kvkit[cluster]' (or distributed)")
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise UsageError(f"no Dask scheduler answers at {address} ({type(err).__name__}): start one with "
                         "`dask scheduler` and give its address")


def matching_workers(client, assignment: str, kit: str, say=print, timeout: float = CONNECT_TIMEOUT) -> list[str]:
    """The workers whose kit for ``assignment`` is the instructor's; one line for each that is refused. Waits up to
    ``timeout`` seconds for a first worker."""
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise UsageError(f"the Dask scheduler has no worker after {timeout:g} s: start `dask worker ADDRESS` "
                         "on each machine that has the kit installed")
    kits = client.run(worker_kit, assignment)
    threads = {address: info.get("nthreads", 1) for address, info in client.scheduler_info()["workers"].items()}
    good = []
    for address, fingerprint in sorted(kits.items()):
        if fingerprint != kit:
            say(f"refused Dask worker {address}: its kit or checks differ from this one's (fingerprint "
                f"{fingerprint[:12]}, here {kit[:12]}); install the same kit there and start it again")
        elif threads.get(address, 1) != 1:  # one grading per process: pytest and the report capture are per process
            say(f"refused Dask worker {address}: it runs {threads[address]} threads; start it with --nthreads 1 "
                "(and --nworkers N for N gradings at once)")
        else:
            good.append(address)
    if not good:
        raise UsageError(f"no Dask worker runs this kit for {assignment}: install the same kit on the workers (same "
                         "commit)")
    return good


def grade_on_cluster(layout: Layout, client, todo: list, options: dict, on_row, say=print,
                     timeout: float = CONNECT_TIMEOUT) -> None:
    """Grade every ``(entry, submission, fingerprint)`` of ``todo`` (submissions of ``layout``'s assignment) on the
    cluster; ``on_row(entry, row)`` for each, as they finish (``row`` None when the grading failed: a rerun tries
    again)."""
    from distributed import as_completed

    name = layout.assignment.name
    kit = kit_fingerprint(layout)
    workers = matching_workers(client, name, kit, say, timeout)
    futures = {}
    for entry, submission, print_ in todo:
        future = client.submit(grade_on_worker, name, entry.student, pack(submission), print_, options, kit,
                               workers=workers, allow_other_workers=False, pure=False, retries=2,
                               key=f"kvkit-grade-{hashlib.sha256(print_.encode()).hexdigest()[:16]}-{len(futures)}")
        futures[future] = entry
    for future in as_completed(list(futures), loop=client.loop):
        entry = futures[future]
        try:
            row = future.result()
        except Exception as err:  # KilledWorker (it died too often), a grader failure on the worker
            row = {"status": "grader error", "notes": f"{type(err).__name__}: {err}"[:300], "failed": True}
        on_row(entry, row)

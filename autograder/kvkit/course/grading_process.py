"""Trusted grading of one notebook in a process of its own assignment and language.

One Jupyter server (the formgrader) or one script driving nbgrader's API serves every course of the kit, but a
grading process holds one assignment: the one its command line chose. For a course of another assignment, or of
another language, :func:`grade_elsewhere` grades the notebook's answer cells in a fresh Python process started
for that course (``KVKIT_ASSIGNMENT`` and ``KVKIT_LANG`` set before anything reads them), which takes the
notebook in against the course's release (:func:`kvkit.intake.take_in_notebook`) and runs
:func:`kvkit.grade.grade` exactly as in-process grading does; the report comes back as JSON.

    python -m kvkit.course.grading_process IN.json OUT.json   (IN: notebook, release, hide; OUT: the report)
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import GraderError, UsageError
from ..registry import ENV, LANG_ENV, courses, manifests


def course_of(name: str) -> tuple[str, str]:
    """``(assignment, language)`` of the nbgrader course ``name`` (``UsageError`` when the kit has none)."""
    found = courses()
    if name not in found:
        raise UsageError(f"nbgrader grades {name!r}, which is none of the kit's courses ({', '.join(found)})")
    return found[name]


def grade_elsewhere(course: str, nb: dict, release: dict, hide: list[Path]):
    """The :class:`kvkit.report.Report` of ``nb``'s answer cells, graded in a process of ``course``'s own."""
    from kvchecks.plugin import Result

    from ..report import Report

    assignment, lang = course_of(course)
    env = {**os.environ, ENV: str(manifests()[assignment]), LANG_ENV: lang}
    with tempfile.TemporaryDirectory(prefix="kvkit-grading-process-") as tmp:
        given, out = Path(tmp) / "in.json", Path(tmp) / "out.json"
        given.write_text(json.dumps({"notebook": nb, "release": release, "hide": [str(p) for p in hide],
                                     "given": course}))
        done = subprocess.run([sys.executable, "-m", "kvkit.course.grading_process", str(given), str(out)],
                              env=env, capture_output=True, text=True)
        if done.returncode == 2:
            raise UsageError((done.stderr.strip().splitlines() or ["the notebook could not be graded"])[-1])
        if done.returncode != 0 or not out.is_file():
            raise GraderError(f"the grading process of {course} failed: {done.stderr.strip()[-1500:]}")
        data = json.loads(out.read_text())
    return Report(data["submission"], [Result(**r) for r in data["results"]], data["seconds"], data["notes"],
                  fresh_key=data["fresh_key"])


def main(argv: list[str]) -> int:
    from ..grade import grade
    from ..intake import take_in_notebook

    given = json.loads(Path(argv[0]).read_text())
    try:
        with tempfile.TemporaryDirectory(prefix="kvkit-grading-process-") as scratch:
            submission = take_in_notebook(given["notebook"], given["release"], Path(scratch), given["given"])
            report = grade(submission, hide=[Path(p) for p in given["hide"]])
    except UsageError as err:
        print(str(err), file=sys.stderr)
        return 2
    Path(argv[1]).write_text(json.dumps({
        "submission": report.submission, "results": [dataclasses.asdict(r) for r in report.results],
        "seconds": report.seconds, "notes": report.notes, "fresh_key": report.fresh_key}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

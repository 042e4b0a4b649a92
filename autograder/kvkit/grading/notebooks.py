"""A student's notebook back into a package (what ``kvkit grade`` and ``nbgrader autograde`` grade, taken in by
:mod:`kvkit.grading.intake`), and where its lines came from: the grader's messages name the notebook's cells, not the
package's files the student never saw.

Reading a notebook file against its course's release: :func:`kvkit.course.submission.notebook_to_package`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from kvchecks.i18n import _

from ..errors import UsageError
from ..paths import Layout


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def read_notebook(path: Path) -> dict:
    """A notebook of the kit's own (the release, the source); a student's is read by :mod:`kvkit.grading.intake`."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise UsageError(f"{path} is not a readable notebook: {err}")
    return parse_notebook(data, str(path))


def parse_notebook(data: bytes, label: str) -> dict:
    """nbformat data from a notebook file's bytes; ``UsageError`` when it is not a notebook."""
    try:
        nb = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise UsageError(f"{label} is not a readable notebook: {str(err)[:200] or type(err).__name__}")
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise UsageError(f"{label} is not a Jupyter notebook (no list of cells)")
    return nb


@dataclass(frozen=True)
class NotebookPackage:
    """What :func:`package_from_notebook` wrote: ``folder/<package>/``, where each cell's lines went, and notes."""

    folder: Path
    places: dict[str, list]  # module -> [[first line, last line, label], ...]
    notes: list[str]


def _grade_id(cell) -> str | None:
    metadata = cell.get("metadata") if isinstance(cell, dict) else None
    nbgrader = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    grade_id = nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None
    return grade_id if isinstance(grade_id, str) else None


def _code(cell: dict) -> str | None:
    """A student's answer cell's code, or None when the cell is no longer a code cell holding text."""
    source = cell.get("source", "")
    if cell.get("cell_type") != "code":
        return None
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        return "".join(source)
    return source if isinstance(source, str) else None


def package_from_notebook(layout: Layout, nb: dict, release: dict, out: Path) -> NotebookPackage:
    """Write ``out/<package>/`` from a student's notebook ``nb`` of ``layout``'s assignment (nbformat data, adversary
    data), against the release.

    Everything but the student's code comes from ``release`` (the release
    notebook, which holds no solution): the package layout, the header of
    each module and, as ``nbgrader autograde`` does, the read-only cells. Each
    answer cell is the student's code cell with the same nbgrader
    ``grade_id``, wherever it sits in the notebook; one that is missing
    (deleted, renamed, stripped of its metadata), given more than once, or no
    longer a code cell counts as the release's stub (its TODOs unfinished),
    with a note that says so.
    """
    work = layout.assignment
    cells_of = release.get("metadata", {}).get("kvkit", {}).get("package")
    if not cells_of:
        raise ValueError(f"the release notebook has no kvkit package layout: run `make notebook` ({work.name})")
    originals = {_grade_id(c): c for c in release["cells"] if _grade_id(c)}
    given: dict[str, list[dict]] = {}
    for cell in nb["cells"]:
        if _grade_id(cell):
            given.setdefault(_grade_id(cell), []).append(cell)
    target = Path(out) / work.package
    target.mkdir(parents=True, exist_ok=True)
    (target / "__init__.py").write_text(cells_of["__init__.py"])
    places: dict[str, list] = {}
    notes: list[str] = []
    for module in work.modules:
        parts = [cells_of[module]["header"].rstrip("\n")]
        line = len(parts[0].splitlines()) + 3  # the first line of the next part (parts are 2 blank lines apart)
        for grade_id in cells_of[module]["cells"]:
            original = originals[grade_id]
            classes = original.get("metadata", {}).get("kvkit", {}).get("classes") or [grade_id]
            answer = bool(original["metadata"]["nbgrader"].get("solution"))
            text = _answer(given.get(grade_id, []), ", ".join(classes), notes) if answer else None
            if text is None:
                text = _source(original)
            parts.append(text.rstrip("\n"))
            label = _("your answer cell of {names}") if answer else _("the cell of {names}")
            places.setdefault(module, []).append([line, line + len(parts[-1].splitlines()) - 1,
                                                  label.format(names=", ".join(classes))])
            line += len(parts[-1].splitlines()) + 2
        (target / module).write_text("\n\n\n".join(parts) + "\n")
    return NotebookPackage(Path(out), places, notes)


def _answer(cells: list[dict], names: str, notes: list[str]) -> str | None:
    """The student's code for one answer cell, or None (with a note) when it cannot be told which code it is."""
    if not cells:
        notes.append(_("Your answer cell of {names} is missing (deleted, or its nbgrader metadata removed or "
                       "changed): it was graded as unanswered.").format(names=names))
        return None
    if len(cells) > 1:
        notes.append(_("Your notebook holds the answer cell of {names} {count} times: it was graded as "
                       "unanswered; keep one.").format(names=names, count=len(cells)))
        return None
    code = _code(cells[0])
    if code is None:
        notes.append(_("Your answer cell of {names} is no longer a code cell: it was graded as unanswered.").format(
            names=names))
    return code


def notebook_places(message: str, places: dict[str, list], package: str) -> str:
    """``message`` with each ``<package>/FILE, line N`` of a package made from a notebook told as the notebook's cell
    and the line in it (the student never saw the package's files)."""
    if not places:
        return message

    def place(match: re.Match) -> str:
        number = int(match.group(2))
        for first, last, label in places.get(match.group(1), []):
            if first <= number <= last:
                return _("{cell} (line {line} of the cell)").format(cell=label, line=number - first + 1)
        return match.group(0)

    return re.sub(rf"{re.escape(package)}/(\w+\.py), line (\d+)", place, message)

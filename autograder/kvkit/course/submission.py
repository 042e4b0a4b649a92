"""A student's notebook back into a package (what ``kvkit grade`` and ``nbgrader autograde`` grade), where its
lines came from, and notebooks filled with given TODO bodies (for the kit's tests and benchmarks).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import UsageError
from ..paths import ASSIGNMENT, REFERENCE
from .cells import MODULES, PACKAGE, cell_grade_id, reference_modules, source_lines, split_module
from .folders import RELEASE_NOTEBOOK
from .template import dumps_notebook


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _cells_by_grade_id(nb: dict) -> dict[str, dict]:
    return {c["metadata"]["nbgrader"]["grade_id"]: c for c in nb.get("cells", [])
            if isinstance(c.get("metadata", {}).get("nbgrader", {}).get("grade_id"), str)}


def read_notebook(path: Path) -> dict:
    try:
        nb = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UsageError(f"{path} is not a readable notebook: {err}")
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise UsageError(f"{path} is not a Jupyter notebook (no list of cells)")
    return nb


def notebook_to_package(notebook: Path, out: Path, release: Path | None = RELEASE_NOTEBOOK) -> Path:
    """Write ``out/kvcache/`` from a student's notebook file; returns ``out``.

    The package layout and the read-only cells come from the release
    notebook when there is one (see :func:`package_from_notebook`).
    """
    nb = read_notebook(Path(notebook))
    trusted = read_notebook(release) if release is not None and Path(release).is_file() else None
    try:
        return package_from_notebook(nb, trusted, out)
    except ValueError as err:
        raise UsageError(f"{notebook}: {err}")


def package_from_notebook(nb: dict, trusted: dict | None, out: Path) -> Path:
    """Write ``out/kvcache/`` from a student's notebook ``nb`` (nbformat data); returns ``out``.

    Each module is its header plus the notebook cells listed for it in the
    ``kvkit`` metadata, matched by nbgrader ``grade_id``. The layout and, as
    ``nbgrader autograde`` does, the read-only cells come from ``trusted`` (the
    release or source notebook; a student's edits to them do not count); only
    without one are they read from ``nb`` itself. The student's answer cells
    are taken as they are; an answer cell that is missing is taken from
    ``trusted`` (its TODOs stay unfinished).
    """
    layout = (trusted or nb).get("metadata", {}).get("kvkit", {}).get("package")
    if not layout:
        raise ValueError(f"no kvkit package layout in the notebook's metadata: is it the {ASSIGNMENT.name} notebook?")
    mine, theirs = _cells_by_grade_id(nb), _cells_by_grade_id(trusted) if trusted else {}
    target = Path(out) / PACKAGE
    target.mkdir(parents=True, exist_ok=True)
    (target / "__init__.py").write_text(layout["__init__.py"])
    places: dict[str, list] = {}
    for module in MODULES:
        parts = [layout[module]["header"].rstrip("\n")]
        line = len(parts[0].splitlines()) + 3  # the first line of the next part (parts are 2 blank lines apart)
        for grade_id in layout[module]["cells"]:
            given, original = mine.get(grade_id), theirs.get(grade_id)
            locked = (original or given or {}).get("metadata", {}).get("nbgrader", {}).get("locked", False)
            cell = original if (locked and original is not None) or given is None else given
            if cell is None:
                raise ValueError(f"no cell {grade_id!r} and no release notebook to take it from")
            parts.append(_source(cell).rstrip("\n"))
            classes = (original or cell).get("metadata", {}).get("kvkit", {}).get("classes") or [grade_id]
            places.setdefault(module, []).append([line, line + len(parts[-1].splitlines()) - 1,
                                                  f"{'your answer' if not locked else 'the'} cell of "
                                                  f"{', '.join(classes)}"])
            line += len(parts[-1].splitlines()) + 2
        (target / module).write_text("\n\n\n".join(parts) + "\n")
    (Path(out) / CELL_PLACES).write_text(json.dumps(places))
    return Path(out)


CELL_PLACES = "notebook-cells.json"  # beside kvcache/ when it was made from a notebook: where each cell's lines are


def notebook_places(message: str, folder: Path) -> str:
    """``message`` with each ``kvcache/FILE, line N`` of a package made from a notebook told as the notebook's cell
    and the line in it (the student never saw the package's files)."""
    path = Path(folder) / CELL_PLACES
    if not path.is_file():
        return message
    places = json.loads(path.read_text())

    def place(match: re.Match) -> str:
        number = int(match.group(2))
        for first, last, label in places.get(match.group(1), []):
            if first <= number <= last:
                return f"{label} (line {number - first + 1} of the cell)"
        return match.group(0)

    return re.sub(rf"{re.escape(PACKAGE)}/(\w+\.py), line (\d+)", place, message)


def answer_sources(bodies: dict[str, str], reference: Path = REFERENCE) -> dict[str, str]:
    """grade_id -> answer-cell text: the reference classes with the given TODO bodies (or ``"stub"``) swapped in."""
    from ..examples import with_bodies

    sources = {}
    for module in MODULES:
        path = reference / PACKAGE / module
        parts = split_module(with_bodies(path.read_text(), str(path), bodies), str(path))
        for name, todos in reference_modules(reference)[module].todo_classes.items():
            sources[cell_grade_id(module, [name])] = parts.classes[name].rstrip("\n")
    return sources


def fill_notebook(notebook: Path, out: Path, bodies: dict[str, str]) -> Path:
    """A copy of ``notebook`` (e.g. the release) whose answer cells hold the reference with ``bodies`` swapped in.

    ``bodies`` maps a TODO function (``"KVCache.update"``) to its body text or
    ``"stub"``; TODOs not named get the reference's body.
    """
    nb = read_notebook(Path(notebook))
    sources = answer_sources(bodies)
    for cell in nb["cells"]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in sources and cell["metadata"]["nbgrader"].get("solution"):
            cell["source"] = source_lines(sources[grade_id])
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(dumps_notebook(nb))
    return Path(out)

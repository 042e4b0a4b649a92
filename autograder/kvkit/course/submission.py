"""A student's notebook back into a package from a notebook file, read against its English course's release (the
reading itself, and where the package's lines came from: :mod:`kvkit.grading.notebooks`), and notebooks filled with
given TODO bodies (for the kit's tests and benchmarks).
"""

from __future__ import annotations

from pathlib import Path

from ..courses import english
from ..errors import UsageError
from ..grading.notebooks import package_from_notebook, read_notebook
from ..paths import Layout
from .cells import cell_grade_id, reference_modules, source_lines, split_module
from .template import dumps_notebook


def notebook_to_package(layout: Layout, notebook: Path, out: Path) -> Path:
    """Write ``out/<package>/`` from a notebook file of ``layout``'s assignment, against the layout of its English
    course's release; returns ``out``."""
    release = english(layout).release_notebook
    if not release.is_file():
        raise UsageError(f"no release notebook at {release} to read {notebook} against: run `make notebook`")
    try:
        package_from_notebook(layout, read_notebook(Path(notebook)), read_notebook(release), out)
    except ValueError as err:
        raise UsageError(f"{notebook}: {err}")
    return Path(out)


def answer_sources(layout: Layout, bodies: dict[str, str]) -> dict[str, str]:
    """grade_id -> answer-cell text: ``layout``'s reference classes with the given TODO bodies (or ``"stub"``)
    swapped in."""
    from ..examples import with_bodies

    work = layout.assignment
    sources = {}
    for module, parts in reference_modules(layout).items():
        path = layout.reference / work.package / module
        swapped = split_module(with_bodies(work.todos, path.read_text(), str(path), bodies), str(path), work.todos)
        for name in parts.todo_classes:
            sources[cell_grade_id(module, [name])] = swapped.classes[name].rstrip("\n")
    return sources


def fill_notebook(layout: Layout, notebook: Path, out: Path, bodies: dict[str, str]) -> Path:
    """A copy of ``notebook`` (e.g. the release) whose answer cells hold ``layout``'s reference with ``bodies``
    swapped in.

    ``bodies`` maps a TODO function (``"KVCache.update"``) to its body text or
    ``"stub"``; TODOs not named get the reference's body.
    """
    nb = read_notebook(Path(notebook))
    sources = answer_sources(layout, bodies)
    for cell in nb["cells"]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in sources and cell["metadata"]["nbgrader"].get("solution"):
            cell["source"] = source_lines(sources[grade_id])
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(dumps_notebook(nb))
    return Path(out)

"""The source notebook of a course, built from its template, the reference's cells and the checks' cells.

The template (``autograder/material/kv_cache/notebook/notebook.md`` for part 1, ``notebook.ja.md`` for its Japanese edition) holds
the narrative and demo cells; its ``%%`` lines start cells (see :func:`parse_template`), and say where the
generated setup, class and check cells go. Generated text is written in the course's language.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from kvchecks.assignment import Todo
from kvchecks.i18n import _, speaking

from ..courses import Course
from .cells import ModuleParts, cell_grade_id, code_cell, header_imports, markdown_cell, reference_modules
from .checks import CheckItem, check_cells, collect_checks

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


@dataclass
class TemplateCell:
    kind: str  # markdown | code | setup | classes | checks
    args: list[str] = field(default_factory=list)
    text: str = ""


def parse_template(text: str, name: str = "template") -> list[TemplateCell]:
    """Cells of the template: each ``%% KIND [ARGS]`` line starts one; the lines below it are its text.

    ``%% markdown`` and ``%% code`` (an editable demo cell) carry text;
    ``%% setup`` (imports and the checks helper, read-only), ``%% classes
    MODULE CLASS...`` (those reference classes in one cell) and ``%% checks N``
    (the test cells of TODO N) are generated and carry none. Classes the
    template does not place come at the end, one cell each, each followed by
    the checks of its TODOs (so a new TODO needs no template edit).
    """
    cells: list[TemplateCell] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("%%"):
            kind, *args = line[2:].split()
            if kind not in ("markdown", "code", "setup", "classes", "checks"):
                raise ValueError(f"{name}:{number}: unknown cell kind {kind!r}")
            cells.append(TemplateCell(kind, args))
        elif cells:
            cells[-1].text += line + "\n"
        elif line.strip():
            raise ValueError(f"{name}:{number}: text before the first %% line")
    for cell in cells:
        if cell.kind in ("setup", "classes", "checks") and cell.text.strip():
            raise ValueError(f"{name}: a %% {cell.kind} cell is generated and takes no text")
    return cells


def _fill_points(text: str, items: list[CheckItem], todos: dict[int, Todo], lang: str) -> str:
    """Replace ``{{points:N}}`` (TODO N's points, visible + hidden), ``{{points:total}}`` and ``{{todos}}`` (a
    table of the TODOs from the manifest, with their points) in template text, in language ``lang``."""
    def points(match: re.Match) -> str:
        which = match.group(1)
        chosen = [i for i in items if which == "total" or i.todo == int(which)]
        hidden = sum(i.points for i in chosen if i.hidden)
        return _("{points:g} ({hidden:g} of them hidden)").format(points=sum(i.points for i in chosen), hidden=hidden)
    rows = [_("| TODO | what you write | points |"), "| --- | --- | --- |"]
    rows += [f"| {t.number} | `{t.function}`: {t.task_in(lang)} | {{{{points:{t.number}}}}} |" for t in todos.values()]
    rows.append(_("| | total | {{points:total}} |"))
    return re.sub(r"\{\{points:(\d+|total)\}\}", points, text.replace("{{todos}}", "\n".join(rows)))


def setup_source(imports: list[str], lang: str) -> str:
    """The setup cell: the imports, then the checks helper (speaking ``lang``, which an edition names)."""
    language = f", lang={lang!r}" if lang != "en" else ""  # the checks' messages in this edition's language
    return "\n".join([
        *imports,
        "import os",
        "import sys",
        "",
        _("# The graded checks (kvchecks/ and tests/) ship next to this notebook; they run the same check"),
        _("# functions as `pytest` and `kvkit grade`, on the classes this notebook defines."),
        "sys.path.insert(0, os.getcwd())",
        "from kvchecks.notebook import NotebookChecks",
        "",
        f"checks = NotebookChecks(globals(){language})",
        "_ = torch.manual_seed(0)",
    ])


def _classes_cell(module: str, names: list[str], parts: ModuleParts) -> dict:
    """One code cell holding reference classes: an answer cell if they hold a TODO, else read-only."""
    todos = sorted(t for n in names for t in parts.todo_classes.get(n, []))
    source = "\n\n\n".join(parts.classes[n].rstrip("\n") for n in names)
    return code_cell(source, cell_grade_id(module, names),
                      nbgrader={"grade": False, "solution": bool(todos), "locked": not todos},
                      kvkit={"module": module, "classes": names, "todos": todos})


def build_notebook(course: Course, items: list[CheckItem] | None = None) -> dict:
    """The source notebook (with solutions and hidden tests) of ``course`` as nbformat JSON data."""
    layout = course.layout
    items = collect_checks(layout) if items is None else items
    with speaking(course.lang):
        return _build(items, course)


def _build(items: list[CheckItem], course: Course) -> dict:
    layout = course.layout
    work = layout.assignment
    reference = layout.reference
    modules = reference_modules(layout)
    placed: dict[str, list[str]] = {name: [] for name in work.modules}
    checks_done: list[int] = []
    cells = []
    for index, cell in enumerate(parse_template(course.template.read_text(), course.template.name)):
        if cell.kind == "markdown":
            cells.append(markdown_cell(_fill_points(cell.text, items, work.todos, course.lang), f"md_{index:02d}"))
        elif cell.kind == "code":
            cells.append(code_cell(cell.text, f"demo_{index:02d}"))
        elif cell.kind == "setup":
            source = setup_source(header_imports(modules), course.lang)
            cells.append(code_cell(source, "setup", nbgrader={"grade": False, "solution": False, "locked": True}))
        elif cell.kind == "classes":
            module, *names = cell.args
            parts = modules[module]
            missing = [n for n in names if n not in parts.classes]
            if missing:
                raise ValueError(f"template: {module} has no class {', '.join(missing)}")
            cells.append(_classes_cell(module, names, parts))
            placed[module] += names
        else:
            todo = int(cell.args[0])
            cells += check_cells(layout, items, todo)
            checks_done.append(todo)
    for module, parts in modules.items():  # what the template leaves out comes last: each class, then its checks
        if len(set(placed[module])) != len(placed[module]) or set(placed[module]) - set(parts.classes):
            raise ValueError(f"template: {module}'s classes {list(parts.classes)} may each appear once in a "
                             f"%% classes cell, found {placed[module]}")
        for name in [n for n in parts.classes if n not in placed[module]]:
            cells.append(_classes_cell(module, [name], parts))
            placed[module].append(name)
            for todo in [t for t in parts.todo_classes.get(name, []) if t not in checks_done]:
                cells += check_cells(layout, items, todo)
                checks_done.append(todo)
    if sorted(checks_done) != sorted(work.todos):
        raise ValueError(f"template: needs one %% checks cell per TODO {sorted(work.todos)}, found {checks_done}")
    package = {"__init__.py": (reference / work.package / "__init__.py").read_text()}
    for module in work.modules:  # a module's cells in the reference's order, wherever the narrative shows them
        order = list(modules[module].classes)
        mine = sorted((c for c in cells if c["metadata"].get("kvkit", {}).get("module") == module),
                      key=lambda c: order.index(c["metadata"]["kvkit"]["classes"][0]))
        package[module] = {"header": modules[module].header,
                           "cells": [c["metadata"]["nbgrader"]["grade_id"] for c in mine]}
    metadata = {
        "kernelspec": KERNELSPEC,
        "language_info": {"name": "python"},
        "kvkit": {"generated_by": "kvkit notebook (autograder/kvkit/commands/notebook.py); edit the template, not this file",
                  "package": package},
    }
    return {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}


def dumps_notebook(nb: dict) -> str:
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def notebook_points(nb: dict) -> float:
    return sum(c["metadata"]["nbgrader"].get("points", 0) for c in nb["cells"]
               if c["metadata"].get("nbgrader", {}).get("grade"))

"""The reference package cut into notebook cells, and the nbformat cells themselves.

Each module of the reference becomes its header (docstring and imports) and
one part per top-level class or function; the parts holding a TODO's
solution region become answer cells (see :mod:`kvkit.course.template`).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from kvchecks.assignment import Todo

from ..paths import Layout
from ..skeleton import solution_regions


@dataclass
class ModuleParts:
    name: str  # "cache.py"
    header: str  # docstring and imports, before the first class
    classes: dict[str, str]  # class (or function) name -> its source text, in file order
    todo_classes: dict[str, list[int]]  # class name -> the TODO numbers inside it


def split_module(text: str, filename: str, todos: dict[int, Todo]) -> ModuleParts:
    """Cut a module into its header and its top-level classes and functions (nothing else may sit at the top level
    after them); ``classes`` holds both, by name, and ``todo_classes`` the assignment's ``todos`` each holds."""
    tree = ast.parse(text, filename)
    lines = text.splitlines(keepends=True)
    body = [node for node in tree.body]
    first = next((i for i, node in enumerate(body) if isinstance(node, (ast.ClassDef, ast.FunctionDef))), len(body))
    start_of = lambda node: min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])  # noqa: E731
    header_end = start_of(body[first]) - 1 if first < len(body) else len(lines)
    classes: dict[str, str] = {}
    rest = body[first:]
    for index, node in enumerate(rest):
        if not isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            raise ValueError(f"{filename}:{node.lineno}: only classes and functions may follow the imports (the "
                             "notebook maps each one to a cell)")
        # up to the next class, so trailing comment lines (### END SOLUTION) stay with their class
        stop = start_of(rest[index + 1]) - 1 if index + 1 < len(rest) else len(lines)
        classes[node.name] = "".join(lines[start_of(node) - 1:stop]).rstrip() + "\n"
    todo_by_function = {todo.function: todo.number for todo in todos.values()}
    todo_classes: dict[str, list[int]] = {}
    for function, _, _ in solution_regions(text, filename):
        todo_classes.setdefault(function.split(".")[0], []).append(todo_by_function[function])
    return ModuleParts(Path(filename).name, "".join(lines[:header_end]).rstrip() + "\n", classes, todo_classes)


def reference_modules(layout: Layout) -> dict[str, ModuleParts]:
    """Each module of ``layout``'s reference package, cut into parts."""
    work = layout.assignment
    package = layout.reference / work.package
    return {name: split_module((package / name).read_text(), str(package / name), work.todos) for name in work.modules}


def header_imports(modules: dict[str, ModuleParts]) -> list[str]:
    """The absolute import lines of every module header, once each, ``__future__`` first."""
    seen: list[str] = []
    for parts in modules.values():
        for node in ast.parse(parts.header).body:
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0):
                line = ast.unparse(node)
                if line not in seen:
                    seen.append(line)
    return sorted(seen, key=lambda line: not line.startswith("from __future__"))


def cell_grade_id(module: str, classes: list[str]) -> str:
    return f"{Path(module).stem}_{'_'.join(classes)}".lower()


# ----------------------------------------------------------------------------------------------------------------------
# nbformat cells
# ----------------------------------------------------------------------------------------------------------------------
def source_lines(source: str) -> list[str]:
    return source.splitlines(keepends=True)


def code_cell(source: str, cell_id: str, nbgrader: dict | None = None, kvkit: dict | None = None) -> dict:
    metadata: dict = {}
    if nbgrader is not None:
        metadata["nbgrader"] = {"grade_id": cell_id, "schema_version": 3, **nbgrader}
        metadata["editable"] = not nbgrader.get("locked", False)
        metadata["deletable"] = not nbgrader.get("locked", False)
    if kvkit is not None:
        metadata["kvkit"] = kvkit
    return {"cell_type": "code", "execution_count": None, "id": cell_id[:64], "metadata": metadata, "outputs": [],
            "source": source_lines(source.rstrip("\n"))}


def markdown_cell(source: str, cell_id: str) -> dict:
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": source_lines(source.strip("\n"))}

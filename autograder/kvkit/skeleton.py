"""Make an assignment's student skeleton from its reference.

Every TODO's solution is the whole body of one function in ``reference/``,
between a ``### BEGIN SOLUTION`` and a ``### END SOLUTION`` line, right after
the docstring. The build replaces each region with a ``raise
NotImplementedError("TODO n: ...")`` and copies everything else unchanged.
It also writes what the student READMEs generate between their markers: the
TODO table (from the manifest) and the counts of TODOs, checks and points
(:mod:`kvkit.counts`, from the checks; in the kit's docs too).
"""

from __future__ import annotations

import ast
import filecmp
import shutil
import tempfile
from pathlib import Path

from kvchecks.assignment import Todo

from . import assignment_list, counts
from .errors import UsageError
from .paths import Layout
from .registry import ROOT

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
TABLE_BEGIN = "<!-- kvkit build: the TODO table, from the manifest -->"
TABLE_END = "<!-- end of the TODO table -->"


def _functions_by_line(tree: ast.Module) -> dict[int, tuple[str, ast.FunctionDef]]:
    """Map each line number to the innermost function (qualified name, node) holding it."""
    found: dict[int, tuple[str, ast.FunctionDef]] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                for line in range(child.lineno, child.end_lineno + 1):
                    found[line] = (name, child)
                visit(child, f"{name}.")

    visit(tree, "")
    return found


def solution_regions(source: str, filename: str) -> list[tuple[str, int, int]]:
    """``(function, begin_line, end_line)`` for every solution region, 1-based.

    Raises ``ValueError`` when a region is unbalanced, lies outside a TODO
    function, or is not that function's whole body after its docstring.
    """
    tree = ast.parse(source, filename)
    owners = _functions_by_line(tree)
    regions, begin = [], None
    for number, line in enumerate(source.splitlines(), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if begin is not None:
                raise ValueError(f"{filename}:{number}: nested {BEGIN}")
            begin = number
        elif marker == END:
            if begin is None:
                raise ValueError(f"{filename}:{number}: {END} without {BEGIN}")
            name, func = owners.get(begin, ("<module>", None))
            body = func.body if func is not None else []
            first = body[1] if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) else (body[0] if body else None)
            if func is None or first is None or first.lineno != begin + 1 or func.end_lineno != number - 1:
                raise ValueError(f"{filename}:{begin}: a solution region must be the whole body of one function")
            regions.append((name, begin, number))
            begin = None
    if begin is not None:
        raise ValueError(f"{filename}:{begin}: {BEGIN} without {END}")
    return regions


def strip_solutions(todos: dict[int, Todo], source: str, filename: str) -> str:
    """The skeleton text of one reference module of the assignment whose TODOs are ``todos``."""
    todo_by_function = {todo.function: todo for todo in todos.values()}
    lines = source.splitlines(keepends=True)
    for name, begin, end in reversed(solution_regions(source, filename)):
        todo = todo_by_function.get(name)
        if todo is None:
            raise ValueError(f"{filename}:{begin}: {name} is not one of the TODO functions")
        indent = lines[begin - 1][: len(lines[begin - 1]) - len(lines[begin - 1].lstrip())]
        lines[begin - 1 : end] = [f"{indent}raise NotImplementedError({todo.stub_message!r})\n"]
    return "".join(lines)


def build_skeleton(layout: Layout, out: Path) -> None:
    """Write ``layout``'s skeleton package into ``out`` from the reference's; checks every TODO appears exactly
    once."""
    work = layout.assignment
    package = layout.reference / work.package
    seen: list[str] = []
    target = out / work.package
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for src in sorted(package.glob("*.py")):
        text = src.read_text()
        seen += [name for name, _, _ in solution_regions(text, str(src))]
        (target / src.name).write_text(strip_solutions(work.todos, text, str(src)))
    expected = sorted(todo.function for todo in work.todos.values())
    if sorted(seen) != expected:
        raise ValueError(f"solution regions found for {sorted(seen)}, expected exactly one each for {expected}")


def signature(todo: Todo, reference: Path) -> str:
    """``KVCache.update(layer, new_keys, new_values)``: the TODO function as the reference declares it."""
    path = reference / todo.file
    for name, node in set(_functions_by_line(ast.parse(path.read_text(), str(path))).values()):
        if name == todo.function:
            names = [a.arg for a in node.args.args if a.arg != "self"]
            defaults = [""] * (len(names) - len(node.args.defaults)) + [f"={ast.unparse(d)}" for d in node.args.defaults]
            return f"{todo.function}({', '.join(n + d for n, d in zip(names, defaults))})"
    raise ValueError(f"{path}: no function {todo.function}")


TABLE_HEADS = {"en": "| TODO | where | what |", "ja": "| TODO | 場所 | 内容 |"}


def todo_table(layout: Layout, lang: str = "en") -> str:
    """The student README's table of ``layout``'s TODOs: where each one is, and its contract in brief (from the
    manifest), in ``lang`` (an edition's README: its translated contracts)."""
    rows = [TABLE_HEADS[lang], "|---|---|---|"]
    for todo in layout.assignment.todos.values():
        rows.append(f"| {todo.number} | `{todo.file.split('/', 1)[1]}`, `{signature(todo, layout.reference)}` | "
                    f"{todo.contract_in(lang) or todo.task_in(lang)} |")
    return "\n".join(rows) + "\n"


def with_todo_table(layout: Layout, readme: str, lang: str = "en") -> str:
    """``readme`` with the text between the TODO-table markers written afresh (unchanged without markers)."""
    begin, end = readme.find(TABLE_BEGIN), readme.find(TABLE_END)
    if begin < 0 or end < begin:
        return readme
    return readme[:begin + len(TABLE_BEGIN)] + "\n" + todo_table(layout, lang) + readme[end:]


def readmes(layout: Layout, skeleton: Path | None = None) -> dict[str, Path]:
    """The student READMEs in the skeleton folder (``layout``'s, or ``skeleton``) by language: ``README.md`` and
    each edition's."""
    folder = layout.skeleton if skeleton is None else skeleton
    return {"en": folder / "README.md",
            **{lang: folder / edition.readme for lang, edition in layout.assignment.editions.items()}}


def differences(a: Path, b: Path) -> list[str]:
    """Names of ``.py`` files that differ between two package folders (or exist in one only)."""
    names = {p.name for p in a.glob("*.py")} | {p.name for p in b.glob("*.py")}
    return sorted(n for n in names if not ((a / n).exists() and (b / n).exists() and filecmp.cmp(a / n, b / n, shallow=False)))


def current_counts(layout: Layout) -> counts.Counts:
    """``layout``'s TODOs, checks and points as its checks are now (the numbers the docs state)."""
    from .course.checks import collect_checks  # the course's modules import this one

    try:
        items = collect_checks(layout)
    except RuntimeError:
        raise UsageError(f"the checks of {layout.assignment.name} do not collect, so the READMEs' counts cannot be "
                         f"written: `pytest {layout.public_tests.relative_to(ROOT)} --collect-only` says why") from None
    return counts.Counts.of(items, len(layout.assignment.todos))


def generated_readme(layout: Layout, readme: str, lang: str, numbers: counts.Counts) -> str:
    """A student README with its TODO table and its counts (:mod:`kvkit.counts`) written afresh."""
    return counts.fill(with_todo_table(layout, readme, lang), layout.assignment.name, numbers, lang)


def stale_files(layout: Layout, skeleton: Path | None = None) -> list[str]:
    """Files of the committed skeleton (``layout``'s, or ``skeleton``), of its READMEs' TODO tables and counts, and
    of the kit's docs that state its counts, that a fresh build would change."""
    folder = layout.skeleton if skeleton is None else skeleton
    package = layout.assignment.package
    with tempfile.TemporaryDirectory() as tmp:
        build_skeleton(layout, Path(tmp))
        stale = differences(Path(tmp) / package, folder / package)
    numbers = current_counts(layout)
    for lang, readme in readmes(layout, folder).items():
        if readme.is_file() and generated_readme(layout, readme.read_text(), lang, numbers) != readme.read_text():
            stale.append(readme.name)
    docs = [doc.relative_to(ROOT).as_posix() for doc in counts.stale_docs(layout.assignment.name, numbers)]
    if assignment_list.stale() and "README.md" not in docs:
        docs.append("README.md")
    return stale + docs


def write_readmes(layout: Layout) -> None:
    """Write the generated parts of the student READMEs and of the kit's docs: the README's list of the assignments
    and the counts."""
    numbers = current_counts(layout)
    assignment_list.write()
    for lang, readme in readmes(layout).items():
        if readme.is_file():
            readme.write_text(generated_readme(layout, readme.read_text(), lang, numbers))
    counts.write_docs(layout.assignment.name, numbers)

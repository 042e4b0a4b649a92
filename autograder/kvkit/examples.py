"""Example submissions of an assignment (a :class:`~kvkit.paths.Layout`), assembled from its reference with some TODO
bodies swapped out.

An example (listed in the assignment's ``<examples>/examples.toml``) names,
per TODO, a body file in ``<examples>/bodies/`` (or ``mistakes/NAME``; code
at zero indentation);
every other TODO keeps the reference's body, and ``"stub"`` leaves the
skeleton's ``NotImplementedError``. A ``.patch`` file
(:func:`patched_body`) changes a few lines of the reference's own body
instead. Nothing is kept as a second copy of the package, so the examples
follow the reference.
"""

from __future__ import annotations

import textwrap
import tomllib
from pathlib import Path

from kvchecks.assignment import Todo

from .errors import UsageError
from .paths import Layout
from .skeleton import solution_regions


def example_bodies(layout: Layout) -> dict[str, dict[int, str]]:
    """The assignment's example submissions (``<examples>/examples.toml``): name -> TODO -> body file or "stub"."""
    path = layout.examples / "examples.toml"
    if not path.is_file():
        return {}
    with open(path, "rb") as f:
        return {name: {int(todo): body for todo, body in bodies.items()} for name, bodies in tomllib.load(f).items()}


def _indent(body: str, indent: str) -> list[str]:
    return [(indent + line if line.strip() else line) + "\n" for line in body.rstrip("\n").splitlines()]


def with_bodies(todos: dict[int, Todo], source: str, filename: str, bodies: dict[str, str]) -> str:
    """``source`` (a reference module of the assignment whose TODOs are ``todos``) with the solution regions of the
    functions in ``bodies`` replaced.

    ``bodies`` maps a TODO function name to its new body, or to ``"stub"``;
    other regions keep the reference's code (markers removed).
    """
    stubs = {todo.function: f"raise NotImplementedError({todo.stub_message!r})" for todo in todos.values()}
    lines = source.splitlines(keepends=True)
    out, cursor = [], 0
    for name, begin, end in solution_regions(source, filename):
        out += lines[cursor:begin - 1]
        indent = lines[begin - 1][: len(lines[begin - 1]) - len(lines[begin - 1].lstrip())]
        body = bodies.get(name)
        if body is None:
            out += lines[begin:end - 1]
        else:
            out += _indent(stubs[name] if body == "stub" else body, indent)
        cursor = end
    return "".join(out + lines[cursor:])


def body_file(layout: Layout, body: str) -> Path:
    """An example's body file: ``NAME`` in ``bodies/``, or ``FOLDER/NAME`` under the examples (``mistakes/...``)."""
    return layout.examples / (f"{body}.py" if "/" in body else f"bodies/{body}.py")


def example_texts(layout: Layout, name: str) -> dict[str, str]:
    """Example ``name``'s TODO bodies: TODO function -> body text, or ``"stub"``."""
    every = example_bodies(layout)
    if name not in every:
        raise UsageError(f"no example named {name!r}: choose one of {', '.join(sorted(every))}")
    return {layout.assignment.todos[n].function: (body if body == "stub" else body_file(layout, body).read_text())
            for n, body in every[name].items()}


def write_example(layout: Layout, name: str, out: Path) -> Path:
    """Write example ``name`` as ``out/<package>/``; returns ``out``."""
    return write_package(layout, out, example_texts(layout, name))


def write_package(layout: Layout, out: Path, bodies: dict[str, str]) -> Path:
    """Write ``layout``'s package to ``out/<package>/``: the reference with the given TODO bodies swapped in."""
    work = layout.assignment
    target = Path(out) / work.package
    target.mkdir(parents=True, exist_ok=True)
    for src in sorted((layout.reference / work.package).glob("*.py")):
        (target / src.name).write_text(with_bodies(work.todos, src.read_text(), str(src), bodies))
    return Path(out)


def reference_body(layout: Layout, todo: int) -> str:
    """The reference's solution body of TODO ``todo``, at zero indentation."""
    wanted = layout.assignment.todos[todo]
    path = layout.reference / wanted.file
    source = path.read_text()
    lines = source.splitlines(keepends=True)
    for name, begin, end in solution_regions(source, str(path)):
        if name == wanted.function:
            return textwrap.dedent("".join(lines[begin:end - 1]))
    raise LookupError(f"the reference has no solution region for TODO {todo}")


def patched_body(layout: Layout, todo: int, patch: str) -> str:
    """TODO ``todo``'s reference body with ``patch`` applied.

    A patch is hunks separated by blank lines; in each, ``- `` lines are
    consecutive lines of the reference's body (at zero indentation) and
    ``+ `` lines replace them; ``#`` lines are comments. A hunk whose lines
    are not in the body is an error, so a patch that no longer fits the
    reference fails loudly.
    """
    body = reference_body(layout, todo)
    for hunk in patch.split("\n\n"):
        lines = [line for line in hunk.splitlines() if line.strip() and not line.startswith("#")]
        if not lines:
            continue
        old = "".join(line[2:] + "\n" for line in lines if line.startswith("-"))
        new = "".join(line[2:] + "\n" for line in lines if line.startswith("+"))
        if not old or "\n" + old not in "\n" + body:
            raise ValueError(f"patch hunk does not match TODO {todo}'s reference body:\n{hunk}")
        body = ("\n" + body).replace("\n" + old, "\n" + new, 1)[1:]  # whole lines only
    return body


def example_body(layout: Layout, todo: int, path: Path) -> str:
    """The body an example file gives TODO ``todo``: a whole body (``.py``) or a patch of the reference's."""
    text = Path(path).read_text()
    return patched_body(layout, todo, text) if Path(path).suffix == ".patch" else text

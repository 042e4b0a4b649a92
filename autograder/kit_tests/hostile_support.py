"""Building hostile and broken submissions for the kit's tests.

The pieces are in the assignment's ``<examples>/hostile/`` and, for attacks that fit every assignment, in
``autograder/examples/hostile/`` (placeholders ``__PACKAGE__`` and ``__CHECKS__`` name the assignment's package and
checks package).
"""

from __future__ import annotations

from pathlib import Path

from kvkit.examples import reference_body, write_package
from kvkit.paths import Layout
from kvkit.registry import ROOT

SHARED_HOSTILE = ROOT / "autograder" / "examples" / "hostile"


def hostile_text(layout: Layout, name: str, **extra: str) -> str:
    """The hostile piece ``name`` (``layout``'s own, or one every assignment shares), with ``extra`` placeholders
    filled in (``__KVKIT_ROOT__``: the kit's folder)."""
    path = next(p for p in (layout.examples / "hostile" / f"{name}.py", SHARED_HOSTILE / f"{name}.py") if p.is_file())
    work = layout.assignment
    names = {"__KVKIT_ROOT__": str(ROOT), "__PACKAGE__": work.package, "__CHECKS__": work.checks}
    text = path.read_text()
    for key, value in {**names, **extra}.items():
        text = text.replace(key, value)
    return text


def make_submission(layout: Layout, out: Path, bodies: dict[int, str] = {}, at_import: list[str] = (),
                    **extra: str) -> Path:
    """A submission folder of ``layout``'s assignment: the reference with hostile TODO bodies (file names, or "stub")
    and import-time code.

    A body file may hold ``# __REFERENCE_BODY__`` where the reference's body goes.
    """
    texts, todos = {}, layout.assignment.todos
    for todo, name in bodies.items():
        if name == "stub":
            texts[todos[todo].function] = "stub"
        else:
            texts[todos[todo].function] = hostile_text(layout, name, **extra).replace("# __REFERENCE_BODY__",
                                                                                      reference_body(layout, todo))
    write_package(layout, out, texts)
    init = Path(out) / layout.assignment.package / "__init__.py"
    for name in at_import:
        init.write_text(init.read_text() + "\n" + hostile_text(layout, name, **extra) + "\n")
    return Path(out)


def scores(report) -> dict[int, tuple[float, float]]:
    """``{todo: (earned, possible)}``."""
    return {todo: (got, possible) for todo, got, possible in report.by_todo()}


def full(report, todo: int) -> bool:
    got, possible = scores(report)[todo]
    return got == possible > 0


def failures(report, todo: int | None = None) -> list[str]:
    return [r.message for r in report.results if not r.passed and (todo is None or r.todo == todo)]

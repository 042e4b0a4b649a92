"""Building hostile and broken submissions for the kit's tests (see ``autograder/examples/hostile/``)."""

from __future__ import annotations

from pathlib import Path

from kvkit.paths import TODOS
from kvkit.examples import reference_body, write_package
from kvkit.paths import EXAMPLES, ROOT

HOSTILE = EXAMPLES / "hostile"


def hostile_text(name: str, **extra: str) -> str:
    """The hostile piece ``name``, with ``extra`` placeholders filled in (``__KVKIT_ROOT__``: the kit's folder)."""
    text = (HOSTILE / f"{name}.py").read_text()
    for key, value in {**extra, "__KVKIT_ROOT__": extra.get("__KVKIT_ROOT__", str(ROOT))}.items():
        text = text.replace(key, value)
    return text


def make_submission(out: Path, bodies: dict[int, str] = {}, at_import: list[str] = (), **extra: str) -> Path:
    """A submission folder: the reference with hostile TODO bodies (file names, or "stub") and import-time code.

    A body file may hold ``# __REFERENCE_BODY__`` where the reference's body goes.
    """
    texts = {}
    for todo, name in bodies.items():
        if name == "stub":
            texts[TODOS[todo].function] = "stub"
        else:
            texts[TODOS[todo].function] = hostile_text(name, **extra).replace("# __REFERENCE_BODY__",
                                                                              reference_body(todo))
    write_package(out, texts)
    init = Path(out) / "kvcache" / "__init__.py"
    for name in at_import:
        init.write_text(init.read_text() + "\n" + hostile_text(name, **extra) + "\n")
    return Path(out)


def scores(report) -> dict[int, tuple[float, float]]:
    """``{todo: (earned, possible)}``."""
    return {todo: (got, possible) for todo, got, possible in report.by_todo()}


def full(report, todo: int) -> bool:
    got, possible = scores(report)[todo]
    return got == possible > 0


def failures(report, todo: int | None = None) -> list[str]:
    return [r.message for r in report.results if not r.passed and (todo is None or r.todo == todo)]

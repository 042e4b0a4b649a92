"""Which check is running, and how the TODOs have done so far: what failure messages are written from.

A runner (the pytest plugin, the notebook's checks) calls :func:`begin` before
each graded check with the TODO its marker names, and :func:`record` after it.
:mod:`kvchecks.expect` reads the TODO from here, so a test never repeats it,
and :func:`whole_model_note` tells a failing whole-model check which of the
TODOs it depends on have failed their own checks so far.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import assignment
from .i18n import N_, _


@dataclass
class Progress:
    todo: int | None = None
    passed: dict[int, int] = field(default_factory=dict)
    failed: dict[int, int] = field(default_factory=dict)


CURRENT = Progress()


def begin(todo: int | None) -> None:
    CURRENT.todo = todo


def record(todo: int, passed: bool) -> None:
    counts = CURRENT.passed if passed else CURRENT.failed
    counts[todo] = counts.get(todo, 0) + 1


def reset() -> None:
    CURRENT.todo = None
    CURRENT.passed.clear()
    CURRENT.failed.clear()


def _joined(items: list[str], pattern: str) -> str:
    """``items`` joined pairwise by ``pattern`` (``"{first} and {second}"``), in the language asked for."""
    text = items[0]
    for item in items[1:]:
        text = _(pattern).format(first=text, second=item)
    return text


def whole_model_note(needs: tuple[int, ...]) -> str:
    """What a failing check that also runs the TODOs ``needs`` should say about them."""
    labels = lambda todos: _joined([f"TODO {n}" for n in todos], N_("{first} and {second}"))  # noqa: E731
    failing = [n for n in needs if CURRENT.failed.get(n)]
    unknown = [n for n in needs if not CURRENT.failed.get(n) and not CURRENT.passed.get(n)]
    if failing:
        counts = _joined([_("TODO {todo} fails {failed} of {total}").format(
            todo=n, failed=CURRENT.failed[n], total=CURRENT.failed[n] + CURRENT.passed.get(n, 0)) for n in failing],
            N_("{first}, {second}"))
        return _("This check runs the whole model, which uses {todos}; {counts} of its checks so far: fix those "
                 "first.").format(todos=labels(needs), counts=counts)
    if unknown:
        return _("This check runs the whole model, which also uses {todos}; run their checks too (plain `pytest`) "
                 "to see whether the cause lies there.").format(todos=labels(needs))
    todos = assignment.current().todos
    mine = f"TODO {CURRENT.todo} ({todos[CURRENT.todo].function})" if CURRENT.todo in todos else _("this TODO")
    return _("This check runs the whole model; {todos} pass all their checks so far, so look at {mine} "
             "first.").format(todos=labels(needs), mine=mine)

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


def whole_model_note(needs: tuple[int, ...]) -> str:
    """What a failing check that also runs the TODOs ``needs`` should say about them."""
    labels = lambda todos: " and ".join(f"TODO {n}" for n in todos)  # noqa: E731
    failing = [n for n in needs if CURRENT.failed.get(n)]
    unknown = [n for n in needs if not CURRENT.failed.get(n) and not CURRENT.passed.get(n)]
    if failing:
        counts = ", ".join(f"TODO {n} fails {CURRENT.failed[n]} of "
                           f"{CURRENT.failed[n] + CURRENT.passed.get(n, 0)}" for n in failing)
        return (f"This check runs the whole model, which uses {labels(needs)}; {counts} of its checks so far: "
                "fix those first.")
    if unknown:
        return (f"This check runs the whole model, which also uses {labels(needs)}; run their checks too "
                f"(plain `pytest`) to see whether the cause lies there.")
    todos = assignment.current().todos
    mine = f"TODO {CURRENT.todo} ({todos[CURRENT.todo].function})" if CURRENT.todo in todos else "this TODO"
    return (f"This check runs the whole model; {labels(needs)} pass all their checks so far, so look at {mine} "
            "first.")

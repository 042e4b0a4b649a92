"""Which check is running, and how the TODOs have done so far: what failure messages are written from.

A runner (the pytest plugin, the notebook's checks) calls :func:`begin` before
each graded check with the TODO its marker names, and :func:`record` after it.
:mod:`kvchecks.expect` reads the TODO from here, so a test never repeats it.
While a check runs, :func:`runs` collects the other TODOs it says it runs (the
``needs`` of :mod:`kvchecks.expect`, the TODOs a student's exception passed
through), :func:`reached_stub` the TODOs it found not implemented and
:func:`recognised` the TODOs of the known mistakes it recognised; the runner
hands them to :mod:`kvchecks.blame`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Progress:
    todo: int | None = None
    passed: dict[int, int] = field(default_factory=dict)
    failed: dict[int, int] = field(default_factory=dict)
    uses: set = field(default_factory=set)  # the running check's other TODOs, found while it runs
    unfinished: set = field(default_factory=set)  # TODOs whose NotImplementedError the running check met
    recognised: set = field(default_factory=set)  # TODOs of the known mistakes the running check recognised
    package_broken: bool = False  # the student's package did not import: every check failed for that alone


CURRENT = Progress()


def begin(todo: int | None) -> None:
    CURRENT.todo = todo
    CURRENT.uses.clear()
    CURRENT.unfinished.clear()
    CURRENT.recognised.clear()


def runs(todos) -> None:
    """The running check runs these TODOs too (numbers; anything else is ignored)."""
    CURRENT.uses.update(t for t in todos if type(t) is int)


def reached_stub(todo) -> None:
    """The running check met TODO ``todo``'s ``NotImplementedError``."""
    if type(todo) is int:
        CURRENT.unfinished.add(todo)
        CURRENT.uses.add(todo)


def recognised(todos) -> None:
    """The running check recognised a known mistake of these TODOs in what the student's code computed."""
    found = {t for t in todos if type(t) is int}
    CURRENT.recognised.update(found)
    CURRENT.uses.update(found)


def import_failed() -> None:
    """The student's package did not import (a backend says so when it reports the import error)."""
    CURRENT.package_broken = True


def record(todo: int, passed: bool) -> None:
    counts = CURRENT.passed if passed else CURRENT.failed
    counts[todo] = counts.get(todo, 0) + 1


def reset() -> None:
    CURRENT.todo = None
    CURRENT.package_broken = False
    CURRENT.passed.clear()
    CURRENT.failed.clear()
    CURRENT.uses.clear()
    CURRENT.unfinished.clear()
    CURRENT.recognised.clear()

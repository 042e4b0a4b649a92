"""Which TODO a failing check blames: its own, another TODO that blocks it, or none that can be known.

Every graded check grades one TODO (its ``todoN`` marker) and declares the
other TODOs whose code it runs (``@pytest.mark.uses(1, 2)``, a trusted marker
in the check files; the ``needs`` a check passes to :mod:`kvchecks.expect` and
the TODOs the student's exceptions pass through are added while it runs). A
check that runs only its own TODO is a *unit check* of that TODO.

A failing check ``c`` of TODO ``i`` that runs the TODOs ``U`` is judged from
the other checks of the same run, smaller ones first:

- **own**: it runs no other TODO; or every other TODO in ``U`` passed the checks
  that ran it without ``i`` (its unit checks, or any check whose TODOs all lie
  in ``U`` but not ``i``), so the cause is in TODO ``i``;
- **blocked by TODO j**: a check that runs only TODOs of ``U`` other than ``i``
  fails too, and blames TODO ``j``; or some failing check knows TODO ``j`` is
  wrong (it reached TODO ``j``'s ``NotImplementedError``, or what it got is
  exactly what a known mistake of TODO ``j`` computes). Fix TODO ``j`` first:
  this check says nothing about TODO ``i`` until then;
- **cause not known**: some other TODO in ``U`` had no check run without ``i``
  (e.g. ``pytest -m todo3``), or checks of two TODOs that run each other both
  fail while both TODOs pass their own checks. The feedback says so rather
  than guess.

A blocked check scores 0, as every failing check does, on every path: the
self-check, ``kvkit grade``, Gradescope and nbgrader all read these verdicts
from the same :class:`~kvchecks.plugin.Result` objects. No reference code runs
in the student's process to decide: only the verdicts of the checks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from . import assignment, context
from .i18n import N_, _, ngettext

OWN, BLOCKED, UNKNOWN = "own", "blocked", "unknown"


@dataclass(frozen=True)
class Record:
    """What the blame needs of one check's run."""

    todo: int
    uses: frozenset  # the TODOs whose code it runs, its own included
    passed: bool
    unfinished: frozenset = frozenset()  # TODOs it found not implemented (their NotImplementedError)
    recognised: frozenset = frozenset()  # TODOs whose known mistake it recognised in the student's output


@dataclass(frozen=True)
class Blame:
    kind: str  # OWN, BLOCKED or UNKNOWN
    todos: tuple[int, ...] = ()  # BLOCKED: the TODOs to fix first; UNKNOWN: the TODOs it could not clear;
    # OWN: the other TODOs it runs (which passed without it)
    untested: bool = False  # UNKNOWN because those TODOs had no check run without this one
    unfinished: bool = False  # BLOCKED because the check reached those TODOs' NotImplementedError


def assign(records: list[Record]) -> list[Blame | None]:
    """The blame of each record (None for a passing check), judged from all the records together."""
    first = _judge(records, {})
    known = _known(records)
    # Two TODOs that each pass their own checks, with failing checks of each that run the other: which one is
    # wrong cannot be told from these checks, so neither is blamed (unless a check knows the culprit).
    rivals: dict[int, tuple[int, ...]] = {}
    for n, verdict in enumerate(first):
        if verdict is None or verdict.kind != OWN or not verdict.todos or records[n].todo in known:
            continue
        record = records[n]
        found = sorted({records[m].todo for m, other in enumerate(first)
                        if other is not None and other.kind == OWN and other.todos
                        and records[m].todo in verdict.todos and record.todo in records[m].uses
                        and records[m].uses <= record.uses})
        if found:
            rivals[n] = tuple(found)
    return _judge(records, rivals) if rivals else first


def _known(records: list[Record]) -> frozenset:
    """The TODOs some failing check knows to be wrong: it reached their ``NotImplementedError``, or recognised a
    known mistake of theirs in what the student's code computed while the other TODOs it runs pass the checks that
    run them without its own (a wrong dependency can compute what a mistake of the caller would)."""
    found = set()
    for r in records:
        if r.passed:
            continue
        found |= r.unfinished
        if r.recognised and not _failing_inside(records, r):
            found |= r.recognised
    return frozenset(found)


def _failing_inside(records: list[Record], record: Record) -> bool:
    others = record.uses - {record.todo}
    return any(not other.passed and other.uses <= others for other in records if other is not record)


def _judge(records: list[Record], rivals: dict[int, tuple[int, ...]]) -> list[Blame | None]:
    verdicts: list[Blame | None] = [None] * len(records)
    known = _known(records)
    culprits: dict[int, frozenset | None] = {}  # failing record -> the TODOs it blames (None: not known)
    order = sorted((n for n, r in enumerate(records) if not r.passed), key=lambda n: len(records[n].uses))
    for n in order:
        record = records[n]
        others = record.uses - {record.todo}
        if record.unfinished:  # a stub it reached: the first thing to finish, whatever else is wrong
            stubs = frozenset(record.unfinished)
            if record.todo in stubs:
                verdicts[n], culprits[n] = Blame(OWN), frozenset({record.todo})
            else:
                verdicts[n], culprits[n] = Blame(BLOCKED, tuple(sorted(stubs)), unfinished=True), stubs
            continue
        if record.recognised and not _failing_inside(records, record):  # exactly what a known mistake computes
            found = frozenset(record.recognised)
            if record.todo in found:
                verdicts[n], culprits[n] = Blame(OWN), frozenset({record.todo})
            else:
                verdicts[n], culprits[n] = Blame(BLOCKED, tuple(sorted(found))), found
            continue
        if not others:
            verdicts[n], culprits[n] = Blame(OWN), frozenset({record.todo})
            continue
        if others & known:  # another TODO it runs is known to be wrong
            found = others & known
            verdicts[n], culprits[n] = Blame(BLOCKED, tuple(sorted(found))), found
            continue
        if n in rivals:
            verdicts[n], culprits[n] = Blame(UNKNOWN, rivals[n]), None
            continue
        inside = [m for m, other in enumerate(records) if m != n and other.uses <= others]  # ran part of it, not i
        failing = [m for m in inside if not records[m].passed]
        found = frozenset().union(*(culprits.get(m) or () for m in failing))
        if found:
            verdicts[n], culprits[n] = Blame(BLOCKED, tuple(sorted(found))), found
        elif failing:  # they fail for a cause not known: neither can this check's be
            verdicts[n], culprits[n] = Blame(UNKNOWN, tuple(sorted({records[m].todo for m in failing}))), None
        elif untested := sorted(k for k in others if not any(records[m].todo == k for m in inside)):
            verdicts[n], culprits[n] = Blame(UNKNOWN, tuple(untested), untested=True), None
        else:
            verdicts[n], culprits[n] = Blame(OWN, tuple(sorted(others))), frozenset({record.todo})
    return verdicts


def _joined(items: list[str]) -> str:
    """``items`` joined as a list, in the language asked for (``A and B``, ``A, B and C``)."""
    text = items[0]
    for position, item in enumerate(items[1:], start=2):
        pattern = N_("{first} and {second}") if position == len(items) else N_("{first}, {second}")
        text = _(pattern).format(first=text, second=item)
    return text


def todos_text(todos) -> str:
    """``TODO 1 (Attention.forward) and TODO 2 (apply_rotary)``."""
    named = assignment.current().todos
    return _joined([f"TODO {n} ({named[n].function})" if n in named else f"TODO {n}" for n in sorted(todos)])


def short_text(todos) -> str:
    """``TODO 1 and TODO 2``."""
    return _joined([f"TODO {n}" for n in sorted(todos)])


def blocked_line(blame: Blame, todo: int) -> str:
    """The first line of a blocked check's message."""
    count = len(blame.todos)
    label = f"TODO {todo} ({assignment.current().todos[todo].function}): "
    if blame.unfinished:
        return label + ngettext("blocked by {todos}, which is not implemented yet: this check runs it too, and says "
                                "nothing about TODO {mine} until it is.",
                                "blocked by {todos}, which are not implemented yet: this check runs them too, and "
                                "says nothing about TODO {mine} until they are.", count).format(
            todos=todos_text(blame.todos), mine=todo)
    return label + ngettext("blocked by {todos}, which fails its own checks: this check runs it too, and says nothing about "
                    "TODO {mine} until it passes. Fix it first.",
                    "blocked by {todos}, which fail their own checks: this check runs them too, and says nothing "
                    "about TODO {mine} until they pass. Fix them first.", count).format(
        todos=todos_text(blame.todos), mine=todo)


def note(blame: Blame, todo: int) -> str:
    """The line a failing check that runs other TODOs ends with (empty for a unit check and for a blocked one)."""
    if blame.kind == OWN and blame.todos:
        return ngettext("This check also runs {todos}, which passes its own checks, so look at TODO {mine} first.",
                        "This check also runs {todos}, which pass their own checks, so look at TODO {mine} first.",
                        len(blame.todos)).format(todos=short_text(blame.todos), mine=todo)
    if blame.kind == UNKNOWN and blame.untested:
        return ngettext("This check also runs {todos}, whose own checks did not run: the cause is not known. Run all "
                        "the checks (plain `pytest`) to find it.",
                        "This check also runs {todos}, whose own checks did not run: the cause is not known. Run all "
                        "the checks (plain `pytest`) to find it.", len(blame.todos)).format(
            todos=short_text(blame.todos))
    if blame.kind == UNKNOWN:
        return _("The cause is not known: this check also runs {todos}, and the checks cannot tell which of TODO "
                 "{mine} and {todos} is wrong: their own checks pass, and the checks that run them together "
                 "fail.").format(todos=short_text(blame.todos), mine=todo)
    return ""


def message(text: str, blame: Blame | None, todo: int) -> str:
    """A failing check's message with its blame: a blocked check says so first; others end with the note."""
    if blame is None:
        return text
    if blame.kind == BLOCKED:
        return blocked_line(blame, todo) + "\n" + text
    extra = note(blame, todo)
    return text + ("\n  " + extra if extra else "")


def apply(results: list) -> list:
    """``results`` (:class:`~kvchecks.plugin.Result`) with their blame: each failing one's ``blame`` and
    ``blocked_by`` set and its message told so (see :func:`message`). Results that already carry a blame are
    taken as they are."""
    if any(r.blame for r in results) or context.CURRENT.package_broken:  # an import error blames no TODO
        return list(results)
    verdicts = assign([record_of(r) for r in results])
    out = []
    for result, verdict in zip(results, verdicts):
        if verdict is None:
            out.append(result)
            continue
        blocked = verdict.todos if verdict.kind == BLOCKED else ()
        out.append(replace(result, message=message(result.message, verdict, result.todo), blame=verdict.kind,
                           blocked_by=tuple(blocked)))
    return out


def record_of(result) -> Record:
    """What :func:`assign` needs of a :class:`~kvchecks.plugin.Result`."""
    return Record(result.todo, frozenset(result.uses) | {result.todo}, result.passed, frozenset(result.unfinished),
                  frozenset(getattr(result, "recognised", ())))


def blocking(results: list) -> dict[int, int]:
    """TODO -> how many failing checks of other TODOs it blocks (the TODOs to fix first)."""
    counts: dict[int, int] = {}
    for r in results:
        for todo in r.blocked_by:
            counts[todo] = counts.get(todo, 0) + 1
    return counts

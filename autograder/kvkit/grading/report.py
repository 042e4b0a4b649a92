"""Grading results: the per-test table a person reads and Gradescope's ``results.json``.

A failing check that is blocked by another TODO (:mod:`kvchecks.blame`: it
runs that TODO's code, which fails its own checks) scores 0 like every failing
check; the table marks it ``blocked``, the per-TODO lines count such checks,
and its message (in every report, ``results.json`` and nbgrader's verdicts)
starts by naming the TODO to fix first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from kvchecks import blame
from kvchecks.assignment import Todo
from kvchecks.i18n import N_, _, ljust, ngettext, rjust, speaking
from kvchecks.plugin import Result, fix_first

MAX_OUTPUT = 2000
VERDICTS = {(True, False): N_("pass (public)"), (True, True): N_("pass (hidden)"),  # (passed, hidden) -> the
            (False, False): N_("FAIL (public)"), (False, True): N_("FAIL (hidden)")}  # table's result column
BLOCKED = {False: N_("blocked by {todos} (public)"), True: N_("blocked by {todos} (hidden)")}  # a blocked check's


@dataclass
class Report:
    submission: str
    todos: dict[int, Todo]  # the assignment's TODOs (its manifest's), one line each in the table
    results: list[Result]
    seconds: float
    lang: str = "en"  # the language the checks' messages and the notes are in, and the table is written in
    notes: list[str] = field(default_factory=list)
    fresh_key: str | None = None  # the key of the fresh inputs (KVKIT_FRESH_KEY draws the same ones again)

    @property
    def score(self) -> float:
        return sum(r.points for r in self.results if r.passed)

    @property
    def max_score(self) -> float:
        return sum(r.points for r in self.results)

    def by_todo(self) -> list[tuple[int, float, float]]:
        """``(todo, earned, possible)`` for each TODO."""
        rows = []
        for todo in self.todos:
            mine = [r for r in self.results if r.todo == todo]
            rows.append((todo, sum(r.points for r in mine if r.passed), sum(r.points for r in mine)))
        return rows

    def table(self) -> str:
        """The report a person reads, in the report's language."""
        with speaking(self.lang):
            return self._table()

    def _table(self) -> str:
        width = max(len(r.name) for r in self.results) if self.results else 10
        check, points, result = _("check"), _("points"), _("result")  # the columns' headings
        lines = [_("Grading {submission}").format(submission=self.submission),
                 f"{'TODO':<5} {ljust(check, width)}  {rjust(points, 7)}  {result}"]
        for r in sorted(self.results, key=lambda r: (r.todo, r.hidden, r.name)):
            got = f"{r.points if r.passed else 0:g}/{r.points:g}"
            verdict = _(VERDICTS[r.passed, r.hidden])
            if not r.passed and r.blame == blame.BLOCKED:
                verdict = _(BLOCKED[r.hidden]).format(todos=blame.short_text(r.blocked_by))
            lines.append(f"{r.todo:<5} {r.name:<{width}}  {got:>7}  {verdict}")
        failures = [r for r in self.results if not r.passed]
        if failures:
            lines.append("")
            lines.append(_("Why checks failed (first line of each):"))
            for r in failures:
                first = (r.message.strip().splitlines() or [_("(no message)")])[0]
                lines.append(f"  {r.name}: {first[:300]}")
        lines.append("")
        for todo, got, possible in self.by_todo():
            line = _("TODO {todo} {function:<32} {got:g} / {possible:g}").format(
                todo=todo, function=self.todos[todo].function, got=got, possible=possible)
            blocked = [r for r in self.results if r.todo == todo and not r.passed and r.blame == blame.BLOCKED]
            if blocked:
                line += "   " + ngettext("({count} check blocked by {todos})", "({count} checks blocked by {todos})",
                                         len(blocked)).format(count=len(blocked), todos=blame.short_text(
                                             {t for r in blocked for t in r.blocked_by}))
            lines.append(line)
        first = blame.blocking([r for r in self.results if not r.passed])
        if first:
            lines.append(fix_first(first))
        lines.extend(self.notes)
        if self.fresh_key:
            lines.append(_("Every check also ran on fresh inputs (KVKIT_FRESH_KEY={key} draws them again).").format(
                key=self.fresh_key))
        lines.append(_("Total: {score:g} / {max_score:g}   (graded in {seconds:.1f} s)").format(
            score=self.score, max_score=self.max_score, seconds=self.seconds))
        return "\n".join(lines)

    def gradescope(self) -> dict:
        """Gradescope's results format; hidden checks' results appear only once grades are published."""
        tests = [
            {
                "name": f"TODO {r.todo}: {r.name}",
                "score": r.points if r.passed else 0,
                "max_score": r.points,
                "status": "passed" if r.passed else "failed",
                "output": r.message[:MAX_OUTPUT],
                "visibility": "after_published" if r.hidden else "visible",
            }
            for r in sorted(self.results, key=lambda r: (r.todo, r.hidden, r.name))
        ]
        return {"score": self.score, "max_score": self.max_score, "execution_time": round(self.seconds, 2),
                "output": "\n".join(self.notes), "tests": tests}

    def write_json(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.gradescope(), indent=2) + "\n")

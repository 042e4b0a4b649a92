"""Grading results: the per-test table a person reads and Gradescope's ``results.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from kvchecks.plugin import Result
from .paths import TODOS

MAX_OUTPUT = 2000


@dataclass
class Report:
    submission: str
    results: list[Result]
    seconds: float
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
        for todo in TODOS:
            mine = [r for r in self.results if r.todo == todo]
            rows.append((todo, sum(r.points for r in mine if r.passed), sum(r.points for r in mine)))
        return rows

    def table(self) -> str:
        width = max(len(r.name) for r in self.results) if self.results else 10
        lines = [f"Grading {self.submission}", f"{'TODO':<5} {'check':<{width}}  {'points':>7}  result"]
        for r in sorted(self.results, key=lambda r: (r.todo, r.hidden, r.name)):
            kind = "hidden" if r.hidden else "public"
            got = f"{r.points if r.passed else 0:g}/{r.points:g}"
            lines.append(f"{r.todo:<5} {r.name:<{width}}  {got:>7}  {'pass' if r.passed else 'FAIL'} ({kind})")
        failures = [r for r in self.results if not r.passed]
        if failures:
            lines.append("")
            lines.append("Why checks failed (first line of each):")
            for r in failures:
                first = (r.message.strip().splitlines() or ["(no message)"])[0]
                lines.append(f"  {r.name}: {first[:300]}")
        lines.append("")
        for todo, got, possible in self.by_todo():
            lines.append(f"TODO {todo} {TODOS[todo].function:<32} {got:g} / {possible:g}")
        lines.extend(self.notes)
        if self.fresh_key:
            lines.append(f"Every check also ran on fresh inputs (KVKIT_FRESH_KEY={self.fresh_key} draws them again).")
        lines.append(f"Total: {self.score:g} / {self.max_score:g}   (graded in {self.seconds:.1f} s)")
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

"""The numbers the docs state about an assignment (its TODOs, checks and points), written by ``kvkit build``
between markers, so that a new check or TODO never leaves a stale count behind.

A region is ``<!-- kvkit build: FIELD of NAME -->TEXT<!-- end -->``: ``FIELD`` one of :data:`FIELDS`, ``NAME``
the assignment whose numbers ``TEXT`` states. Regions stand in the assignment's student READMEs (written in each
README's language) and in the kit's own docs (``README.md``, ``docs/*.md``, in English). ``kvkit --assignment
NAME build`` rewrites NAME's regions, ``build --check`` names the files where one is stale.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .registry import ROOT

REGION = re.compile(r"<!-- kvkit build: (?P<field>[a-z ]+?) of (?P<name>\w+) -->(?P<text>.*?)<!-- end -->", re.S)


@dataclass(frozen=True)
class Counts:
    todos: int
    checks: int  # graded checks, public and hidden, each parameter case counted
    points: float  # all of them
    public: float  # the public checks'

    @classmethod
    def of(cls, items: Iterable, todos: int) -> Counts:
        """The counts of the collected checks ``items`` (each with ``points`` and ``hidden``)."""
        items = list(items)
        return cls(todos, len(items), sum(i.points for i in items), sum(i.points for i in items if not i.hidden))


def _english(count: float, noun: str) -> str:
    return f"{count:g} {noun}" + ("" if count == 1 else "s")


FIELDS: dict[str, dict[str, Callable[[Counts], str]]] = {
    "todos": {"en": lambda c: _english(c.todos, "TODO"), "ja": lambda c: f"TODO {c.todos} 個"},
    "checks": {"en": lambda c: _english(c.checks, "check"), "ja": lambda c: f"チェック {c.checks} 個"},
    "points": {"en": lambda c: _english(c.points, "point"), "ja": lambda c: f"{c.points:g} 点"},
    "points in all": {"en": lambda c: f"{_english(c.points, 'point')} in all, {c.public:g} of them in the public "
                                      "checks",
                      "ja": lambda c: f"合計 {c.points:g} 点（うち公開チェックで {c.public:g} 点）"},
}


def fill(text: str, name: str, counts: Counts, lang: str) -> str:
    """``text`` with every region of assignment ``name`` written afresh in ``lang`` (other assignments' regions
    unchanged); ``ValueError`` for a field that is not one of :data:`FIELDS`."""
    def region(match: re.Match) -> str:
        field = match.group("field")
        if match.group("name") != name:
            return match.group(0)
        if field not in FIELDS:
            raise ValueError(f"<!-- kvkit build: {field} of {name} -->: no such count; the fields are "
                             f"{', '.join(FIELDS)}")
        return f"<!-- kvkit build: {field} of {name} -->{FIELDS[field][lang](counts)}<!-- end -->"
    return REGION.sub(region, text)


def kit_docs() -> list[Path]:
    """The kit's own docs, which may state any assignment's numbers (in English)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def stale_docs(name: str, counts: Counts) -> list[Path]:
    """The kit's docs whose regions of assignment ``name`` are not what ``counts`` gives."""
    return [doc for doc in kit_docs() if fill(doc.read_text(), name, counts, "en") != doc.read_text()]


def write_docs(name: str, counts: Counts) -> None:
    """Write assignment ``name``'s regions of the kit's docs afresh (a doc without one is left untouched)."""
    for doc in stale_docs(name, counts):
        doc.write_text(fill(doc.read_text(), name, counts, "en"))

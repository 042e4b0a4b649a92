"""Common mistakes recognised by what they compute, and the hint each one earns.

For some probe calls the saved goldens also hold what a package with one
known mistake observes (recorded by ``kvkit goldens`` from the instructors'
example bodies, ``<examples>/mistakes/<name>.py``). When a student's
observation differs from the reference's but equals a mistake's, the failure
message adds that mistake's hint, so a hint is only ever shown for the
mistake that produces exactly what the student's code produced. Each
assignment lists its own mistakes (``MISTAKES`` of its checks package).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import assignment
from .i18n import _


@dataclass(frozen=True)
class Mistake:
    name: str  # also the body file <examples>/mistakes/<name>.py
    todo: int  # the TODO whose body the mistake replaces
    probe: str  # the probe whose observations reveal it
    hint: str  # marked with N_ and translated by hint()


def registry() -> dict[str, Mistake]:
    """The assignment's known mistakes by name."""
    return {m.name: m for m in getattr(assignment.current().checks_module(), "MISTAKES", ())}


def for_probe(probe: str) -> list[Mistake]:
    return [m for m in registry().values() if m.probe == probe]


def hint(name: str) -> str:
    """The mistake's hint in the language asked for (the checks package marks its hints with ``N_``)."""
    return _(registry()[name].hint)

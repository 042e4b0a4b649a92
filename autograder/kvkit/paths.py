"""Where the kit's folders are: the repository root, and each assignment's folders (one pattern for all of them).

The assignments are the manifests ``tests/NAME/assignment.toml`` (see :mod:`kvkit.registry`). An assignment is a
value, a :class:`Layout` (its manifest and its folders), which every command and function that works on one is
given: ``kvkit --assignment NAME`` makes it (:meth:`Layout.named`; without the option, the first of
:func:`layouts`), and nothing about an assignment is decided at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kvchecks.assignment import Assignment, load

from .errors import UsageError
from .registry import ROOT, manifests


@dataclass(frozen=True)
class Layout:
    """An assignment and its folders in the repository."""

    assignment: Assignment

    @classmethod
    def named(cls, name: str) -> Layout:
        """The kit's assignment ``name``; ``UsageError`` naming the kit's assignments when it has none so called."""
        every = manifests()
        if name not in every:
            raise UsageError(f"no assignment called {name!r}; the kit has {', '.join(every)}")
        return cls(load(every[name]))

    def _folder(self, role: str) -> Path:
        return ROOT / self.assignment.folders[role]

    @property
    def reference(self) -> Path:
        """The folder holding the solution package."""
        return self._folder("reference")

    @property
    def skeleton(self) -> Path:
        """The folder ``kvkit build`` writes the student's package into."""
        return self._folder("skeleton")

    @property
    def public_tests(self) -> Path:
        return self._folder("public_tests")

    @property
    def hidden_tests(self) -> Path:
        return self._folder("hidden_tests")

    @property
    def material(self) -> Path:
        """The instructor's material of this assignment, in one folder: ``autograder/material/<name>/``."""
        return self._folder("material")

    def notebook_template(self, lang: str = "en") -> Path:
        """The notebook's narrative with ``%%`` cell markers: ``notebook/notebook.md``, ``notebook.<lang>.md``."""
        return self.material / "notebook" / ("notebook.md" if lang == "en" else f"notebook.{lang}.md")

    @property
    def student(self) -> Path:
        """Files the student's zip holds at its top (pytest settings, requirements, scripts)."""
        return self.material / "student"

    @property
    def examples(self) -> Path:
        """Example submissions' pieces: bodies, clause breakers, known mistakes, hostile code."""
        return self.material / "examples"

    @property
    def contract(self) -> Path:
        """The contract table: one row per clause of each TODO, the checks that grade it and a breaking example."""
        return self.material / "contract.md"

    @property
    def tools(self) -> Path:
        """The assignment's own commands (a bench, demos): a package whose ``COMMANDS`` names its modules."""
        return self.material / "tools"


def layouts() -> list[Layout]:
    """Every assignment of the kit, in the order of their ``part`` (the first is the default)."""
    return [Layout(load(manifest)) for manifest in manifests().values()]

"""Where the kit's folders are: the repository root, and each assignment's folders (one pattern for all of them).

The assignments are the manifests ``tests/NAME/assignment.toml`` (see :mod:`kvkit.registry`);
the module-level names below are the folders of this run's assignment
(``kvkit --assignment NAME``, else the first).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kvchecks.assignment import Assignment, current

from .registry import ROOT, ensure_chosen

@dataclass(frozen=True)
class Layout:
    """An assignment and its folders in the repository."""

    assignment: Assignment

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

    @property
    def source(self) -> Path:
        """The nbgrader source folder, ``source/<name>/``."""
        return ROOT / "source" / self.assignment.name

    @property
    def release(self) -> Path:
        """The nbgrader release folder, ``release/<name>/``."""
        return ROOT / "release" / self.assignment.name


ensure_chosen()
DEFAULT = Layout(current())  # the assignment of this run: kvkit --assignment, else the first listed
ASSIGNMENT = DEFAULT.assignment
REFERENCE = DEFAULT.reference
ASSIGNMENTS = DEFAULT.skeleton
PUBLIC_TESTS = DEFAULT.public_tests
HIDDEN_TESTS = DEFAULT.hidden_tests
TODOS = ASSIGNMENT.todos
EXAMPLES = DEFAULT.examples

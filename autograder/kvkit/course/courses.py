"""The nbgrader assignments one of the kit's assignments gives: its course in English and one per edition.

An edition (the manifest's ``[editions.LANG]``) is the same package, the same checks and the same points, with the
narrative of its own template and every generated text (the TODO table, the check cells' comments, the checks'
messages in the notebook) in its language. Its notebook is ``source/<name>/<name>.ipynb``, e.g.
``source/kv_cache_ja/kv_cache_ja.ipynb``, and nbgrader knows it as the assignment ``<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..paths import ASSIGNMENT, DEFAULT, ROOT


@dataclass(frozen=True)
class Course:
    name: str  # the nbgrader assignment: its notebook and its folders source/<name>/, release/<name>/
    template: Path  # the narrative, with %% cell markers
    lang: str  # the language of its texts and messages

    @property
    def notebook_name(self) -> str:
        return f"{self.name}.ipynb"

    @property
    def source(self) -> Path:
        return ROOT / "source" / self.name

    @property
    def release(self) -> Path:
        return ROOT / "release" / self.name


ENGLISH = Course(ASSIGNMENT.name, DEFAULT.notebook_template(), "en")
COURSES = [ENGLISH] + [Course(e.name, DEFAULT.notebook_template(e.lang), e.lang) for e in ASSIGNMENT.editions.values()]


def course_named(name: str) -> Course | None:
    """The course nbgrader calls ``name``, if it is one of this assignment's."""
    return next((course for course in COURSES if course.name == name), None)

"""The nbgrader assignments one of the kit's assignments gives: its course in English and one per edition.

An edition (the manifest's ``[editions.LANG]``) is the same package, the same checks and the same points, with the
narrative of its own template and every generated text (the TODO table, the check cells' comments, the checks'
messages in the notebook) in its language. Its notebook is ``source/<name>/<name>.ipynb``, e.g.
``source/kv_cache_ja/kv_cache_ja.ipynb``, and nbgrader knows it as the assignment ``<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError
from .paths import Layout
from .registry import ROOT, courses


@dataclass(frozen=True)
class Course:
    layout: Layout  # the assignment it gives
    lang: str  # the language of its texts and messages: "en", or an edition's

    @property
    def name(self) -> str:
        """The nbgrader assignment: its notebook and its folders ``source/<name>/``, ``release/<name>/``."""
        work = self.layout.assignment
        return work.name if self.lang == "en" else work.editions[self.lang].name

    @property
    def template(self) -> Path:
        """The narrative, with ``%%`` cell markers."""
        return self.layout.notebook_template(self.lang)

    @property
    def notebook_name(self) -> str:
        return f"{self.name}.ipynb"

    @property
    def source(self) -> Path:
        return ROOT / "source" / self.name

    @property
    def release(self) -> Path:
        return ROOT / "release" / self.name

    @property
    def source_notebook(self) -> Path:
        """The committed source notebook (solutions and hidden checks)."""
        return self.source / self.notebook_name

    @property
    def release_notebook(self) -> Path:
        """The committed release notebook: the layout (and stubs) a student's notebook is read against."""
        return self.release / self.notebook_name


def english(layout: Layout) -> Course:
    """``layout``'s own course, in English (``kvkit grade`` reads a notebook against its release)."""
    return Course(layout, "en")


def courses_of(layout: Layout) -> list[Course]:
    """``layout``'s courses: the English one, then one per edition."""
    return [english(layout)] + [Course(layout, lang) for lang in layout.assignment.editions]


def course_named(name: str) -> Course:
    """The course nbgrader calls ``name`` (``UsageError`` when it is none of the kit's)."""
    found = courses()
    if name not in found:
        raise UsageError(f"nbgrader grades {name!r}, which is none of the kit's courses ({', '.join(found)})")
    assignment, lang = found[name]
    return Course(Layout.named(assignment), lang)

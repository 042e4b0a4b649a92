"""Writing a course's folders never deletes the committed ones when something fails on the way."""

from __future__ import annotations

import pytest

from kvkit.course import folders
from kvkit.courses import english
from layouts_support import PART1

ENGLISH = english(PART1)


def test_a_failing_notebook_build_leaves_the_source_folder_as_it_was(tmp_path, monkeypatch):
    dest = tmp_path / "source" / ENGLISH.name
    dest.mkdir(parents=True)
    (dest / ENGLISH.notebook_name).write_text("the committed notebook")

    def broken(*_args, **_kwargs):
        raise ValueError("needs one %% checks cell per TODO")

    monkeypatch.setattr(folders, "build_notebook", broken)
    with pytest.raises(ValueError, match="checks cell"):
        folders.write_source(ENGLISH, dest)
    assert (dest / ENGLISH.notebook_name).read_text() == "the committed notebook"
    assert [p.name for p in dest.parent.iterdir()] == [ENGLISH.name]  # nothing half-written left beside it


def test_replace_folder_swaps_only_a_complete_folder(tmp_path):
    dest = tmp_path / "release"
    dest.mkdir()
    (dest / "old.txt").write_text("old")

    def half(folder):
        (folder / "new.txt").write_text("new")
        raise RuntimeError("nbgrader generate_assignment failed")

    with pytest.raises(RuntimeError):
        folders.replace_folder(dest, half)
    assert sorted(p.name for p in dest.iterdir()) == ["old.txt"]
    folders.replace_folder(dest, lambda folder: (folder / "new.txt").write_text("new"))
    assert sorted(p.name for p in dest.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["release"]

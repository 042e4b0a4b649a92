"""The kit's ``CheckCellMetadata`` (:mod:`kvkit.course.metadata`, in every nbgrader pipeline of the kit) accepts and
refuses exactly the notebooks nbgrader's own does: the releases, and releases with their metadata broken."""

from __future__ import annotations

import copy
import logging

import pytest
from nbformat import from_dict
from nbgrader.nbgraderformat import ValidationError
from nbgrader.preprocessors import CheckCellMetadata as Nbgrader

from kvkit.course.metadata import CheckCellMetadata as Kit
from kvkit.courses import courses_of
from kvkit.grading.notebooks import read_notebook


def graded(nb: dict) -> dict:
    return next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade"))


def answer(nb: dict) -> dict:
    return next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution"))


BREAKS = {
    "as released": lambda nb: None,
    "points as text": lambda nb: graded(nb)["metadata"]["nbgrader"].update(points="three"),
    "no points": lambda nb: graded(nb)["metadata"]["nbgrader"].pop("points"),
    "empty grade id": lambda nb: answer(nb)["metadata"]["nbgrader"].update(grade_id=""),
    "grade id missing": lambda nb: answer(nb)["metadata"]["nbgrader"].pop("grade_id"),
    "grade as text": lambda nb: answer(nb)["metadata"]["nbgrader"].update(grade="no"),
    "an unknown key": lambda nb: answer(nb)["metadata"]["nbgrader"].update(surprise=1),
    "an old schema": lambda nb: answer(nb)["metadata"]["nbgrader"].update(schema_version=1),
    "a newer schema": lambda nb: answer(nb)["metadata"]["nbgrader"].update(schema_version=9),
    "a duplicate grade id": lambda nb: answer(nb)["metadata"]["nbgrader"].update(
        grade_id=graded(nb)["metadata"]["nbgrader"]["grade_id"]),
    "metadata not an object": lambda nb: answer(nb)["metadata"].update(nbgrader=[]),
}


def verdict(checker, nb: dict) -> str:
    try:
        checker(log=logging.getLogger("kit-test")).preprocess(from_dict(copy.deepcopy(nb)), {})
        return "accepted"
    except ValidationError as err:
        return f"refused: {err}"
    except Exception as err:  # noqa: BLE001 (what nbgrader's own raises is what the kit's must raise)
        return f"failed: {type(err).__name__}"


@pytest.mark.parametrize("broken", BREAKS)
def test_the_kits_metadata_check_agrees_with_nbgraders(layout, broken):
    for course in courses_of(layout):
        nb = read_notebook(course.release / course.notebook_name)
        BREAKS[broken](nb)
        theirs = verdict(Nbgrader, nb)
        assert verdict(Kit, nb) == theirs, (course.name, broken)
        assert (theirs == "accepted") == (broken == "as released"), (course.name, broken, theirs)

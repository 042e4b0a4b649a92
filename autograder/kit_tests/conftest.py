"""Shared fixtures of the kit's own tests: the assignment a test is about, and grade reports computed once per session.

One session checks every assignment: a test that every assignment must pass takes the ``layout`` fixture,
parametrized over :func:`kvkit.paths.layouts` (its ids are the assignments' names, e.g. ``[kv_serving]``); a test
about one assignment's own material names it (``Layout.named("kv_cache")``, :data:`layouts_support.PART1`).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from kvkit.examples import write_example
from kvkit.grading.grade import grade
from kvkit.paths import Layout
from layouts_support import LAYOUTS
from shared_support import shared


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: an end-to-end kit test (real nbgrader, kernels, a grader per "
                                       "submission); `make check` leaves it to `make test`")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--dist loadgroup`` on this pytest: pytest-xdist 3.8 (its worker's hook) names a test's ``xdist_group`` by
    setting ``item._nodeid``, which pytest 9 no longer reads (the node id is ``item._id``), so every group was
    spread over both workers; this gives the id its ``@GROUP`` suffix where xdist's could not."""
    if not getattr(config.option, "loadgroup", False):
        return
    from _pytest.nodeid import NodeId

    for item in items:
        names = sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                        for mark in item.iter_markers("xdist_group")})
        if names and "@" not in item.nodeid and hasattr(item, "_id"):
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(names)}")


@pytest.fixture(params=LAYOUTS, ids=lambda layout: layout.assignment.name)
def layout(request) -> Layout:
    """Each of the kit's assignments in turn."""
    return request.param


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """``graded(layout, name)``: the report of ``kvkit grade`` on ``layout``'s ``reference``, ``assignments`` or an
    example, computed once per session and assignment (shared by the xdist workers: :func:`shared_support.shared`)."""
    reports = {}

    def get(layout: Layout, name: str):
        key = (layout.assignment.name, name)
        if key not in reports:
            def build(folder: Path):
                if name == "reference":
                    return grade(layout, layout.reference)
                if name == "assignments":
                    return grade(layout, layout.skeleton)
                return grade(layout, Path(write_example(layout, name, folder / "submission")))

            reports[key] = shared(tmp_path_factory, f"graded-{key[0]}-{name}", build)
        return reports[key]

    return get


@pytest.fixture(scope="session")
def nbgrader_class(tmp_path_factory):
    """``nbgrader_class(course)``: ``course`` (:class:`kvkit.courses.Course`) built and autograded once per
    session by real nbgrader, with the students of :func:`nbgrader_support.students_of`, in one course folder and
    one ``nbgrader autograde`` with the other courses of its assignment (shared by the xdist workers); an
    :class:`nbgrader_support.AutogradedClass`."""
    from nbgrader_support import autograded_classes

    return lambda course: shared(tmp_path_factory, f"classes-{course.layout.assignment.name}",
                                 lambda folder: autograded_classes(course.layout, folder))[course.name]


@pytest.fixture(scope="session")
def written_courses(tmp_path_factory):
    """``written_courses(layout)``: a folder holding ``layout``'s courses written afresh as ``kvkit notebook`` writes
    them (``source/NAME/`` with its support files, ``release/NAME/`` by real ``nbgrader generate_assignment``; the
    repository holds only their notebooks), once per session (shared by the xdist workers)."""
    from kvkit.course.folders import write_course

    return lambda layout: shared(tmp_path_factory, f"written-course-{layout.assignment.name}",
                                 lambda folder: write_course(layout, folder))


@pytest.fixture(scope="session")
def body_checks(tmp_path_factory):
    """``body_checks(layout, body, only_its_todo=False)``: ``(folder, results)``: the reference with one TODO body
    replaced by the example ``body`` (:func:`selfcheck_support.example_package`), checked in process like the
    student's ``pytest`` (check name -> result), once per session (shared by the xdist workers). Every check, or with
    ``only_its_todo`` those that run that TODO's code (the others pass on it; the checks that do run it and other
    TODOs then cannot tell whether those pass, so their blame is not the student's)."""
    from selfcheck_support import body_todo, checks_in_process, example_package

    def build(layout: Layout, body: str, only_its_todo: bool = False):
        def checked(folder: Path):
            package = example_package(layout, body, folder / "submission")
            return package, checks_in_process(layout, package, todo=body_todo(body) if only_its_todo else None)

        key = f"checks-{layout.assignment.name}-{body.replace('/', '_')}{'-its-todo' if only_its_todo else ''}"
        return shared(tmp_path_factory, key, checked)

    return build


@pytest.fixture(scope="session")
def example_checks(tmp_path_factory):
    """``example_checks(layout, name)``: the check results (in process) of the example submission ``name`` of
    ``examples.toml``, once per session (shared by the xdist workers)."""
    from selfcheck_support import checks_in_process

    return lambda layout, name: shared(
        tmp_path_factory, f"example-checks-{layout.assignment.name}-{name}",
        lambda folder: checks_in_process(layout, Path(write_example(layout, name, folder / "submission"))))


@pytest.fixture
def killed_runs_temp():
    """A temporary folder for the processes a test kills (``TMPDIR``): what a killed process cannot remove stays out of
    the machine's ``/tmp`` and is removed with it. Open to every user like ``/tmp`` (a sandbox's children run as
    others; pytest's own folders are closed to them)."""
    folder = Path(tempfile.mkdtemp(prefix="kvkit-killed-runs-"))
    folder.chmod(0o1777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)

"""Every requirement an assignment must meet (:mod:`kvkit.requirements`), against every assignment of the kit.

One test per assignment and requirement; a failure lists the problems, each with how to fix it, as ``kvkit
check-assignment NAME`` prints them. The list has one source: a new requirement goes into ``kvkit.requirements``,
and this test and the command take it from there. The requirements that run one of the kit's generators in a
process of its own (``kvkit build --check``, ``goldens --check``, ``catalogs --check``, ``notebook --check``) are
``slow``: ``make check`` leaves them to ``make test``. The others of one assignment run on one xdist worker
(``--dist loadgroup``), which gathers the facts about its checks (its census, a process of its own) once. Whether the committed courses are
what ``kvkit notebook`` writes is judged against the courses the session writes once (``written_courses``), which
``test_notebook_sync.py`` scans too.
"""

from __future__ import annotations

import pytest

from kvkit.requirements import GENERATED, REQUIREMENTS, TODO_COUNT, Subject, subjects, the_course_is_generated

SUBJECTS = subjects()  # each gathers the facts about its checks once per process


@pytest.mark.parametrize("name,requirement", [
    pytest.param(name, requirement, id=f"{name}-{requirement.name}",
                 marks=[pytest.mark.slow] if requirement.slow else [pytest.mark.xdist_group(f"requirements-{name}")])
    for name in SUBJECTS for requirement in REQUIREMENTS])
def test_the_assignment_meets_the_requirement(name, requirement, written_courses):
    subject = SUBJECTS[name]
    if requirement.check is the_course_is_generated:  # compared with the courses the session wrote once
        subject = Subject(subject.layout, written_courses(subject.layout))
    problems = requirement.check(subject)
    assert not problems, f"{name}: {requirement.says}\n" + "\n".join(problems)


@pytest.mark.parametrize("prose,counts", [
    ("built in four TODOs:", True), ("the six TODO functions", True), ("4つの TODO に分けて", True),
    ("6つの解答セルの中の", True), ("12 TODOs", True),
    ("the checks of the first three TODOs", False), ("最初の3つの TODO のチェック", False), ("TODO 1, 2, 3, 4", False),
    ("<!-- kvkit build: todos of x -->4 TODOs<!-- end -->", False)])
def test_a_count_of_the_todos_in_prose_is_found_and_a_generated_one_is_not(prose, counts):
    assert bool(TODO_COUNT.search(GENERATED.sub("", prose))) == counts


def test_a_solution_line_in_the_students_files_is_found(tmp_path, monkeypatch, layout):
    import kvkit.requirements as requirements

    line = sorted(requirements.solution_lines(layout))[0]
    quoting = tmp_path / "ops.py"
    quoting.write_text(f'"""A docstring that quotes the solution: {line}"""\n')
    files = requirements.bundle_files(layout)
    monkeypatch.setattr(requirements, "bundle_files", lambda _layout: {**files, "x/ops.py": quoting})
    problems = requirements.the_students_files_hold_no_solution_line(Subject(layout))
    assert len(problems) == 1 and problems[0].startswith("x/ops.py (in the student's zip) holds"), problems

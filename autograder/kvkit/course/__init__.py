"""The nbgrader course of an assignment, generated from the reference, the graded tests and a template.

Sources of truth, nothing kept by hand in the notebook:

- narrative and demo cells: ``autograder/material/kv_cache/notebook/notebook.md``, a template whose
  ``%%`` lines start cells (see :func:`kvkit.course.template.parse_template`);
- the code cells of the package: the classes of ``reference/kvcache/*.py``; a
  class holding a TODO becomes an autograded-answer cell that keeps the
  ``### BEGIN SOLUTION`` / ``### END SOLUTION`` lines (nbgrader strips them),
  the other classes become read-only cells (:mod:`kvkit.course.cells`);
- the autograder-test cells: one per graded pytest item of ``tests/`` and
  ``autograder/material/NAME/hidden/``, found by pytest's own collection with the kit's
  plugin (so points and TODOs come from the ``points(n)`` / ``todoN``
  markers and ``parametrize`` cases are expanded exactly as pytest does).
  Public cells call the public test function shipped next to the notebook;
  hidden cells carry their test module's code and the reference outputs they
  use between ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``
  (:mod:`kvkit.course.checks`).

``source/kv_cache/`` also receives copies of the public check code
(``kvchecks/``) and public tests (``tests/``) that the notebook runs; the
release is made by the real ``nbgrader generate_assignment``
(:mod:`kvkit.course.folders`). :func:`kvkit.course.submission.notebook_to_package`
turns a student's notebook back into a ``kvcache`` package for ``kvkit grade``.
The ``kvkit notebook`` command itself is :mod:`kvkit.commands.notebook`.

The kit's hooks into ``nbgrader autograde`` (trusted verdicts, a confined
kernel: :mod:`kvkit.course.autograde`, named in ``nbgrader_config.py``) and
the autograding of a whole class by several nbgrader processes
(:mod:`kvkit.course.autograde_class`) are here too. This layer uses the
grading core (:mod:`kvkit.grading`), never the commands.
"""

"""A new nbgrader gradebook without the ``alembic heads`` process.

nbgrader stamps each new gradebook (``gradebook.db``) with the head revision of its schema migrations, which
``nbgrader.api.get_alembic_version`` reads by running the ``alembic`` command in a process of its own: a process that
imports nbgrader again, about 3 CPU-seconds and up to a few seconds of waiting, for each new course folder (the first
``nbgrader generate_assignment``, a formgrader's first start, each scratch course of ``kvkit notebook``). The same
revision, read from nbgrader's migration folder in the process that asks, costs a few milliseconds.
"""

from __future__ import annotations


def schema_head() -> str:
    """The head revision of nbgrader's gradebook migrations (what ``alembic heads`` prints first)."""
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    return ScriptDirectory(ALEMBIC_DIR).get_current_head()


def install_schema_head() -> None:
    """Make nbgrader read the head revision in this process (``nbgrader_config.py`` calls this; :func:`finished_students
    <kvkit.course.autograde_class.finished_students>` too, which may make the gradebook)."""
    import nbgrader.api as api

    api.get_alembic_version = schema_head

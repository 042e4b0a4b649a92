"""A new course's gradebook is stamped with nbgrader's schema head, read in process (``kvkit.course.gradebook``)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from kvkit.course.folders import NBGRADER_CONFIG, nbgrader_command, nbgrader_env, write_source
from kvkit.courses import english
from layouts_support import NEEDS_NBGRADER, PART1

pytestmark = [NEEDS_NBGRADER, pytest.mark.slow]  # real alembic, real nbgrader


def test_the_head_read_in_process_is_what_alembic_heads_prints():
    from kvkit.course.gradebook import schema_head

    nbgraders = subprocess.run([sys.executable, "-c", "import nbgrader.api; print(nbgrader.api.get_alembic_version())"],
                               capture_output=True, text=True, env=nbgrader_env())  # its `alembic heads` process
    assert nbgraders.returncode == 0, nbgraders.stderr[-2000:]
    assert schema_head() == nbgraders.stdout.strip()


def test_a_new_course_makes_its_gradebook_without_an_alembic_process(tmp_path):
    course = english(PART1)
    write_source(course, tmp_path / "source" / course.name)
    (tmp_path / "nbgrader_config.py").write_bytes(NBGRADER_CONFIG.read_bytes())
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "alembic").write_text("#!/bin/sh\necho 'an alembic process ran' >&2\nexit 3\n")
    (fake / "alembic").chmod(0o755)
    env = nbgrader_env()
    done = subprocess.run([*nbgrader_command(), "generate_assignment", course.name, "--force"], cwd=tmp_path,
                          capture_output=True, text=True, env={**env, "PATH": f"{fake}{os.pathsep}{env['PATH']}"})
    assert done.returncode == 0, done.stderr[-2000:]
    from kvkit.course.gradebook import schema_head

    stamped = sqlite3.connect(tmp_path / "gradebook.db").execute("SELECT version_num FROM alembic_version").fetchall()
    assert stamped == [(schema_head(),)]

"""kvkit: build, grade and package the KV-cache exercise.

By layer: :mod:`kvkit.commands` (one module per ``kvkit`` sub-command, :mod:`kvkit.cli` runs them), the grading core
:mod:`kvkit.grading` (intake, sandbox, the child process, fresh inputs, reports, batch grading), the nbgrader course
:mod:`kvkit.course`; the modules at the top are the basics they share (paths, the assignments and their courses, the
skeleton, examples, requirements). The grading core imports neither the course nor the commands; the course does not
import the commands.
"""

from pathlib import Path

from kvchecks.i18n import add_domain

# the kit's own messages (kvkit.po / kvkit.mo per language), whichever of its modules speaks first
add_domain("kvkit", Path(__file__).resolve().parent / "locale")

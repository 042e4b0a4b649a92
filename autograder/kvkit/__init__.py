"""kvkit: build, grade and package the KV-cache exercise.

By layer: :mod:`kvkit.commands` (one module per ``kvkit`` sub-command, :mod:`kvkit.cli` runs them), the grading core
:mod:`kvkit.grading` (intake, sandbox, the child process, fresh inputs, reports, batch grading), the nbgrader course
:mod:`kvkit.course`; the modules at the top are the basics they share (paths, the assignments and their courses, the
skeleton, examples, requirements). The grading core imports neither the course nor the commands; the course does not
import the commands.
"""

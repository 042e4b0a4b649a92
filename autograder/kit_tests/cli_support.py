"""``kvkit`` run inside the test's own process: its status and what it printed, without a fresh interpreter (and
torch imported again, about 2 CPU-s) per run.

For the tests about what a command does. :func:`kvkit.cli.main` is the whole command but for :func:`kvkit.cli.run`'s
wrapper (the stop signals, the end of the process); the tests about that wrapper and about the process itself (its
start-up imports, a stop signal, a kill, another user or environment) run ``python -m kvkit.cli``.
"""

from __future__ import annotations

import io
import os
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from kvkit.cli import main
from kvkit.registry import ROOT


@dataclass
class Ran:
    """What :func:`kvkit` gives back, named as :class:`subprocess.CompletedProcess` names it."""

    returncode: int
    stdout: str
    stderr: str


def kvkit(layout, *args: str, cwd: Path = ROOT) -> Ran:
    """``kvkit --assignment NAME ARGS...`` for ``layout``'s assignment (``layout`` None: no ``--assignment``), run in
    ``cwd`` as the command would be."""
    argv = ([] if layout is None else ["--assignment", layout.assignment.name]) + [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    before = os.getcwd()
    os.chdir(cwd)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(argv) or 0
            except SystemExit as exit_:  # argparse's usage errors and --help
                code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        os.chdir(before)
    return Ran(code, out.getvalue(), err.getvalue())

"""The ``kvkit`` command: one sub-command per module of :mod:`kvkit.commands`, each with ``add_parser(sub)``.

A named kit command imports only its own module (several import torch, which
``kvkit autograde`` starts its zygotes before importing); ``kvkit --help``, or
a command of the assignment's own, imports them all.

``kvkit --assignment NAME COMMAND ...`` works on one of the kit's assignments
(every ``tests/NAME/assignment.toml``); without it, on the first (``part = 1``).
``kvkit --lang ja ...`` writes reports and the checks' messages in Japanese
(default: English). Both are read here, before the sub-commands are known (an
assignment's own commands come from its tools package), and reach every
command as values: ``args.layout`` (a :class:`kvkit.paths.Layout`) and
``args.lang``.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import sys
import threading

from kvchecks.i18n import LANGUAGES

from .errors import GraderError, UsageError
from .paths import Layout, layouts
from .registry import manifests
from .stopping import stop_on_signals, stopped_line
from .tools import command_modules

# every assignment's commands: command -> its module kvkit.commands.NAME; an assignment's own (its bench, demos) are in
# its tools package
COMMANDS = {"build": "build", "grade": "grade", "grade-all": "grade_all", "autograde": "autograde_class",
            "gradescope": "gradescope", "bundle": "bundle", "goldens": "goldens", "notebook": "notebook",
            "catalogs": "catalogs", "new": "new", "check-assignment": "check_assignment"}


def add_choices(parser: argparse.ArgumentParser) -> None:
    """The options that choose what every command works on: ``--assignment`` and ``--lang``."""
    parser.add_argument("--assignment", metavar="NAME",
                        help=f"the assignment to work on ({', '.join(manifests())}; default: the first)")
    parser.add_argument("--lang", choices=LANGUAGES, default="en",
                        help="the language of the grading reports and the checks' messages (default: en)")


def chosen_layout(argv: list[str]) -> tuple[Layout, list[str]]:
    """The assignment ``--assignment`` names in ``argv`` (the first of the kit's without it), and the rest of
    ``argv``."""
    parser = argparse.ArgumentParser(prog="kvkit", add_help=False)
    add_choices(parser)
    known, rest = parser.parse_known_args(argv)
    return (Layout.named(known.assignment) if known.assignment is not None else layouts()[0]), rest


def command_modules_for(layout: Layout, rest: list[str]) -> list:
    """The modules whose commands the parser needs: the named kit command's alone, else every one."""
    named = next((arg for arg in rest if not arg.startswith("-")), None)
    if named in COMMANDS:
        return [importlib.import_module(f"kvkit.commands.{COMMANDS[named]}")]
    return [importlib.import_module(f"kvkit.commands.{name}") for name in COMMANDS.values()] + command_modules(layout)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        layout, rest = chosen_layout(argv)
    except UsageError as err:
        print(f"kvkit: {err}", file=sys.stderr)
        return 2
    modules = command_modules_for(layout, rest)
    parser = argparse.ArgumentParser(prog="kvkit", description="Build, grade and package the kit's assignments.")
    add_choices(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    for module in modules:
        module.add_parser(sub)
    args = parser.parse_args(argv)
    args.layout = layout
    try:
        return args.func(args)
    except UsageError as err:
        print(f"kvkit {args.command}: {err}", file=sys.stderr)
        return 2
    except GraderError as err:  # the kit's own machinery failed: no score was given
        print(f"kvkit {args.command}: the grader itself failed, so nothing was scored: {err}", file=sys.stderr)
        return 1


def run() -> None:
    """The ``kvkit`` command: :func:`main`, then the end of the process without the interpreter's teardown (about half
    a second once torch is imported), after the ``atexit`` functions (the grading children's zygotes end there); as
    usual where a thread of the command still runs, which the interpreter waits for. Ctrl-C, SIGTERM and SIGHUP stop
    the command through every ``finally``, with one line (:mod:`kvkit.stopping`)."""
    stop_on_signals()
    try:
        code = main() or 0
    except KeyboardInterrupt as err:  # Ctrl-C, or a stop signal (Stopped)
        line, code = stopped_line(err)
        try:
            print(line, file=sys.stderr)
        except OSError:  # the terminal has gone (SIGHUP)
            pass
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()

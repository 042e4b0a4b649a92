"""The ``kvkit`` command: one sub-command per module of :mod:`kvkit.commands`, each with ``add_parser(sub)``.

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
import importlib
import sys

from kvchecks.i18n import LANGUAGES

from .errors import GraderError, UsageError
from .paths import Layout, layouts
from .registry import manifests
from .tools import command_modules

# every assignment's commands, kvkit.commands.NAME; an assignment's own (its bench, demos) are in its tools package
COMMANDS = ["build", "grade", "grade_all", "autograde_class", "gradescope", "bundle", "goldens", "notebook",
            "catalogs", "new", "check_assignment"]


def add_choices(parser: argparse.ArgumentParser) -> None:
    """The options that choose what every command works on: ``--assignment`` and ``--lang``."""
    parser.add_argument("--assignment", metavar="NAME",
                        help=f"the assignment to work on ({', '.join(manifests())}; default: the first)")
    parser.add_argument("--lang", choices=LANGUAGES, default="en",
                        help="the language of the grading reports and the checks' messages (default: en)")


def chosen_layout(argv: list[str]) -> Layout:
    """The assignment ``--assignment`` names in ``argv`` (the first of the kit's without it)."""
    parser = argparse.ArgumentParser(prog="kvkit", add_help=False)
    add_choices(parser)
    known, _rest = parser.parse_known_args(argv)
    return Layout.named(known.assignment) if known.assignment is not None else layouts()[0]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        layout = chosen_layout(argv)
    except UsageError as err:
        print(f"kvkit: {err}", file=sys.stderr)
        return 2
    modules = [importlib.import_module(f"kvkit.commands.{name}") for name in COMMANDS] + command_modules(layout)
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


if __name__ == "__main__":
    sys.exit(main())

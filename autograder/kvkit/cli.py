"""The ``kvkit`` command: one sub-command per module, each with ``add_parser(sub)``.

``kvkit --assignment NAME COMMAND ...`` works on one of the kit's assignments
(every ``tests/NAME/assignment.toml``); without it, on the first (``part = 1``).
The choice is made before anything reads the assignment's manifest.
``kvkit --lang ja ...`` writes reports and the checks' messages in Japanese
(the same as ``KVKIT_LANG=ja``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from kvchecks.i18n import LANGUAGES

from .registry import ENV, LANG_ENV, choose, manifests

COMMANDS = ["build", "grade", "grade_all", "autograde_class", "gradescope", "bundle", "goldens", "notebook",
            "catalogs"]  # every assignment's; an assignment's own (its bench, demos) are in its tools package


def choose_assignment(argv: list[str]) -> list[str]:
    """Take ``--assignment NAME`` and ``--lang LANG`` off ``argv`` and make them this process's (and its children's)
    assignment and language; the rest of ``argv``."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--assignment")
    parser.add_argument("--lang", choices=LANGUAGES)
    known, rest = parser.parse_known_args(argv)
    if known.lang is not None:
        os.environ[LANG_ENV] = known.lang
    if known.assignment is not None:
        try:
            choose(known.assignment)
        except KeyError as err:
            print(f"kvkit: {err.args[0]}", file=sys.stderr)
            raise SystemExit(2)
    elif os.environ.get(ENV) and not Path(os.environ[ENV]).is_file():
        print(f"kvkit: {ENV}={os.environ[ENV]} names no manifest file: unset it or give --assignment NAME",
              file=sys.stderr)
        raise SystemExit(2)
    return rest


def main(argv: list[str] | None = None) -> int:
    argv = choose_assignment(sys.argv[1:] if argv is None else argv)
    from .paths import DEFAULT
    from .tools import command_modules

    modules = [importlib.import_module(f"kvkit.{name}") for name in COMMANDS] + command_modules(DEFAULT)
    from .errors import GraderError, UsageError

    parser = argparse.ArgumentParser(prog="kvkit", description="Build, grade and package the kit's assignments.")
    parser.add_argument("--assignment", metavar="NAME",
                        help=f"the assignment to work on ({', '.join(manifests())}; default: the first)")
    parser.add_argument("--lang", choices=LANGUAGES,
                        help="the language of the grading reports and the checks' messages (default: en, or "
                             f"{LANG_ENV})")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in modules:
        module.add_parser(sub)
    args = parser.parse_args(argv)
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

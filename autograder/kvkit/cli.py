"""The ``kvkit`` command: one sub-command per module, each with ``add_parser(sub)``."""

from __future__ import annotations

import argparse
import sys

from . import batch, bench, build, bundle, chat_demo, generate_cli, goldens, grade, gradescope, notebook
from .errors import UsageError
from .remote import GraderError

COMMANDS = [build, grade, batch, gradescope, bundle, goldens, generate_cli, chat_demo, bench, notebook]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kvkit", description="Build, grade and package the KV-cache exercise.")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
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

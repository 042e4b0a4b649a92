"""``kvkit check-assignment NAME``: each requirement of :mod:`kvkit.requirements` that assignment NAME does not
meet, with its problems (one line each, with how to fix it); exit status 1 when there is one, else 0.
``--quick`` leaves out the slow ones (those that run the kit's generators: while editing, before running them);
``--list`` prints the requirements themselves.
"""

from __future__ import annotations

import tomllib

from kvchecks.assignment import load

from ..errors import UsageError
from ..paths import Layout
from ..registry import ROOT, manifests
from ..requirements import REQUIREMENTS, Subject, unmet


def run(args) -> int:
    if args.list:
        for requirement in REQUIREMENTS:
            print(f"- {requirement.says}{' (slow)' if requirement.slow else ''}")
        return 0
    if args.name is None:
        raise UsageError("name the assignment to check (kvkit check-assignment NAME), or give --list")
    every = manifests()
    if args.name not in every:
        raise UsageError(f"no assignment called {args.name!r}; the kit has {', '.join(every)}")
    try:
        subject = Subject(Layout(load(every[args.name])))
    except (tomllib.TOMLDecodeError, KeyError, ValueError) as err:
        print(f"{every[args.name].relative_to(ROOT)} cannot be read ({type(err).__name__}: {err}): fix it as the "
              "manifests of tests/*/assignment.toml are written")
        return 1
    missed = unmet(subject, quick=args.quick)
    for requirement, problems in missed:
        print(f"- {requirement.says}")
        for problem in problems:
            print(f"    {problem}")
    checked = len([requirement for requirement in REQUIREMENTS if not (args.quick and requirement.slow)])
    if missed:
        print(f"{args.name} misses {len(missed)} of {checked} requirements")
        return 1
    print(f"{args.name} meets every requirement ({checked} checked{', the slow ones left out' if args.quick else ''})")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("check-assignment", help="maintainers: what an assignment still misses of what the kit requires")
    p.add_argument("name", nargs="?", help="the assignment (tests/NAME/assignment.toml)")
    p.add_argument("--quick", action="store_true", help="leave out the slow requirements (those that run the kit's "
                                                        "generators: build, goldens, catalogs, notebook)")
    p.add_argument("--list", action="store_true", help="print the requirements instead")
    p.set_defaults(func=run)

"""``kvkit build``: write an assignment's student skeleton and the generated parts of its READMEs and the kit's docs
(:mod:`kvkit.skeleton`), or check that they are up to date."""

from __future__ import annotations

from ..errors import UsageError
from ..registry import ROOT
from ..skeleton import build_skeleton, stale_files, write_readmes


def run(args) -> int:
    layout = args.layout
    skeleton, reference = layout.skeleton.relative_to(ROOT), layout.reference.relative_to(ROOT)
    if args.check:
        stale = stale_files(layout)
        if stale:
            raise UsageError(f"{skeleton}/ is out of date ({', '.join(stale)}): run `kvkit --assignment "
                             f"{layout.assignment.name} build`")
        print(f"{skeleton}/ is up to date with {reference}/")
        return 0
    build_skeleton(layout, layout.skeleton)
    write_readmes(layout)
    print(f"wrote {layout.skeleton / layout.assignment.package} from {layout.reference / layout.assignment.package}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("build", help="write the student skeleton assignments/ from reference/")
    p.add_argument("--check", action="store_true", help="only check that assignments/ is up to date")
    p.set_defaults(func=run)

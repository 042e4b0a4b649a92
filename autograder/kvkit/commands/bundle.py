"""``kvkit bundle OUT.zip``: what a student downloads.

Holds ``assignments/kvcache/`` (the skeleton), the public ``tests/`` with
their goldens and the ``kvchecks`` helpers, the root ``conftest.py`` and the
student README, and the files of the manifest's ``student`` folder (for part 1,
``autograder/material/NAME/student/``: pytest settings, requirements and ``speed.py``, which times
the student's code with and without the cache).
Never the reference, the hidden tests or their goldens.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import kvchecks

from ..paths import Layout
from ..registry import ROOT
from ..skeleton import readmes

KVCHECKS = Path(kvchecks.__file__).resolve().parent


def bundle_files(layout: Layout) -> dict[str, Path]:
    """Archive name -> source file, for every file ``layout``'s bundle holds."""
    work = layout.assignment
    files = {readme.name: readme for readme in readmes(layout).values() if readme.is_file()}  # README.md, its editions'
    files["conftest.py"] = ROOT / "conftest.py"
    files.update({path.name: path for path in sorted(layout.student.iterdir()) if path.is_file()})
    package = f"assignments/{work.package}"
    trees = ((layout.skeleton / work.package, package), (KVCHECKS, "tests/kvchecks"), (layout.public_tests, "tests"))
    for folder, prefix in trees:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                files[f"{prefix}/{path.relative_to(folder).as_posix()}"] = path
    return files


def write_bundle(layout: Layout, out: Path) -> Path:
    """Write ``layout``'s bundle to ``out``, every file under the bundle's top folder (the manifest's ``bundle``)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in bundle_files(layout).items():
            archive.write(path, f"{layout.assignment.bundle}/{name}")
    return out


def run(args) -> int:
    path = write_bundle(args.layout, Path(args.out))
    top = args.layout.assignment.bundle
    print(f"wrote {path}: unzip it and follow {top}/README.md (`pip install -r requirements.txt`, then `pytest`)")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("bundle", help="write the student bundle (skeleton, public tests, README) as a zip")
    p.add_argument("out", help="the zip file to write, e.g. out/kv-cache-exercise.zip")
    p.set_defaults(func=run)

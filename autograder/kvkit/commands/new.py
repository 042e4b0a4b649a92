"""``kvkit new NAME [--package PKG] [--title TITLE]``: a new assignment with one TODO, written into its own folders
only, then built, so that ``kvkit check-assignment NAME`` finds nothing missing and ``kvkit --assignment NAME grade``
gives the reference full marks and the skeleton zero.

Every file comes from the templates in ``scaffold/``, which mirror the repository: each ``*.in`` file is written to
its path with ``@name@``, ``@package@``, ``@title@``, ``@part@`` (one past the kit's last part), ``@bundle@``,
``@torch@`` (the kit's torch pin) and ``@python@`` (the oldest Python it supports) filled in, in its path and its
text. They give the manifest; a reference package with one TODO and a class around it; the checks package (a probe
that any TODO taking one tensor can use), public and hidden checks and their Japanese catalogues; the notebook
templates and student READMEs in English and Japanese (every assignment has a Japanese edition); the student's
files; the examples (``partial``, an ``alternative``, the contract's breakers, a pinned hint) and the contract
table. The kit's own commands then make the rest: ``catalogs``, ``build``, ``goldens`` and ``notebook``.
"""

from __future__ import annotations

import keyword
import re
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from importlib.util import find_spec
from pathlib import Path

from ..errors import UsageError
from ..registry import ROOT, manifests
from ..requirements import kit_torch_pin, python_version

SCAFFOLD = Path(__file__).resolve().parent / "scaffold"
IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*")


def own_folders(name: str, package: str) -> list[Path]:
    """The folders of assignment ``name`` (package ``package``) that people write: what ``scaffold/`` fills."""
    return [ROOT / "tests" / name, ROOT / "reference" / package, ROOT / "assignments" / name,
            ROOT / "autograder" / "material" / name]


def course_folders(name: str) -> list[Path]:
    """The nbgrader courses ``kvkit notebook`` writes for it (English and Japanese)."""
    return [ROOT / top / course for top in ("source", "release") for course in (name, f"{name}_ja")]


def refusal(name: str, package: str) -> str | None:
    """Why ``kvkit new`` cannot make assignment ``name`` with package ``package``, if it cannot."""
    for what, value in (("name", name), ("package", package)):
        if not IDENTIFIER.fullmatch(value) or keyword.iskeyword(value):
            return f"{value!r} is not a usable {what}: use lower-case letters, digits and underscores, a letter first"
    if name in manifests():
        return f"the kit has an assignment called {name!r} already ({manifests()[name].relative_to(ROOT)})"
    taken = [folder.relative_to(ROOT).as_posix() for folder in own_folders(name, package) + course_folders(name)
             if folder.exists()]
    if taken:
        return f"{', '.join(taken)} exists already: choose another name (or --package)"
    if package == f"{name}_checks" or find_spec(package) is not None:
        return f"the package name {package!r} is taken by an importable module: choose another with --package"
    return None


def next_part() -> int:
    parts = [tomllib.loads(path.read_text()).get("part", 1) for path in manifests().values()]
    return max(parts, default=0) + 1


def fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text


def write_scaffold(values: dict[str, str]) -> list[Path]:
    """Write every template of ``scaffold/`` to its place in the kit; the files written."""
    written = []
    for template in sorted(SCAFFOLD.rglob("*.in")):
        target = ROOT / fill(template.relative_to(SCAFFOLD).as_posix()[:-len(".in")], values)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(fill(template.read_text(), values))
        written.append(target)
    return written


def kvkit(*args: str) -> None:
    """Run one of the kit's commands; ``UsageError`` with what it said last when it fails."""
    done = subprocess.run([sys.executable, "-m", "kvkit.cli", *args], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip() or f"exit {done.returncode}").splitlines()[-1]
        raise UsageError(f"`kvkit {' '.join(args)}` failed: {said}")


def run(args) -> int:
    name, package = args.name, args.package or args.name.replace("_", "")
    why = refusal(name, package)
    if why is not None:
        raise UsageError(why)
    values = {"name": name, "package": package, "title": args.title or name, "part": str(next_part()),
              "bundle": f"{name.replace('_', '-')}-exercise", "torch": kit_torch_pin(), "python": python_version()}
    written = write_scaffold(values)
    print(f"wrote {len(written)} files in " + ", ".join(f"{f.relative_to(ROOT)}/" for f in own_folders(name, package)))
    first = (["catalogs", "--domain", name, "--domain", f"{name}_hidden"], ["--assignment", name, "build"],
             ["--assignment", name, "goldens"])  # independent; the notebooks ship the goldens and catalogues
    with ThreadPoolExecutor(max_workers=len(first)) as pool:
        list(pool.map(lambda step: kvkit(*step), first))
    kvkit("--assignment", name, "notebook")
    print(f"ran kvkit catalogs, build, goldens and notebook for {name}")
    print(f"{name} is ready: `kvkit check-assignment {name}`, then `kvkit --assignment {name} grade "
          f"reference`; edit its TODO, checks and texts as docs/maintaining.md says")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("new", help="maintainers: write a new assignment with one TODO in its own folders, and build it")
    p.add_argument("name", help="the assignment's name: its folders tests/NAME/, assignments/NAME/, ...")
    p.add_argument("--package", help="the package the student fills in (default: NAME without underscores)")
    p.add_argument("--title", help="its title (default: NAME)")
    p.set_defaults(func=run)

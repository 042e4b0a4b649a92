"""``kvkit gradescope OUT.zip``: a Gradescope autograder for the exercise (what runs inside it:
:mod:`kvkit.grading.gradescope`).

The zip holds, at its top level (Gradescope unpacks it into
``/autograder/source``):

- ``setup.sh``: installs Python, a virtual environment at
  ``/autograder/venv`` and the pinned dependencies of ``requirements.txt``
  (torch's CPU wheel from download.pytorch.org);
- ``run_autograder``: grades ``/autograder/submission`` with ``python -m
  kvkit.grading.gradescope run`` (:mod:`kvkit.grading.gradescope`) and writes ``/autograder/results/results.json``;
- ``kit/``: the grader (``autograder/kvkit``), the public checks
  (``tests/``), the hidden checks and their goldens (``autograder/material/NAME/hidden``),
  the released notebook (for notebook submissions) and the reference
  solution (``reference/``), which computes the expected observations of the
  fresh inputs every check also runs on (:mod:`kvkit.grading.fresh`). The zip is for
  the instructor's Gradescope account only; Gradescope never shows it to
  students, and the student's code runs confined, out of its reach.

``run_autograder`` names the assignment and the language the zip was built
for (``kvkit --assignment NAME --lang LANG gradescope``), which reach the
grader as its command line's options.

Hidden checks get ``"visibility": "after_published"``: students see the
public checks' names and messages at once, the hidden ones only when grades
are published. ``KVKIT_GRADESCOPE_ROOT`` (default ``/autograder``) and
``KVKIT_PYTHON`` (default ``$ROOT/venv/bin/python``) let the same script run
under a temporary folder, for testing.
"""

from __future__ import annotations

import os
import zipfile
from importlib import metadata
from pathlib import Path

import kvchecks

from ..courses import english
from ..errors import UsageError
from ..paths import Layout
from ..registry import ROOT
from ..requirements import TORCH_INDEX

PINNED = ("numpy", "pytest", "pluggy", "iniconfig", "packaging")

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when the autograder image is built.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# The pinned wheels need Python 3.11 or newer (Ubuntu 22.04's python3 is 3.10: install python3.11 next to it).
pick() {{
    for p in python3.13 python3.12 python3.11 python3; do
        if command -v "$p" >/dev/null && "$p" -c 'import sys, venv; assert sys.version_info >= (3, 11)' 2>/dev/null \
           && "$p" -m venv --help >/dev/null 2>&1; then command -v "$p"; return; fi
    done
}}
PYTHON="$(pick || true)"
if [ -z "$PYTHON" ]; then
    apt-get update
    apt-get install -y --no-install-recommends python3.11 python3.11-venv ca-certificates
    PYTHON="$(pick)"
fi
"$PYTHON" -m venv /autograder/venv
/autograder/venv/bin/pip install --no-cache-dir --upgrade pip
/autograder/venv/bin/pip install --no-cache-dir torch=={torch} --index-url {index}
/autograder/venv/bin/pip install --no-cache-dir -r /autograder/source/requirements.txt
/autograder/venv/bin/python -c "import torch, numpy, pytest; print('torch', torch.__version__)"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission. KVKIT_GRADESCOPE_ROOT and KVKIT_PYTHON exist for local tests.
set -uo pipefail
ROOT="${KVKIT_GRADESCOPE_ROOT:-/autograder}"
PY="${KVKIT_PYTHON:-$ROOT/venv/bin/python}"
KIT="$ROOT/source/kit"
mkdir -p "$ROOT/results"
cd "$KIT" || exit 1
PYTHONPATH="$KIT/autograder:$KIT/tests" exec "$PY" -m kvkit.grading.gradescope run --root "$ROOT" --assignment @ASSIGNMENT@ \
    --lang @LANG@
"""


def _kit_files(layout: Layout) -> list[tuple[Path, str]]:
    """``(file, path in the zip)`` for everything the grader of ``layout``'s assignment needs (the reference for
    fresh inputs included)."""
    files = {}

    def add_tree(folder: Path, suffixes: tuple[str, ...]) -> None:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix in suffixes:
                files["kit/" + str(path.relative_to(ROOT))] = path

    # .mo: the compiled message catalogues, for reports in the zip's language (kvchecks.i18n)
    add_tree(ROOT / "autograder" / "kvkit", (".py", ".mo"))
    add_tree(Path(kvchecks.__file__).resolve().parent, (".py", ".mo"))
    add_tree(layout.public_tests, (".py", ".json", ".toml", ".mo"))
    add_tree(layout.reference / layout.assignment.package, (".py",))
    if layout.hidden_tests.is_dir():
        add_tree(layout.hidden_tests, (".py", ".json", ".mo"))
    for extra in (ROOT / "pyproject.toml", ROOT / "conftest.py", english(layout).release_notebook):
        if extra.is_file():
            files["kit/" + str(extra.relative_to(ROOT))] = extra
    return [(path, name) for name, path in files.items()]


def requirements() -> str:
    lines = []
    for name in PINNED:
        try:
            lines.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            lines.append(name)
    return "\n".join(lines) + "\n"


def build_zip(layout: Layout, out: Path, lang: str = "en") -> Path:
    """The Gradescope autograder of ``layout``'s assignment, its feedback in ``lang``, as the zip ``out``."""
    out = Path(out)
    if out.suffix != ".zip":
        raise UsageError(f"{out}: the Gradescope autograder must be a .zip file")
    out.parent.mkdir(parents=True, exist_ok=True)
    torch_version = metadata.version("torch").split("+")[0]
    tmp = out.with_name(f".{out.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in (("setup.sh", SETUP_SH.format(torch=torch_version, index=TORCH_INDEX)),
                           ("run_autograder", RUN_AUTOGRADER.replace("@ASSIGNMENT@", layout.assignment.name)
                            .replace("@LANG@", lang))):  # kvkit --lang ja gradescope: Japanese feedback
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o100755 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, text)
        zf.writestr("requirements.txt", requirements())
        for path, arcname in _kit_files(layout):
            zf.write(path, arcname)
    os.replace(tmp, out)
    return out


def run(args) -> int:
    out = build_zip(args.layout, Path(args.out), args.lang)
    print(f"wrote {out} ({len(_kit_files(args.layout))} kit files): upload it as the Gradescope autograder")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("gradescope", help="build a Gradescope autograder zip (setup.sh, run_autograder, checks)")
    p.add_argument("out", help="the zip to write, e.g. out/gradescope-autograder.zip")
    p.set_defaults(func=run)

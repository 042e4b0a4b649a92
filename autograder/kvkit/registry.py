"""The kit's assignments: every ``tests/NAME/assignment.toml``, in the order of their ``part`` (the first is the default).

Reads only the manifests' names and parts, so ``kvkit --assignment`` can choose one before anything else reads a
manifest. A new assignment is found by its manifest alone: nothing else lists it.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV = "KVKIT_ASSIGNMENT"  # the chosen manifest's path, read by kvchecks.assignment
LANG_ENV = "KVKIT_LANG"  # the language of the messages, read by kvchecks.i18n


def manifests() -> dict[str, Path]:
    """Each assignment's name -> its manifest, in the order of their ``part``."""
    found = []
    for manifest in sorted((ROOT / "tests").glob("*/assignment.toml")):
        with open(manifest, "rb") as f:
            raw = tomllib.load(f)
        found.append((int(raw.get("part", 1)), raw["name"], manifest))
    return {name: manifest for _, name, manifest in sorted(found)}


def choose(name: str) -> None:
    """Make ``name`` this process's assignment (``KeyError`` when the kit has none of that name)."""
    every = manifests()
    if name not in every:
        raise KeyError(f"no assignment called {name!r}; the kit has {', '.join(every)}")
    os.environ[ENV] = str(every[name])


def ensure_chosen() -> None:
    """Make the first listed assignment this process's, unless one is chosen already (``KVKIT_ASSIGNMENT``)."""
    if not os.environ.get(ENV):
        os.environ[ENV] = str(next(iter(manifests().values())))


def courses() -> dict[str, tuple[str, str]]:
    """Every nbgrader assignment of the kit -> ``(its assignment, its language)``: each assignment's own (English)
    and one per edition (the manifest's ``[editions.LANG]`` names it)."""
    found = {}
    for name, manifest in manifests().items():
        with open(manifest, "rb") as f:
            editions = tomllib.load(f).get("editions", {})
        found[name] = (name, "en")
        found.update({edition["name"]: (name, lang) for lang, edition in editions.items()})
    return found


def choose_from_command_line(argv: list[str]) -> None:
    """For ``nbgrader_config.py``: the kit's assignment that nbgrader's command line names, if it names one (an
    edition's name chooses its assignment and its language)."""
    names = courses()
    for arg in argv:
        value = arg.split("=", 1)[-1]
        if value in names:
            assignment, lang = names[value]
            choose(assignment)
            if lang != "en":
                os.environ[LANG_ENV] = lang
            return

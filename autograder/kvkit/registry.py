"""The kit's assignments: every ``tests/NAME/assignment.toml``, in the order of their ``part`` (the first is the default).

Reads only the manifests' names, parts and editions (:class:`kvkit.paths.Layout` reads a whole manifest). A new
assignment is found by its manifest alone: nothing else lists it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def manifests() -> dict[str, Path]:
    """Each assignment's name -> its manifest, in the order of their ``part``."""
    found = []
    for manifest in sorted((ROOT / "tests").glob("*/assignment.toml")):
        with open(manifest, "rb") as f:
            raw = tomllib.load(f)
        found.append((int(raw.get("part", 1)), raw["name"], manifest))
    return {name: manifest for _, name, manifest in sorted(found)}


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

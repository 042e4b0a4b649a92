"""The kit's assignments: every ``tests/NAME/assignment.toml``, in the order of their ``part`` (the first is the default).

Reads only the manifests' names, parts and editions (:class:`kvkit.paths.Layout` reads a whole manifest). A new
assignment is found by its manifest alone: nothing else lists it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


_READ: dict[Path, tuple[tuple[int, int], dict]] = {}  # manifest -> (its mtime and size, its content)


def read_manifest(manifest: Path) -> dict:
    """``manifest``'s content, parsed again only when the file changed (one process, the formgrader's, reads them for
    every notebook)."""
    info = manifest.stat()
    stamp = (info.st_mtime_ns, info.st_size)
    kept = _READ.get(manifest)
    if kept is None or kept[0] != stamp:
        with open(manifest, "rb") as f:
            kept = _READ[manifest] = (stamp, tomllib.load(f))
    return kept[1]


def manifests() -> dict[str, Path]:
    """Each assignment's name -> its manifest, in the order of their ``part``."""
    found = []
    for manifest in sorted((ROOT / "tests").glob("*/assignment.toml")):
        raw = read_manifest(manifest)
        found.append((int(raw.get("part", 1)), raw["name"], manifest))
    return {name: manifest for _, name, manifest in sorted(found)}


def courses() -> dict[str, tuple[str, str]]:
    """Every nbgrader assignment of the kit -> ``(its assignment, its language)``: each assignment's own (English)
    and one per edition (the manifest's ``[editions.LANG]`` names it)."""
    found = {}
    for name, manifest in manifests().items():
        editions = read_manifest(manifest).get("editions", {})
        found[name] = (name, "en")
        found.update({edition["name"]: (name, lang) for lang, edition in editions.items()})
    return found

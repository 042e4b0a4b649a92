"""The kit README's list of its assignments, one entry per manifest, written by ``kvkit build`` between
:data:`START` and :data:`END`: a new assignment appears in it from its manifest alone (its part, name, editions and
``summary``), with its counts (regions of :mod:`kvkit.counts`, which ``build`` then fills) and links to its student
READMEs, its contract table and its tools' documentation (``autograder/material/NAME/tools/README.md``, if any).
"""

from __future__ import annotations

import re
import textwrap

from .counts import REGION
from .paths import Layout, layouts
from .registry import ROOT

START, END = "<!-- kvkit build: assignments -->", "<!-- end of assignments -->"
LIST = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
README = ROOT / "README.md"
COUNTED = ("todos", "checks", "points")
LANGUAGES = {"ja": ("Japanese", "日本語")}  # lang -> (its name in English, in itself)


def _count(field: str, name: str, before: str) -> str:
    """Assignment ``name``'s ``field`` region as ``before`` states it (``?`` where it has none yet: ``kvkit build``
    of that assignment writes the number)."""
    for match in REGION.finditer(before):
        if match.group("field") == field and match.group("name") == name:
            return match.group(0)
    return f"<!-- kvkit build: {field} of {name} -->?<!-- end -->"


def entry(layout: Layout, before: str) -> str:
    """One assignment's item of the list, its counts kept from ``before`` (the README's current text)."""
    a = layout.assignment
    counts = ", ".join(_count(field, a.name, before) for field in COUNTED)
    editions = "".join(f"; {LANGUAGES.get(e.lang, (e.lang,))[0]} edition `{e.name}`" for e in a.editions.values())
    skeleton = layout.skeleton.relative_to(ROOT).as_posix()
    readmes = f"[student README]({skeleton}/README.md)" + "".join(
        f" ([{LANGUAGES.get(e.lang, (e.lang, e.lang))[1]}]({skeleton}/{e.readme}))" for e in a.editions.values())
    links = [readmes, f"[contract]({layout.contract.relative_to(ROOT).as_posix()})"]
    tools = layout.tools / "README.md"
    if tools.is_file():
        links.append(f"[tools]({tools.relative_to(ROOT).as_posix()})")
    text = f"{a.summary} Package `{a.package}/`; {', '.join(links)}."
    body = textwrap.fill(text, width=116, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False)
    return f"- **Part {a.part}, `{a.name}`** ({counts}{editions}):\n{body}"


def written(text: str) -> str:
    """``text`` (the README) with its list written afresh from every manifest; unchanged where it has no list."""
    items = "\n".join(entry(layout, text) for layout in layouts())
    return LIST.sub(lambda _: f"{START}\n{items}\n{END}", text)


def stale() -> bool:
    """Whether the README's list is not what the manifests give."""
    text = README.read_text()
    return written(text) != text


def write() -> None:
    text = README.read_text()
    if written(text) != text:
        README.write_text(written(text))

"""``kvkit catalogs``: the message catalogues of every language the kit speaks (see :mod:`kvchecks.i18n`).

For each catalogue (the framework's ``kvchecks``, the graders' ``kvkit``, and per assignment its public checks'
``<name>`` and its hidden checks' ``<name>_hidden``), the messages marked in its code (``_``, ``N_``,
``ngettext``, found by Babel's extractor) are merged into ``locale/<lang>/LC_MESSAGES/<domain>.po``: new messages
come in untranslated, messages no longer in the code leave. Each ``.po`` is then compiled to its ``.mo``, which
is what the checks read (students need no Babel). ``--check`` changes nothing and fails when a message has no
translation or is marked fuzzy, or a ``.po`` or ``.mo`` is not what the code and the ``.po`` give.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

import kvchecks
from kvchecks.i18n import LANGUAGES

from ..errors import UsageError
from ..paths import layouts
from ..registry import ROOT

TRANSLATED = [lang for lang in LANGUAGES if lang != "en"]  # English is the source language
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}
KVKIT = Path(__file__).resolve().parents[1]  # the kvkit package: the graders' catalogue is kvkit/locale/


@dataclass(frozen=True)
class Domain:
    name: str
    sources: tuple[Path, ...]  # the Python files whose messages it holds
    localedir: Path

    def po(self, lang: str) -> Path:
        return self.localedir / lang / "LC_MESSAGES" / f"{self.name}.po"


def _python_files(folder: Path, recursive: bool = True) -> tuple[Path, ...]:
    found = folder.rglob("*.py") if recursive else folder.glob("*.py")
    return tuple(sorted(p for p in found if "__pycache__" not in p.parts))


def domains() -> list[Domain]:
    """Every catalogue of the kit."""
    framework = Path(kvchecks.__file__).resolve().parent
    found = [Domain("kvchecks", _python_files(framework), framework / "locale"),
             Domain("kvkit", _python_files(KVKIT), KVKIT / "locale")]
    for layout in layouts():
        name = layout.assignment.name
        found.append(Domain(name, _python_files(layout.public_tests), layout.public_tests / "locale"))
        if layout.hidden_tests.is_dir():
            found.append(Domain(f"{name}_hidden", _python_files(layout.hidden_tests, recursive=False),
                                layout.hidden_tests / "locale"))
    return found


def template(domain: Domain) -> Catalog:
    """The messages in ``domain``'s code, each with the places it comes from."""
    catalog = Catalog(domain=domain.name, project="kvkit")
    for source in domain.sources:
        for line, message, comments, context in extract_from_file("python", source, keywords=KEYWORDS):
            catalog.add(message, locations=[(source.relative_to(ROOT).as_posix(), line)], auto_comments=comments,
                        context=context)
    return catalog


def _bytes(write, catalog: Catalog, **options) -> bytes:
    out = io.BytesIO()
    write(out, catalog, **options)
    return out.getvalue()


def merged(domain: Domain, lang: str) -> Catalog:
    """The ``.po`` of ``lang`` with the code's messages merged in (a new one when there is none yet)."""
    path = domain.po(lang)
    if path.is_file():
        with path.open("rb") as f:
            catalog = read_po(f, locale=lang, domain=domain.name)
    else:
        catalog = Catalog(locale=lang, domain=domain.name, project="kvkit")
    catalog.update(template(domain), no_fuzzy_matching=True, update_creation_date=False)
    catalog.obsolete.clear()
    return catalog


def untranslated(catalog: Catalog) -> list[str]:
    return [str(m.id) for m in catalog if m.id and (not m.string or m.fuzzy
                                                    or (isinstance(m.string, tuple) and not all(m.string)))]


def problems(domain: Domain, lang: str) -> list[str]:
    """What ``--check`` would report for one catalogue."""
    catalog = merged(domain, lang)
    po, mo = domain.po(lang), domain.po(lang).with_suffix(".mo")
    found = [f"{po.relative_to(ROOT)}: no {lang} translation of {message!r}" for message in untranslated(catalog)]
    if not po.is_file() or po.read_bytes() != _bytes(write_po, catalog, width=116, sort_output=True, no_location=True):
        found.append(f"{po.relative_to(ROOT)} is not up to date with the code: run `kvkit catalogs`")
    if not mo.is_file() or mo.read_bytes() != _bytes(write_mo, catalog):
        found.append(f"{mo.relative_to(ROOT)} is not compiled from its .po: run `kvkit catalogs`")
    return found


def write(domain: Domain, lang: str) -> tuple[bool, int]:
    """Merge and compile one catalogue: whether its files changed, and the number of messages still without a
    translation."""
    catalog = merged(domain, lang)
    po = domain.po(lang)
    po.parent.mkdir(parents=True, exist_ok=True)
    changed = False
    for path, data in ((po, _bytes(write_po, catalog, width=116, sort_output=True, no_location=True)),
                       (po.with_suffix(".mo"), _bytes(write_mo, catalog))):
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
            changed = True
    return changed, len(untranslated(catalog))


def chosen(names: list[str] | None) -> list[Domain]:
    every = domains()
    unknown = sorted(set(names or ()) - {d.name for d in every})
    if unknown:
        raise UsageError(f"no catalogue called {', '.join(unknown)}; the kit has {', '.join(d.name for d in every)}")
    return [d for d in every if not names or d.name in names]


def run(args) -> int:
    if args.check:
        found = [line for domain in chosen(args.domain) for lang in TRANSLATED for line in problems(domain, lang)]
        for line in found[:40]:
            print(line)
        if len(found) > 40:
            print(f"... and {len(found) - 40} more")
        return 1 if found else 0
    for domain in chosen(args.domain):
        for lang in TRANSLATED:
            changed, missing = write(domain, lang)
            note = f"; {missing} message(s) to translate" if missing else ""
            done = "wrote" if changed else "up to date:"
            print(f"{done} {domain.po(lang).relative_to(ROOT)} and its .mo{note}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("catalogs", help="maintainers: merge the code's messages into the .po catalogues and compile "
                                        "the .mo files (every assignment)")
    p.add_argument("--check", action="store_true", help="change nothing; fail on an untranslated message or a stale "
                                                        "catalogue")
    p.add_argument("--domain", action="append", metavar="NAME",
                   help="only this catalogue (kvchecks, kvkit, an assignment's name, or NAME_hidden); repeatable")
    p.set_defaults(func=run)

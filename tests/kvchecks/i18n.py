"""The language of what students and instructors read: English, or Japanese on request.

Every message of the checks (failure reasons, hints, the score table) and of the graders goes through :func:`_`
(or :func:`ngettext`), Python's gettext. ``KVKIT_LANG=ja`` asks for Japanese (so do ``pytest --lang ja`` and
``kvkit --lang ja``, which set it); unset or anything else gives the English the code is written in. Nothing is
translated by machine: a message is looked up, when it is made, in catalogues written by people:

- each assignment's own messages (its checks and hints): ``<public tests>/locale/<lang>/LC_MESSAGES/<name>.po``;
- its hidden checks' messages, which only graders have: ``<hidden tests>/locale/...`` (registered by ``kvkit``);
- the framework's: ``kvchecks/locale/<lang>/LC_MESSAGES/kvchecks.po``, and the graders' (``kvkit``).

Each ``.po`` is compiled to the ``.mo`` beside it by ``kvkit catalogs``, which also adds new messages to the
``.po`` files; a kit test fails while a message has no translation or a ``.mo`` is stale. A message that is
defined before it is shown (a constant, a mistake's hint) is marked with :func:`N_` and translated where it is
used. :func:`width`, :func:`ljust` and :func:`rjust` pad text by terminal columns (a Japanese character takes two),
for tables in either language.
"""

from __future__ import annotations

import contextlib
import functools
import gettext
import os
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from . import assignment

ENV = "KVKIT_LANG"
LANGUAGES = ("en", "ja")  # English is the source language: it needs no catalogue
FRAMEWORK = ("kvchecks", Path(__file__).resolve().parent / "locale")
_domains: list[tuple[str, Path]] = []  # more catalogues (the graders', the hidden checks'), looked up first


def language() -> str:
    """The language asked for: ``ja`` for ``KVKIT_LANG=ja`` (or ``ja_JP`` ...), else ``en``."""
    asked = os.environ.get(ENV, "").replace("-", "_").split("_")[0].lower()
    return asked if asked in LANGUAGES else "en"


@contextlib.contextmanager
def speaking(lang: str) -> Iterator[None]:
    """Messages in ``lang`` inside the block (for writing an edition's notebook), as before after it."""
    before = os.environ.get(ENV)
    os.environ[ENV] = lang
    try:
        yield
    finally:
        if before is None:
            del os.environ[ENV]
        else:
            os.environ[ENV] = before


def add_domain(domain: str, localedir: Path) -> None:
    """Look messages up in ``domain``'s catalogue under ``localedir`` too (before the framework's)."""
    if (domain, Path(localedir)) not in _domains:
        _domains.append((domain, Path(localedir)))
        _catalogue.cache_clear()


def assignment_domain() -> tuple[str, Path]:
    """The current assignment's catalogue: its name, in ``locale/`` beside its manifest."""
    work = assignment.current()
    return work.name, work.manifest.parent / "locale"


@functools.cache
def _catalogue(lang: str, domains: tuple[tuple[str, Path], ...]) -> gettext.NullTranslations:
    chain = gettext.NullTranslations()
    for domain, localedir in reversed(domains):  # the first domain is asked first
        found = gettext.translation(domain, localedir, [lang], fallback=True)
        found.add_fallback(chain)
        chain = found
    return chain


def _lookup() -> gettext.NullTranslations | None:
    lang = language()
    if lang == "en":
        return None
    return _catalogue(lang, (*_domains, assignment_domain(), FRAMEWORK))


def _(message: str) -> str:
    """``message`` in the language asked for."""
    found = _lookup()
    return message if found is None else found.gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """``singular`` or ``plural`` (by ``count``) in the language asked for."""
    found = _lookup()
    if found is None:
        return singular if count == 1 else plural
    return found.ngettext(singular, plural, count)


def N_(message: str) -> str:
    """Mark ``message`` for the catalogues without translating it here (it is translated where it is shown)."""
    return message


def width(text: str) -> int:
    """How many terminal columns ``text`` takes (a Japanese character takes two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def ljust(text: str, columns: int) -> str:
    """``f"{text:<columns}"``, counting terminal columns rather than characters."""
    return text + " " * max(0, columns - width(text))


def rjust(text: str, columns: int) -> str:
    """``f"{text:>columns}"``, counting terminal columns rather than characters."""
    return " " * max(0, columns - width(text)) + text

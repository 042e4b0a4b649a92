"""The language of what students and instructors read: English, or Japanese on request.

Every message of the checks (failure reasons, hints, the score table) and of the graders goes through :func:`_`
(or :func:`ngettext`), Python's gettext, in the language of the context it is made in: English, the language the
code is written in, unless a block asks for another with :func:`speaking` (a context variable: one thread's language
is not another's). Who asks: the pytest plugin for its run (``pytest --lang ja``; a student's shell may say
``KVKIT_LANG=ja`` instead, see :func:`asked_in_environment`), a notebook's checks for their calls, and ``kvkit``
for what it writes in the language it is given (``kvkit --lang ja``, an nbgrader course's edition). Nothing is
translated by machine: a message is looked up, when it is made, in catalogues written by people:

- each assignment's own messages (its checks and hints): ``<public tests>/locale/<lang>/LC_MESSAGES/<name>.po``;
- its hidden checks' messages, which only graders have: ``<hidden tests>/locale/...`` (registered by the plugin
  where the hidden checks lie, in the kit);
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
from contextvars import ContextVar
from pathlib import Path

from . import assignment

ENV = "KVKIT_LANG"  # a student's shell: `KVKIT_LANG=ja pytest` (see asked_in_environment)
LANGUAGES = ("en", "ja")  # English is the source language: it needs no catalogue
FRAMEWORK = ("kvchecks", Path(__file__).resolve().parent / "locale")
_domains: list[tuple[str, Path]] = []  # more catalogues (the graders', the hidden checks'), looked up first
_language: ContextVar[str] = ContextVar("kvchecks_language", default="en")


def language() -> str:
    """The language of this context: ``en`` unless a :func:`speaking` block asks for another."""
    return _language.get()


def known(asked: str | None) -> str:
    """``ja`` for ``ja`` (or ``ja_JP.UTF-8``, ``JA`` ...), ``en`` for anything the kit does not speak."""
    lang = (asked or "").replace("-", "_").split("_")[0].lower()
    return lang if lang in LANGUAGES else "en"


def asked_in_environment() -> str:
    """The language a student's shell asks for (``KVKIT_LANG=ja pytest``): the default of the pytest plugin's
    ``--lang`` and of a notebook's checks. The kit's own commands never read it: they are given a language."""
    return known(os.environ.get(ENV))


@contextlib.contextmanager
def speaking(lang: str) -> Iterator[None]:
    """Messages in ``lang`` inside the block (in this context), as before after it."""
    token = _language.set(known(lang))
    try:
        yield
    finally:
        _language.reset(token)


def add_domain(domain: str, localedir: Path) -> None:
    """Look messages up in ``domain``'s catalogue under ``localedir`` too (before the framework's)."""
    if (domain, Path(localedir)) not in _domains:
        _domains.append((domain, Path(localedir)))
        _catalogue.cache_clear()


def assignment_domains() -> tuple[tuple[str, Path], ...]:
    """The current assignment's catalogue (its name, in ``locale/`` beside its manifest), when this context has an
    assignment (a grader's own messages, made outside any check, have none)."""
    try:
        work = assignment.current()
    except FileNotFoundError:
        return ()
    return ((work.name, work.manifest.parent / "locale"),)


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
    return _catalogue(lang, (*_domains, *assignment_domains(), FRAMEWORK))


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

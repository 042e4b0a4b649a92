"""The message catalogues: every message in Japanese, every compiled catalogue up to date, and the checks speak
Japanese when asked (and English when not)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from kvchecks import i18n
from kvkit.commands.catalogs import TRANSLATED, domains, problems
from kvkit.registry import ROOT
from layouts_support import LAYOUTS
from message_rules import internal_identifiers, japanese_list_problems, wrong_plurals

JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


def test_every_message_is_translated_and_every_catalogue_compiled():
    found = [line for domain in domains() for lang in TRANSLATED for line in problems(domain, lang)]
    assert not found, "run `kvkit catalogs` and translate:\n" + "\n".join(found[:30])


def test_a_placeholder_is_kept_by_every_translation():
    from babel.messages.pofile import read_po

    fields = re.compile(r"\{[^{}]*\}")
    for domain in domains():
        for lang in TRANSLATED:
            with domain.po(lang).open("rb") as f:
                for message in read_po(f):
                    if not message.id:
                        continue
                    ids = message.id if isinstance(message.id, tuple) else (message.id,)
                    strings = message.string if isinstance(message.string, tuple) else (message.string,)
                    for text in strings:
                        assert sorted(fields.findall(text)) == sorted(fields.findall(ids[-1])), (domain.name, ids[0])


def test_english_unless_japanese_is_asked_for(monkeypatch):
    """A student's shell asks with ``KVKIT_LANG`` (the self-check's default); the kit's code asks for a block."""
    monkeypatch.delenv(i18n.ENV, raising=False)
    assert i18n.asked_in_environment() == "en"
    for asked in ("ja", "ja_JP.UTF-8", "JA"):
        monkeypatch.setenv(i18n.ENV, asked)
        assert i18n.asked_in_environment() == "ja"
    monkeypatch.setenv(i18n.ENV, "fr")
    assert i18n.asked_in_environment() == "en"
    monkeypatch.setenv(i18n.ENV, "ja")
    assert i18n.language() == "en"  # the environment asks the self-check only
    with i18n.speaking("ja"):
        assert i18n.language() == "ja"
        with i18n.speaking("fr"):
            assert i18n.language() == "en"
    assert i18n.language() == "en"


def test_the_kits_messages_are_in_japanese_whichever_of_its_modules_speaks_first():
    """The kit's catalogue is the package's: ``kvkit notebook`` imports no grading, and wrote the Japanese courses'
    TODO tables in English while only ``kvkit.grading.grade`` named that catalogue (in a fresh interpreter, since the
    kit tests import everything)."""
    code = ("import sys\n"
            "from kvkit.course.template import _, speaking\n"
            "assert 'kvkit.grading.grade' not in sys.modules\n"
            "with speaking('ja'):\n"
            "    print(_('| TODO | what you write | points |'))\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert JAPANESE.search(run.stdout), run.stdout


@pytest.mark.slow
def test_the_self_check_speaks_japanese_when_asked():
    """The student's ``pytest`` on the skeleton: failure reasons and the score table in Japanese with ``--lang ja``
    (``KVKIT_LANG=ja``), in English without."""
    runs = {}
    public = LAYOUTS[0].public_tests
    for lang in ("en", "ja"):
        done = subprocess.run([sys.executable, "-m", "pytest", str(public), f"--lang={lang}", "-q", "-rf"],
                              cwd=ROOT,
                              capture_output=True, text=True, timeout=300,
                              env={**os.environ, "COLUMNS": "300"})  # room for each FAILED line's reason
        assert done.returncode == 1, done.stdout[-2000:]
        runs[lang] = done.stdout
    table = runs["ja"][runs["ja"].rindex("===="):]
    failures = [line for line in runs["ja"].splitlines() if line.startswith("FAILED")]
    assert JAPANESE.search(table) and failures and all(JAPANESE.search(line) for line in failures), runs["ja"][-1500:]
    assert not JAPANESE.search(runs["en"]), runs["en"][-1500:]


def _messages(domain, lang):
    from babel.messages.pofile import read_po

    with domain.po(lang).open("rb") as f:
        for message in read_po(f):
            if not message.id:
                continue
            ids = message.id if isinstance(message.id, tuple) else (message.id,)
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            yield ids, strings


def test_no_catalogue_names_an_internal_identifier():
    """A message a student reads never names the kit's own classes, labels, modules or probes
    (``message_rules``), in any language."""
    internal = internal_identifiers(*LAYOUTS)
    found = [f"{domain.name}/{lang}: {text!r}" for domain in domains() for lang in TRANSLATED
             for ids, strings in _messages(domain, lang) for text in ids + strings if internal.search(text)]
    assert not found, "\n".join(found[:20])


def test_japanese_lists_use_full_width_commas_without_stray_spaces():
    found = [f"{domain.name}: {text!r}: {japanese_list_problems(text)}" for domain in domains()
             for ids, strings in _messages(domain, "ja") for text in strings if japanese_list_problems(text)]
    assert not found, "\n".join(found[:20])


def test_plurals_go_through_ngettext():
    """A message whose number may be 1 next to a plural noun has its singular form (``ngettext``): no message
    reads "1 positions"."""
    for domain in domains():
        for ids, _strings in _messages(domain, "ja"):
            assert not wrong_plurals(" ".join(ids)), (domain.name, ids[0])

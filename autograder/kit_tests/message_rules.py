"""What no message a student sees may hold, shared by the kit tests that read messages (catalogues, the failures of
every example): the kit's internal identifiers, English plurals that do not agree with their number, Japanese lists
with half-width commas or stray spaces.
"""

from __future__ import annotations

import re

from kvkit.paths import Layout

# The kit's own names: the stand-ins' classes, the labels of their objects, module paths, probe names (identifiers
# with an underscore; a probe called by a plain word, such as ``rotary``, is a word of the text too).
_INTERNAL = [
    r"\bCropRecorder\b", r"\bStandInCache\b", r"\bListCache\b", r"\bCallLog\b", r"\b(?:target|draft)\d+\b",
    r"\bkvchecks\.\w", r"\b\w+_checks\b", r"\bprobes\.py\b", r"\bwith an? (?:never|mixed|same) draft\b",
]


def internal_identifiers(*layouts: Layout) -> re.Pattern:
    """The pattern of every internal identifier of the framework and of the assignments of ``layouts``."""
    probes = [name for layout in layouts for name in getattr(layout.assignment.checks_module(), "PROBES", {})
              if "_" in name]
    return re.compile("|".join(_INTERNAL + [rf"\b{re.escape(name)}\b" for name in probes]))


# A count of one followed by a plural noun ("cannot store 1 positions"); "1 of 3 values" and ranges are fine.
_ONE_PLURAL = re.compile(r"(?<![-+*/] )(?<![\d.\-])\b1 (?:positions|tokens|calls|times|entries|items|checks|slots|rows|proposals|"
                         r"heads|layers|values|prompts|points)\b")


def wrong_plurals(text: str) -> list[str]:
    return _ONE_PLURAL.findall(text)


# Japanese: a half-width comma between two Japanese words (a list written with "," instead of "、"), or a space
# beside the full-width comma or full stop.
_JAPANESE = r"[\u3040-\u30ff\u3400-\u9fff\uff00-\uffef]"
_HALF_WIDTH_LIST = re.compile(rf"{_JAPANESE}\s*,\s*{_JAPANESE}")
_SPACED = re.compile(r" [、。]|[、。] ")


def japanese_list_problems(text: str) -> list[str]:
    return _HALF_WIDTH_LIST.findall(text) + _SPACED.findall(text)

"""Hints for exceptions whose cause is known from their kind and message alone."""

from __future__ import annotations

import re

from kvchecks.i18n import _
from kvchecks.standins import SHOWN_AS

SHAPE_ERROR = re.compile(r"size of tensor a|must match the size|shape .* (is|are) invalid|cannot be broadcast|"
                         r"mat1 and mat2 shapes|expanded size|shape mismatch", re.IGNORECASE)


def error_hint(kind: str, message: str, todo: int | None) -> str:
    """The hint for this exception, or ``""``."""
    if todo == 2 and kind == "AttributeError" and SHOWN_AS in message:
        return _("the checks of TODO 2 give your layer a stand-in cache that offers update(layer, keys, values) "
                 "and current_length only: attend over the (keys, values) that kv_cache.update returns.")
    if todo == 2 and kind == "RuntimeError" and SHAPE_ERROR.search(message):
        return _("with L cached and S new positions, q is [B, H, S, head_dim] while the keys and values that "
                 "update returns are [B, H, L + S, head_dim]: the scores, and any mask, are [S, L + S] per head.")
    return ""

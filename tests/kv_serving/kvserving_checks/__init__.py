"""Part 2's checks package: the probes that drive a student's ``kvserving``, the configurations the public checks
use, the known mistakes and the exception hints (see :mod:`kvchecks.assignment`).

TODOs 1-3 (attention, rotation, the bounded cache) have theirs in :mod:`.attention`, TODOs 4-6 (batches,
rollback, speculative decoding) in :mod:`.generation`; each module defines ``PROBES``, ``MISTAKES`` and
``error_hint``.
"""

from . import attention, generation

PROBES = {**attention.PROBES, **generation.PROBES}
MISTAKES = attention.MISTAKES + generation.MISTAKES


def error_hint(kind: str, message: str, todo: int | None) -> str:
    """The hint for an exception whose cause is known from its kind and message alone, or ``""``."""
    return attention.error_hint(kind, message, todo) or generation.error_hint(kind, message, todo)


__all__ = ["MISTAKES", "PROBES", "error_hint"]

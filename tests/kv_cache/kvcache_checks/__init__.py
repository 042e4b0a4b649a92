"""Part 1's checks package: the probes that drive a student's ``kvcache``, the configurations the public checks
use, the known mistakes, the fresh-input rules of its probes and its exception hints (see
:mod:`kvchecks.assignment`)."""

from .fresh import redraw
from .hints import error_hint
from .mistakes import MISTAKES
from .probes import PROBES

__all__ = ["MISTAKES", "PROBES", "error_hint", "redraw"]

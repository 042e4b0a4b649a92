"""Part 3's checks package: the probes that drive a student's ``kvpaging``, the configurations the public checks
use, the known mistakes, the exception hints and the fresh-input rule for token lists (see
:mod:`kvchecks.assignment`).

TODOs 1-3 (the pool, the block tables, paged attention) have their probes in :mod:`.pool`, TODOs 4-6 (the prefix
cache, the scheduler, the int8 cache) in :mod:`.serving`; the known mistakes and hints are in :mod:`.mistakes`.
"""

from . import pool, serving
from .common import redraw
from .mistakes import MISTAKES, error_hint

PROBES = {**pool.PROBES, **serving.PROBES}

__all__ = ["MISTAKES", "PROBES", "error_hint", "redraw"]

"""Stand-ins that every assignment's probes give the student's code in place of another TODO's work.

:class:`ListCache` lets an attention layer be checked without the student's
cache: it offers ``update(layer, keys, values)`` and ``current_length`` only
(an attention that reads anything else fails with an ``AttributeError``,
which the assignments' hints explain).

A stand-in's class name is the kit's own: :func:`shown` puts what the student
should read in its place in the messages of the exceptions the student's code
raises (:func:`kvchecks.failures.describe`), and an assignment's stand-ins
register themselves with :func:`stand_in`.
"""

from __future__ import annotations

import re

import torch

SHOWN_AS = "the checks' stand-in cache"
_STAND_INS: set[str] = set()


def stand_in(cls: type) -> type:
    """Class decorator: exceptions that name ``cls`` say :data:`SHOWN_AS` instead."""
    _STAND_INS.add(cls.__name__)
    return cls


def shown(message: str) -> str:
    """``message`` with every stand-in's class name replaced by :data:`SHOWN_AS` (``'ListCache' object has no
    attribute 'keys'`` -> ``the checks' stand-in cache has no attribute 'keys'``)."""
    if not _STAND_INS:
        return message
    names = "|".join(re.escape(name) for name in sorted(_STAND_INS))
    message = re.sub(rf"'(?:{names})' object", SHOWN_AS, message)
    return re.sub(rf"\b(?:{names})\b", SHOWN_AS, message)


@stand_in
class ListCache:
    """A cache that keeps each layer's chunks in a list and concatenates them on every ``update``.

    That is the reallocation a preallocated cache avoids; here it keeps the
    stand-in obviously right. Every ``update`` call is recorded in ``calls``
    (layer, the shapes given, ``current_length`` then); the probe, not the
    cache, advances ``current_length``.
    """

    def __init__(self, num_layers: int) -> None:
        self.current_length = 0
        self.calls: list[dict] = []
        self._keys: list[list[torch.Tensor]] = [[] for _ in range(num_layers)]
        self._values: list[list[torch.Tensor]] = [[] for _ in range(num_layers)]

    def update(self, layer: int, new_keys: torch.Tensor, new_values: torch.Tensor):
        """Record the call, keep a copy of the chunk ``[B, heads, n, hd]``, return every chunk so far,
        ``[B, heads, L + n, hd]`` each."""
        self.calls.append({"layer": layer, "keys_shape": list(new_keys.shape), "values_shape": list(new_values.shape),
                           "length": self.current_length})
        self._keys[layer].append(new_keys.detach().clone())
        self._values[layer].append(new_values.detach().clone())
        return torch.cat(self._keys[layer], dim=2), torch.cat(self._values[layer], dim=2)

    def stored(self, layer: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Everything ``layer`` received, concatenated (None when it received nothing)."""
        if not self._keys[layer]:
            return None, None
        return torch.cat(self._keys[layer], dim=2), torch.cat(self._values[layer], dim=2)

    def tamper(self, layer: int) -> None:
        """Change what is stored for ``layer``: keys scaled by 1.5, values negated."""
        self._keys[layer] = [1.5 * k for k in self._keys[layer]]
        self._values[layer] = [-v for v in self._values[layer]]

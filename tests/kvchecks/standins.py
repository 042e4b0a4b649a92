"""Stand-ins that every assignment's probes give the student's code in place of another TODO's work.

:class:`ListCache` lets an attention layer be checked without the student's
cache: it offers ``update(layer, keys, values)`` and ``current_length`` only
(an attention that reads anything else fails with an ``AttributeError`` naming
``ListCache``, which the assignments' hints explain).
"""

from __future__ import annotations

import torch


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

"""Two caches of keys and values, both preallocated and written in place.

:class:`KVCache` keeps every position up to ``max_seq_len`` (part 1's cache,
with ``num_kv_heads`` heads, rollback included). :class:`SinkWindowCache`
keeps a fixed budget: the first ``sinks`` positions and a sliding window of
the latest ``window`` ones, as a ring buffer, so a chat of any length runs in
constant memory.

Both offer the same interface to the model: ``update(layer, keys, values)``
returns the keys and values the new tokens attend over, ``key_index(n)`` the
sequence index of each of them, and ``advance(n)``, called by the model once
after its last layer, counts the new positions. Shapes: ``B`` batch, ``Hkv``
key/value heads, ``hd`` head size, ``n`` new positions.
"""

from __future__ import annotations

import torch


class CacheOverflowError(ValueError):
    """Raised when a write would run past a :class:`KVCache`'s ``max_seq_len``."""


def _check_layer_and_shapes(cache, layer: int, new_keys: torch.Tensor, new_values: torch.Tensor) -> None:
    """``IndexError`` for a layer out of range, ``ValueError`` for tensors that do not fit ``cache``."""
    if not 0 <= layer < cache.num_layers:
        raise IndexError(f"layer {layer} is out of range: this cache has layers 0..{cache.num_layers - 1}")
    if new_keys.shape != new_values.shape:
        raise ValueError(
            f"new_keys {tuple(new_keys.shape)} and new_values {tuple(new_values.shape)} must have the same shape"
        )
    expected = (cache.batch_size, cache.num_kv_heads, cache.head_dim)
    if new_keys.dim() != 4 or (new_keys.shape[0], new_keys.shape[1], new_keys.shape[3]) != expected:
        raise ValueError(
            f"new keys/values must be [batch_size={cache.batch_size}, num_kv_heads={cache.num_kv_heads}, n, "
            f"head_dim={cache.head_dim}], got {tuple(new_keys.shape)}"
        )


class KVCache:
    """Keys and values of every layer for every position seen so far, up to ``max_seq_len``.

    ``keys[layer]`` and ``values[layer]`` have shape ``[batch_size,
    num_kv_heads, max_seq_len, head_dim]``, allocated once; positions
    ``[0, current_length)`` hold data. Slot ``j`` holds the token at sequence
    index ``j`` (with left padding, the padding's slots too).
    """

    def __init__(self, num_layers: int, batch_size: int, num_kv_heads: int, head_dim: int, max_seq_len: int,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> None:
        self.num_layers = num_layers
        self.batch_size = batch_size
        self.num_kv_heads = num_kv_heads
        self.head_dim = head_dim
        self.max_seq_len = max_seq_len
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype
        shape = (batch_size, num_kv_heads, max_seq_len, head_dim)
        self.keys = [torch.zeros(shape, device=self.device, dtype=dtype) for _ in range(num_layers)]
        self.values = [torch.zeros(shape, device=self.device, dtype=dtype) for _ in range(num_layers)]
        self.current_length = 0

    def update(self, layer: int, new_keys: torch.Tensor, new_values: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store ``n`` new positions of one layer at ``current_length``; views of positions ``[0, current_length +
        n)``, each ``[B, Hkv, current_length + n, hd]``. ``current_length`` is left alone (see :meth:`advance`).

        Raises ``IndexError`` (layer), ``ValueError`` (shapes), ``CacheOverflowError`` (past ``max_seq_len``;
        nothing is written).
        """
        _check_layer_and_shapes(self, layer, new_keys, new_values)
        start, end = self.current_length, self.current_length + new_keys.shape[2]
        if end > self.max_seq_len:
            raise CacheOverflowError(
                f"cannot store {new_keys.shape[2]} {'position' if new_keys.shape[2] == 1 else 'positions'} after "
                f"{start}: the cache holds at most "
                f"{self.max_seq_len}; make a larger cache, or crop it"
            )
        self.keys[layer][:, :, start:end] = new_keys
        self.values[layer][:, :, start:end] = new_values
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def key_index(self, n: int) -> torch.Tensor:
        """The sequence index of each key that :meth:`update` returns for ``n`` new positions: ``[current_length +
        n]`` long, ``0 .. current_length + n - 1``."""
        return torch.arange(self.current_length + n, device=self.device)

    def advance(self, n: int) -> None:
        """Count ``n`` new positions (the model calls it once per forward, after its last layer)."""
        self.current_length += n

    def crop(self, length: int) -> None:
        """Roll the cache back to its first ``length`` positions.

        Afterwards ``current_length == length``. Nothing else changes: the
        buffers keep every value they hold (positions from ``length`` on are
        unused space again, and the next :meth:`update` overwrites them).
        ``crop(current_length)`` changes nothing.

        Raises:
            ValueError: ``length`` is negative or greater than ``current_length``
                (a crop never grows the cache); nothing changes.
        """
        raise NotImplementedError('TODO 5: KVCache.crop - roll the cache back to its first length positions; change nothing else')

    def reset(self) -> None:
        """Forget every stored position (the buffers are kept for reuse)."""
        self.current_length = 0

    def nbytes(self) -> int:
        """Bytes held by the key and value buffers of all layers."""
        return sum(t.numel() * t.element_size() for t in self.keys + self.values)


class SinkWindowCache:
    """A cache of fixed size for chats of any length: ``sinks`` first positions and the latest ``window``.

    ``keys[layer]`` and ``values[layer]`` have shape ``[batch_size,
    num_kv_heads, sinks + window, head_dim]``, allocated once. Slot ``s <
    sinks`` holds position ``s`` for good; the other slots form a ring:
    position ``t >= sinks`` goes to slot ``sinks + (t - sinks) % window``
    (:meth:`slot`), over the oldest position there. ``current_length`` counts
    every position seen (it grows without bound; the memory does not); the
    first ``min(current_length, sinks + window)`` slots hold data.

    It keeps what a model whose attention rule is "the first ``sinks``
    positions and the latest ``window``" (``Transformer(sinks=..., window=...)``)
    can still see, so each step equals that model run without a cache.
    """

    def __init__(self, num_layers: int, batch_size: int, num_kv_heads: int, head_dim: int, sinks: int, window: int,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> None:
        if sinks < 0 or window < 1:
            raise ValueError(f"need sinks >= 0 and window >= 1, got sinks={sinks}, window={window}")
        self.num_layers = num_layers
        self.batch_size = batch_size
        self.num_kv_heads = num_kv_heads
        self.head_dim = head_dim
        self.sinks = sinks
        self.window = window
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype
        shape = (batch_size, num_kv_heads, sinks + window, head_dim)
        self.keys = [torch.zeros(shape, device=self.device, dtype=dtype) for _ in range(num_layers)]
        self.values = [torch.zeros(shape, device=self.device, dtype=dtype) for _ in range(num_layers)]
        self.current_length = 0

    @property
    def budget(self) -> int:
        """Slots per layer: ``sinks + window``."""
        return self.sinks + self.window

    def stored(self) -> int:
        """How many slots hold data: ``min(current_length, sinks + window)``."""
        return min(self.current_length, self.budget)

    def slot(self, position: int) -> int:
        """The slot that holds ``position``: itself for a sink, else its place in the ring."""
        return position if position < self.sinks else self.sinks + (position - self.sinks) % self.window

    def key_index(self, n: int) -> torch.Tensor:
        """The sequence index of each key that :meth:`update` returns for ``n`` new positions: the position each
        stored slot holds, in slot order, then ``current_length .. current_length + n - 1``."""
        held = [0] * self.stored()
        for position in range(max(0, self.current_length - self.window), self.current_length):
            held[self.slot(position)] = position
        for position in range(min(self.sinks, self.current_length)):
            held[position] = position
        return torch.tensor(held + list(range(self.current_length, self.current_length + n)), dtype=torch.long,
                            device=self.device)

    def update(self, layer: int, new_keys: torch.Tensor, new_values: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Read what the new tokens attend over, then store them in the ring, in place.

        Args:
            layer: ``0 <= layer < num_layers``.
            new_keys: ``[B, Hkv, n, hd]``, the keys of positions
                ``current_length .. current_length + n - 1``.
            new_values: same shape as ``new_keys``.

        Returns:
            ``(keys, values)``, each ``[B, Hkv, stored() + n, hd]``: the
            ``stored()`` slots that held data before this call, in slot order,
            then the ``n`` new entries (in the order :meth:`key_index` gives).
            They are read before the write, so in a chunk (``n > 1``) an early
            new token can still see an old position that a later one evicts;
            they are new tensors, not views of the buffers.

        Then new entry ``i`` (position ``t = current_length + i``) is written
        into slot :meth:`slot` ``(t)`` of ``keys[layer]`` and ``values[layer]``,
        in place, in order (when ``n > window``, a later entry overwrites an
        earlier one in the same slot: the latest ``window`` stay). Nothing else
        changes: other layers, other slots and ``current_length``.

        Raises:
            IndexError: ``layer`` is not a valid layer index.
            ValueError: the tensors differ in shape, or do not match the cache's
                batch size, number of key/value heads or head size.
        """
        raise NotImplementedError('TODO 3: SinkWindowCache.update - return the stored slots and the new entries, then write the new entries into their ring slots in place')

    def advance(self, n: int) -> None:
        """Count ``n`` new positions (the model calls it once per forward, after its last layer)."""
        self.current_length += n

    def nbytes(self) -> int:
        """Bytes held by the key and value buffers of all layers: fixed at construction."""
        return sum(t.numel() * t.element_size() for t in self.keys + self.values)

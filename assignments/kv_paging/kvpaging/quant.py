"""One sequence's cache, in float (:class:`KVCache`) and in int8 with a scale per token and head
(:class:`Int8KVCache`): about a quarter of the bytes, for a bounded error.

Both store layer ``layer``'s keys and values of positions ``0 .. current_length - 1`` in buffers allocated
once, ``[L, max_seq_len, Hkv, hd]``, and offer the model ``update(layer, new_keys, new_values)`` and
``advance(n)``. Shapes: ``L`` layers, ``n`` new positions, ``Hkv`` key/value heads, ``hd`` head size.
"""

from __future__ import annotations

import torch


def check_update(cache, layer: int, new_keys: torch.Tensor, new_values: torch.Tensor) -> None:
    """What both caches refuse before writing anything: ``IndexError`` for a layer out of range, ``ValueError`` for
    tensors that are not both ``[n, Hkv, hd]`` or positions past ``max_seq_len``."""
    if not 0 <= layer < cache.num_layers:
        raise IndexError(f"layer {layer} is out of range: this cache has layers 0..{cache.num_layers - 1}")
    if new_keys.shape != new_values.shape or new_keys.dim() != 3 or \
            tuple(new_keys.shape[1:]) != (cache.num_kv_heads, cache.head_dim):
        raise ValueError(f"new keys and values must both be [n, num_kv_heads={cache.num_kv_heads}, "
                         f"head_dim={cache.head_dim}], got {tuple(new_keys.shape)} and {tuple(new_values.shape)}")
    if cache.current_length + new_keys.shape[0] > cache.max_seq_len:
        count = new_keys.shape[0]
        raise ValueError(f"cannot store {count} more {'position' if count == 1 else 'positions'} after "
                         f"{cache.current_length}: the cache holds at most {cache.max_seq_len}")


class KVCache:
    """Keys and values in the model's float dtype: ``keys`` and ``values`` ``[L, max_seq_len, Hkv, hd]``."""

    def __init__(self, num_layers: int, num_kv_heads: int, head_dim: int, max_seq_len: int,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> None:
        self.num_layers, self.num_kv_heads, self.head_dim = num_layers, num_kv_heads, head_dim
        self.max_seq_len = max_seq_len
        shape = (num_layers, max_seq_len, num_kv_heads, head_dim)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.current_length = 0

    def update(self, layer: int, new_keys: torch.Tensor, new_values: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store ``n`` new positions of one layer at ``current_length``; return views of positions ``[0,
        current_length + n)``, ``[current_length + n, Hkv, hd]`` each. ``current_length`` is left alone."""
        check_update(self, layer, new_keys, new_values)
        end = self.current_length + new_keys.shape[0]
        self.keys[layer, self.current_length:end] = new_keys
        self.values[layer, self.current_length:end] = new_values
        return self.keys[layer, :end], self.values[layer, :end]

    def advance(self, n: int) -> None:
        """Count ``n`` new positions (the model calls it once per forward, after its last layer)."""
        self.current_length += n

    def nbytes(self) -> int:
        """Bytes of the key and value buffers."""
        return sum(t.numel() * t.element_size() for t in (self.keys, self.values))


class Int8KVCache:
    """Keys and values as int8, each token's head with its own scale.

    ``keys``, ``values``: int8 ``[L, max_seq_len, Hkv, hd]``; ``key_scales``,
    ``value_scales``: float32 ``[L, max_seq_len, Hkv]``, all allocated once.
    Entry ``x`` (a row of ``hd`` numbers: one position, one head) is stored
    as ``q = round(x / s)`` with ``s = max|x| / 127``, so ``q`` lies in
    ``-127 .. 127`` and reads back as ``q * s``, within ``s / 2 = max|x| /
    254`` of ``x`` in every element. That costs ``hd + 4`` bytes per row
    instead of ``4 hd`` in float32: ``(hd + 4) / (4 hd)`` of the float
    cache's bytes (0.27 at ``hd = 64``).
    """

    def __init__(self, num_layers: int, num_kv_heads: int, head_dim: int, max_seq_len: int,
                 device: torch.device | str | None = None) -> None:
        self.num_layers, self.num_kv_heads, self.head_dim = num_layers, num_kv_heads, head_dim
        self.max_seq_len = max_seq_len
        shape = (num_layers, max_seq_len, num_kv_heads, head_dim)
        self.keys = torch.zeros(shape, device=device, dtype=torch.int8)
        self.values = torch.zeros(shape, device=device, dtype=torch.int8)
        self.key_scales = torch.zeros(shape[:-1], device=device, dtype=torch.float32)
        self.value_scales = torch.zeros(shape[:-1], device=device, dtype=torch.float32)
        self.current_length = 0

    def update(self, layer: int, new_keys: torch.Tensor, new_values: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Quantize ``n`` new positions of one layer into the int8 buffers, then read every stored position back.

        Args:
            layer: ``0 <= layer < num_layers``.
            new_keys: ``[n, Hkv, hd]`` float, the keys of positions
                ``current_length .. current_length + n - 1``.
            new_values: same shape as ``new_keys``.

        For each new row ``x`` (one position, one head): ``s = max|x| /
        127`` (``s = 0`` for a row of zeros, which is stored as zeros) goes
        to ``key_scales[layer, t, h]`` (``value_scales`` for values) and
        ``round(x / s)`` (to the nearest integer, not truncated) as int8 to
        ``keys[layer, t, h]``, in place, at position ``t``. Nothing else
        changes: other layers, other positions, ``current_length``.

        Returns:
            ``(keys, values)``: new tensors ``[current_length + n, Hkv, hd]``
            of ``new_keys``' dtype, every stored position read back as ``q *
            s`` (the new positions too: what the model attends over now is
            what later steps will read).

        Raises:
            IndexError: ``layer`` is out of range.
            ValueError: the tensors are not both ``[n, Hkv, hd]``, or the
                positions would run past ``max_seq_len``; nothing changes.
        """
        raise NotImplementedError("TODO 6: Int8KVCache.update - store each new position's head as int8 with its own absmax scale, then read every stored position back")

    def advance(self, n: int) -> None:
        """Count ``n`` new positions (the model calls it once per forward, after its last layer)."""
        self.current_length += n

    def nbytes(self) -> int:
        """Bytes of the int8 buffers and their scales."""
        return sum(t.numel() * t.element_size() for t in (self.keys, self.values, self.key_scales,
                                                           self.value_scales))

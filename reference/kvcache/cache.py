"""The key/value cache: one preallocated buffer per layer, filled in place."""

from __future__ import annotations

import torch


class CacheOverflowError(ValueError):
    """Raised when a write would run past the cache's ``max_seq_len``."""


class KVCache:
    """Keys and values of every layer for the tokens seen so far.

    Buffers are allocated once, at their full size, and written in place:
    ``keys[layer]`` and ``values[layer]`` have shape
    ``[batch_size, num_heads, max_seq_len, head_dim]``. Positions
    ``[0, current_length)`` hold real data; the rest is unused space.

    ``current_length`` counts the positions already stored in *every* layer.
    The model advances it once per forward pass, after its last layer has
    written; :meth:`update` never changes it.
    """

    def __init__(
        self,
        num_layers: int,
        batch_size: int,
        num_heads: int,
        head_dim: int,
        max_seq_len: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.num_layers = num_layers
        self.batch_size = batch_size
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.max_seq_len = max_seq_len
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype
        shape = (batch_size, num_heads, max_seq_len, head_dim)
        self.keys = [torch.zeros(shape, device=self.device, dtype=dtype) for _ in range(num_layers)]
        self.values = [torch.zeros(shape, device=self.device, dtype=dtype) for _ in range(num_layers)]
        self.current_length = 0

    def update(
        self, layer: int, new_keys: torch.Tensor, new_values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the keys and values of ``n`` new positions for one layer.

        Args:
            layer: which layer's buffers to write, ``0 <= layer < num_layers``.
            new_keys: ``[batch_size, num_heads, n, head_dim]``.
            new_values: same shape as ``new_keys``.

        Returns:
            ``(keys, values)``: views of this layer's buffers over positions
            ``[0, current_length + n)``, each ``[batch_size, num_heads,
            current_length + n, head_dim]``. They share memory with the cache.

        The new entries go to positions ``[current_length, current_length + n)``
        of ``keys[layer]`` and ``values[layer]``, in place; nothing else in the
        cache changes, ``current_length`` included.

        Raises:
            IndexError: ``layer`` is not a valid layer index.
            ValueError: the two tensors differ in shape, or do not match the
                cache's batch size, number of heads or head size.
            CacheOverflowError: the write would pass ``max_seq_len``; nothing
                is written.
        """
        ### BEGIN SOLUTION
        if not 0 <= layer < self.num_layers:
            raise IndexError(f"layer {layer} is out of range: this cache has layers 0..{self.num_layers - 1}")
        if new_keys.shape != new_values.shape:
            raise ValueError(
                f"new_keys {tuple(new_keys.shape)} and new_values {tuple(new_values.shape)} must have the same shape"
            )
        expected = (self.batch_size, self.num_heads, self.head_dim)
        if new_keys.dim() != 4 or (new_keys.shape[0], new_keys.shape[1], new_keys.shape[3]) != expected:
            raise ValueError(
                f"new keys/values must be [batch_size={self.batch_size}, num_heads={self.num_heads}, n, "
                f"head_dim={self.head_dim}], got {tuple(new_keys.shape)}"
            )
        start = self.current_length
        end = start + new_keys.shape[2]
        if end > self.max_seq_len:
            raise CacheOverflowError(
                f"cannot store {new_keys.shape[2]} {'position' if new_keys.shape[2] == 1 else 'positions'} after "
                f"{start}: the cache holds at most "
                f"{self.max_seq_len}; make a larger cache or start a new one"
            )
        self.keys[layer][:, :, start:end] = new_keys
        self.values[layer][:, :, start:end] = new_values
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]
        ### END SOLUTION

    def reset(self) -> None:
        """Forget every stored position (the buffers are kept for reuse)."""
        self.current_length = 0

    def nbytes(self) -> int:
        """Bytes held by the key and value buffers of all layers."""
        return sum(t.numel() * t.element_size() for t in self.keys + self.values)

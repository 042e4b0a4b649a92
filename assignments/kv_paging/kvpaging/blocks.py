"""The block pool: a fixed number of fixed-size blocks of key/value slots, shared by every sequence and layer.

A contiguous cache reserves ``max_seq_len`` slots per sequence whatever its length; a paged cache hands out
blocks of ``block_size`` slots as a sequence grows, from one pool allocated once. Shapes: ``L`` layers, ``NB``
blocks, ``Hkv`` key/value heads, ``bs`` slots per block, ``hd`` head size.
"""

from __future__ import annotations

import torch


class OutOfBlocks(RuntimeError):
    """The pool has fewer free blocks than a request needs; nothing was changed."""


class BlockAllocator:
    """``num_blocks`` blocks of ``block_size`` token slots for every layer, allocated once.

    ``keys`` and ``values`` are ``[L, NB, Hkv, bs, hd]``: block ``b`` of every
    layer belongs to whoever holds block ``b``. ``ref_counts[b]`` counts its
    holders (sequences, the prefix cache); a block whose count is 0 is free.
    A block shared by several holders is read by all of them and written by
    none (see :meth:`PagedKVCache.append`).
    """

    def __init__(self, num_blocks: int, block_size: int, num_layers: int, num_kv_heads: int, head_dim: int,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> None:
        if num_blocks < 1 or block_size < 1:
            raise ValueError(f"need num_blocks >= 1 and block_size >= 1, got {num_blocks} and {block_size}")
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.num_layers = num_layers
        self.num_kv_heads = num_kv_heads
        self.head_dim = head_dim
        shape = (num_layers, num_blocks, num_kv_heads, block_size, head_dim)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.ref_counts = [0] * num_blocks

    def num_free(self) -> int:
        """How many blocks no one holds."""
        return self.ref_counts.count(0)

    def allocate(self, n: int) -> list[int]:
        """Take ``n`` free blocks for a new holder.

        Returns the ``n`` lowest-numbered free blocks (reference count 0), in
        increasing order, as a list of ints; each now has reference count 1. Their slots keep whatever they held (the writer overwrites them).
        ``allocate(0)`` returns ``[]``. A block freed earlier is free again and
        taken like any other (lowest number first).

        Raises:
            ValueError: ``n`` is negative.
            OutOfBlocks: fewer than ``n`` blocks are free (the message says how
                many were asked for and how many are free); nothing changes.
        """
        raise NotImplementedError('TODO 1: BlockAllocator.allocate - take the n lowest-numbered free blocks, each with one reference; refuse with OutOfBlocks, changing nothing')

    def _check_held(self, blocks: list[int], times: dict[int, int]) -> None:
        """``ValueError`` unless each block is a block of the pool held at least ``times[block]`` times."""
        for block in blocks:
            if not 0 <= block < self.num_blocks:
                raise ValueError(f"block {block} is not a block of this pool (0 .. {self.num_blocks - 1})")
            if self.ref_counts[block] < times[block]:
                raise ValueError(f"block {block} is released more often than it is held (reference count "
                                 f"{self.ref_counts[block]}, released {times[block]})")

    def share(self, blocks: list[int]) -> None:
        """One more holder for each block (a block listed twice gains two); ``ValueError`` for a free block or one
        outside the pool, before anything changes."""
        self._check_held(blocks, {block: 1 for block in blocks})
        for block in blocks:
            self.ref_counts[block] += 1

    def free(self, blocks: list[int]) -> None:
        """One holder fewer for each block; a block whose count reaches 0 is free again. ``ValueError`` for a block
        released more times than it is held, or outside the pool, before anything changes."""
        times: dict[int, int] = {}
        for block in blocks:
            times[block] = times.get(block, 0) + 1
        self._check_held(blocks, times)
        for block in blocks:
            self.ref_counts[block] -= 1

    def copy_block(self, source: int, target: int) -> None:
        """Copy block ``source``'s keys and values, every layer and slot, into block ``target``."""
        self.keys[:, target] = self.keys[:, source]
        self.values[:, target] = self.values[:, source]

    def nbytes(self) -> int:
        """Bytes of the key and value pool: fixed at construction."""
        return self.keys.numel() * self.keys.element_size() + self.values.numel() * self.values.element_size()

"""Sequences' block tables over one pool: where each position's keys and values live.

Sequence ``s`` holds ``lengths[s]`` positions; position ``p`` is slot ``p % bs`` of block
``block_tables[s][p // bs]``, so its flat slot in the pool is ``block_tables[s][p // bs] * bs + p % bs``
(``bs``: the block size). Blocks need not be consecutive, or in order: a sequence grows one block at a time,
wherever the pool has one free. Shapes: ``N`` new positions of a call, ``Hkv`` key/value heads, ``hd`` head size.
"""

from __future__ import annotations

import torch

from .blocks import BlockAllocator, OutOfBlocks


class PagedKVCache:
    """The block tables of many sequences, over one :class:`BlockAllocator` that every layer shares.

    ``block_tables[seq_id]``: the blocks holding the sequence, in order, a
    list of ints; ``lengths[seq_id]``: how many positions it holds. A table
    may hold more blocks than its length needs (a prefix cache reserves a
    prompt's blocks at once), never fewer. Each table entry is one reference
    of that block (see :attr:`BlockAllocator.ref_counts`).
    """

    def __init__(self, allocator: BlockAllocator) -> None:
        self.allocator = allocator
        self.block_size = allocator.block_size
        self.block_tables: dict[int, list[int]] = {}
        self.lengths: dict[int, int] = {}

    def add_sequence(self, seq_id: int, blocks: list[int] = (), length: int = 0) -> None:
        """Start sequence ``seq_id`` on ``blocks`` (already holding one reference each for it: from ``allocate`` or
        ``share``), of which the first ``length`` positions hold data. ``ValueError`` for a sequence the cache
        holds already, or a length the blocks cannot hold."""
        if seq_id in self.block_tables:
            raise ValueError(f"sequence {seq_id} is in the cache already")
        if not 0 <= length <= len(blocks) * self.block_size:
            raise ValueError(f"blocks {list(blocks)} with block_size={self.block_size} cannot hold length {length}")
        self.block_tables[seq_id] = list(blocks)
        self.lengths[seq_id] = length

    def blocks_needed(self, seq_id: int, n: int) -> int:
        """How many blocks ``append(seq_id, n)`` takes from the pool: one per block past the table's end, and one copy
        per shared block the new positions fall in. A sequence the cache does not hold counts as empty (``ceil(n /
        bs)``)."""
        table = self.block_tables.get(seq_id, [])
        start = self.lengths.get(seq_id, 0)
        if n <= 0:
            return 0
        first, last = start // self.block_size, (start + n - 1) // self.block_size
        shared = sum(self.allocator.ref_counts[block] > 1 for block in table[first:last + 1])
        return max(0, last + 1 - len(table)) + shared

    def append(self, seq_id: int, n: int) -> list[int]:
        """Make room for ``n`` new positions of sequence ``seq_id`` and return their slots.

        The new positions are ``L .. L + n - 1`` (``L = lengths[seq_id]``);
        position ``p``'s slot is ``block_tables[seq_id][p // bs] * bs + p %
        bs`` (the model writes its keys and values there). Going through the
        positions in order:

        - a position past the table's last block (``p // bs ==
          len(table)``) takes a new block, ``allocator.allocate(1)``, appended
          to the table;
        - a position in a block whose reference count is above 1 (shared
          with another sequence or the prefix cache) is never written in
          place: **copy on write**. The sequence takes a new block,
          ``allocator.copy_block(old, new)`` (so its earlier slots keep their
          keys and values), drops its reference to the old one
          (``allocator.free([old])``) and its table points to the new block.
          The other holders keep the old block as it was.

        Then ``lengths[seq_id] += n``. ``append(seq_id, 0)`` returns ``[]``
        and changes nothing.

        Returns:
            The ``n`` slots, in position order, as a new list of ints.

        Raises:
            KeyError: the cache holds no sequence ``seq_id``.
            ValueError: ``n`` is negative.
            OutOfBlocks: the pool has fewer free blocks than the call takes
                (:meth:`blocks_needed`); nothing changes (no block taken or
                copied, the table and length as they were).
        """
        ### BEGIN SOLUTION
        table = self.block_tables[seq_id]
        if n < 0:
            raise ValueError(f"cannot append a negative number of positions ({n})")
        needed = self.blocks_needed(seq_id, n)
        if needed > self.allocator.num_free():
            raise OutOfBlocks(f"sequence {seq_id} needs {needed} more blocks for append({seq_id}, {n}); "
                              f"free: {self.allocator.num_free()}")
        start = self.lengths[seq_id]
        slots = []
        for position in range(start, start + n):
            index, offset = divmod(position, self.block_size)
            if index == len(table):
                table.append(self.allocator.allocate(1)[0])
            elif self.allocator.ref_counts[table[index]] > 1:
                old, new = table[index], self.allocator.allocate(1)[0]
                self.allocator.copy_block(old, new)
                self.allocator.free([old])
                table[index] = new
            slots.append(table[index] * self.block_size + offset)
        self.lengths[seq_id] = start + n
        return slots
        ### END SOLUTION

    def write(self, layer: int, slots: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Store ``keys`` and ``values`` ``[N, Hkv, hd]`` of layer ``layer`` at ``slots`` ``[N]`` (flat slot
        numbers, as :meth:`append` returns them)."""
        slots = torch.as_tensor(slots, dtype=torch.long, device=self.allocator.keys.device)
        blocks, offsets = slots // self.block_size, slots % self.block_size
        self.allocator.keys[layer, blocks, :, offsets] = keys.to(self.allocator.keys.dtype)
        self.allocator.values[layer, blocks, :, offsets] = values.to(self.allocator.values.dtype)

    def fork(self, parent: int, child: int) -> None:
        """Start sequence ``child`` as a copy of ``parent`` (parallel sampling, beam search): the same blocks, each
        with one more reference, and the same length. Nothing is copied until one of them writes a shared block."""
        if child in self.block_tables:
            raise ValueError(f"sequence {child} is in the cache already")
        table = self.block_tables[parent]
        self.allocator.share(table)
        self.block_tables[child] = list(table)
        self.lengths[child] = self.lengths[parent]

    def free_sequence(self, seq_id: int) -> None:
        """Forget sequence ``seq_id``: its table's references are dropped (a block no one else holds is free again)."""
        self.allocator.free(self.block_tables[seq_id])
        del self.block_tables[seq_id]
        del self.lengths[seq_id]

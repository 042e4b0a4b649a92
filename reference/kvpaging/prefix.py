"""Prefix caching: the full blocks of earlier prompts, found again by every later prompt that starts the same way.

A block's keys and values depend on its tokens and on every token before it, so a block is known by a key that
chains its tokens to its parent block's key (:func:`block_key`): two blocks with the same tokens after different
prefixes get different keys. Requests that share a system prompt then share its blocks (reference counts), and
prefill only what follows.
"""

from __future__ import annotations

import hashlib
import json

from .blocks import OutOfBlocks
from .cache import PagedKVCache


def block_key(parent: str | None, tokens: list[int]) -> str:
    """The key of a full block: a hash of its parent block's key (``None`` for a prompt's first block) and its
    ``block_size`` tokens."""
    return hashlib.sha256(json.dumps([parent, list(tokens)]).encode()).hexdigest()[:32]


class PrefixCache:
    """Full prompt blocks that outlive their requests, over one :class:`PagedKVCache`.

    ``table``: key -> block; the prefix cache holds one reference on each
    block in it, so a cached block stays allocated when no sequence uses it
    (its reference count is then 1: *unreferenced*, and it may be evicted).
    ``block_keys``: block -> key (the table read backwards). ``stamps[block]``
    and ``depths[block]``: when the block was last used (the ``clock``, which
    advances once per :meth:`admit` and per :meth:`commit`) and its index in
    its prompt. A block is never older than the blocks after it in a prompt,
    so evicting the oldest, and the deepest among equals, never leaves a
    cached block whose parent is gone. ``pending[seq_id]``: the keys of a sequence's full prompt
    blocks, from :meth:`admit` until :meth:`commit` registers them.
    """

    def __init__(self, cache: PagedKVCache) -> None:
        self.cache = cache
        self.allocator = cache.allocator
        self.table: dict[str, int] = {}
        self.block_keys: dict[int, str] = {}
        self.stamps: dict[int, int] = {}
        self.depths: dict[int, int] = {}
        self.pending: dict[int, list[str]] = {}
        self.clock = 0

    def admit(self, seq_id: int, prompt: list[int]) -> int:
        """Start sequence ``seq_id`` for ``prompt`` on the longest cached prefix; return how many positions it reuses.

        With ``bs`` the block size and ``F = len(prompt) // bs`` full blocks:

        1. keys: ``key_i = block_key(key_{i-1}, prompt[i*bs:(i+1)*bs])`` for
           ``i < F`` (``key_{-1} = None``), kept as ``pending[seq_id]``;
        2. reuse: blocks ``table[key_0], table[key_1], ...`` while the key is in
           the table, stopping at the first that is not, and at ``(len(prompt)
           - 1) // bs`` blocks (at least one prompt token is left to prefill:
           its logits give the first new token);
        3. the clock advances by one; each reused block gets one more
           reference (``allocator.share``) and that stamp;
        4. the rest of the prompt needs ``ceil(len(prompt) / bs)`` minus the
           reused blocks. While the pool has fewer free blocks than that,
           evict a cached block that only the prefix cache holds (reference
           count 1): the least recently used (oldest stamp) first, among
           equal stamps the deepest (a block before its parent, so what stays
           cached stays reachable). Evicting removes it from ``table``,
           ``block_keys``, ``stamps`` and ``depths`` and frees it
           (``allocator.free``);
        5. ``cache.add_sequence(seq_id, reused + allocator.allocate(rest),
           length=len(reused) * bs)``.

        Returns:
            ``len(reused) * bs``: the caller prefills ``prompt`` from there,
            then calls :meth:`commit`.

        Raises:
            ValueError: ``prompt`` is empty, or the cache holds sequence
                ``seq_id`` already.
            OutOfBlocks: the free blocks and those that could be evicted are
                fewer than the rest needs; nothing changes (no eviction, no
                reference, no stamp, the clock as it was).
        """
        ### BEGIN SOLUTION
        size = self.cache.block_size
        if not prompt:
            raise ValueError("a prompt needs at least one token")
        if seq_id in self.cache.block_tables:
            raise ValueError(f"sequence {seq_id} is in the cache already")
        keys, parent = [], None
        for i in range(len(prompt) // size):
            parent = block_key(parent, prompt[i * size:(i + 1) * size])
            keys.append(parent)
        reused = []
        for key in keys[:(len(prompt) - 1) // size]:
            if key not in self.table:
                break
            reused.append(self.table[key])
        rest = -(-len(prompt) // size) - len(reused)
        evictable = sorted((self.stamps[block], -self.depths[block], block) for block in self.table.values()
                           if self.allocator.ref_counts[block] == 1 and block not in reused)
        shortfall = max(0, rest - self.allocator.num_free())
        if shortfall > len(evictable):
            raise OutOfBlocks(f"the rest of a prompt of length {len(prompt)} needs {rest} more blocks; free: "
                              f"{self.allocator.num_free()}, evictable: {len(evictable)}")
        self.clock += 1
        self.allocator.share(reused)
        for block in reused:
            self.stamps[block] = self.clock
        for _stamp, _depth, block in evictable[:shortfall]:
            del self.table[self.block_keys.pop(block)]
            del self.stamps[block], self.depths[block]
            self.allocator.free([block])
        self.cache.add_sequence(seq_id, reused + self.allocator.allocate(rest), length=len(reused) * size)
        self.pending[seq_id] = keys
        return len(reused) * size
        ### END SOLUTION

    def commit(self, seq_id: int) -> None:
        """After ``seq_id``'s prompt is prefilled: cache its full prompt blocks that are not cached yet (one reference
        of the prefix cache each, and their depth), and give every cached block of the prompt the clock's next stamp
        (so a block is never older than the blocks after it in a prompt). A key or a block cached already keeps its
        entry."""
        keys = self.pending.pop(seq_id)
        table = self.cache.block_tables[seq_id]
        self.clock += 1
        for depth, key in enumerate(keys):
            block = table[depth]
            if key not in self.table and block not in self.block_keys:
                self.allocator.share([block])
                self.table[key], self.block_keys[block] = block, key
                self.depths[block] = depth
            if self.table.get(key) == block:
                self.stamps[block] = self.clock

    def release(self, seq_id: int) -> None:
        """The request is done: drop its sequence (its cached blocks stay, held by the prefix cache alone)."""
        self.pending.pop(seq_id, None)
        self.cache.free_sequence(seq_id)

"""Attention over keys held contiguously (:func:`dense_attention`) and through block tables (:func:`paged_attention`).

Shapes: ``N`` new tokens of every sequence of a call, laid end to end (no padding); ``S`` new tokens of one
sequence; ``T`` keys it attends over; ``H`` query heads; ``Hkv`` key/value heads (``H`` a multiple of it); ``G =
H // Hkv``; ``hd`` head size; ``NB`` blocks of ``bs`` slots.
"""

from __future__ import annotations

import math

import torch


def dense_attention(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                    visible: torch.Tensor) -> torch.Tensor:
    """Grouped-query attention of ``query`` ``[S, H, hd]`` over ``keys`` and ``values`` ``[T, Hkv, hd]``.

    ``visible`` ``[S, T]`` bool: True where query ``i`` may attend to key
    ``j`` (every row needs one). Query head ``h`` uses key/value head ``h //
    G``; scores ``q . k / sqrt(hd)``, softmax over the visible keys, times the
    values. Returns ``[S, H, hd]``.
    """
    groups = query.shape[1] // keys.shape[1]
    keys = keys.repeat_interleave(groups, dim=1)
    values = values.repeat_interleave(groups, dim=1)
    scores = torch.einsum("shd,thd->hst", query, keys) / math.sqrt(query.shape[-1])
    weights = scores.masked_fill(~visible, float("-inf")).softmax(dim=-1)
    return torch.einsum("hst,thd->shd", weights, values)


def paged_attention(query: torch.Tensor, key_pool: torch.Tensor, value_pool: torch.Tensor,
                    block_tables: list[list[int]], context_lens: list[int], query_lens: list[int]) -> torch.Tensor:
    """Attention of a batch of sequences of different lengths, each reading its keys and values through its blocks.

    Args:
        query: ``[N, H, hd]``, the new tokens of every sequence, sequence
            after sequence: sequence ``b``'s ``query_lens[b]`` rows, then the
            next sequence's (no padding).
        key_pool: ``[NB, Hkv, bs, hd]``, one layer's keys of the whole pool,
            the new tokens' keys already written.
        value_pool: same shape as ``key_pool``.
        block_tables: ``block_tables[b]``, sequence ``b``'s blocks in order.
        context_lens: ``context_lens[b]``, the positions sequence ``b`` holds,
            its new tokens included.
        query_lens: ``query_lens[b]``, its new tokens: positions
            ``context_lens[b] - query_lens[b] .. context_lens[b] - 1``.

    Returns:
        A new ``[N, H, hd]`` tensor: the row of a new token at position ``p``
        of sequence ``b`` attends over the keys and values of that sequence's
        positions ``0 .. p`` (causal: not the later new tokens of its chunk),
        position ``t`` read from slot ``t % bs`` of block
        ``block_tables[b][t // bs]`` (never a slot of another sequence, never
        a position ``>= context_lens[b]``); query head ``h`` uses key/value
        head ``h // G``; scores ``q . k / sqrt(hd)``, softmax, times the
        values (:func:`dense_attention` does this part, given the keys and
        values in position order). The pools and tables are not changed.

    Raises:
        ValueError: the three lists differ in length; ``sum(query_lens)`` is
            not ``N``; a ``query_lens[b]`` is negative or above
            ``context_lens[b]``; a table holds fewer than ``ceil(context_lens[b]
            / bs)`` blocks.
    """
    ### BEGIN SOLUTION
    if not len(block_tables) == len(context_lens) == len(query_lens):
        raise ValueError(f"block_tables, context_lens and query_lens must be as long, got {len(block_tables)}, "
                         f"{len(context_lens)} and {len(query_lens)}")
    if sum(query_lens) != query.shape[0]:
        raise ValueError(f"query_lens add up to {sum(query_lens)}, but query has {query.shape[0]} rows")
    block_size = key_pool.shape[2]
    for table, length, count in zip(block_tables, context_lens, query_lens):
        if not 0 <= count <= length:
            raise ValueError(f"a sequence of length {length} cannot have {count} new tokens (query_lens must be "
                             f"0 .. context_lens)")
        if len(table) * block_size < length:
            raise ValueError(f"a table of length {len(table)} with block_size={block_size} cannot hold length "
                             f"{length}")
    outputs, start = [], 0
    for table, length, count in zip(block_tables, context_lens, query_lens):
        positions = torch.arange(length, device=key_pool.device)
        blocks = torch.tensor(table, dtype=torch.long, device=key_pool.device)[positions // block_size]
        keys = key_pool[blocks, :, positions % block_size]  # [T, Hkv, hd]
        values = value_pool[blocks, :, positions % block_size]
        visible = positions[None, :] <= positions[length - count:, None]  # [S, T]
        outputs.append(dense_attention(query[start:start + count], keys, values, visible))
        start += count
    return torch.cat(outputs) if outputs else query.clone()
    ### END SOLUTION

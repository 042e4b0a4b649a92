"""Part 2's decoder (grouped-query attention, rotary positions), run over a paged cache, a dense one or none.

One forward call takes the new tokens of several sequences of different lengths laid end to end, with no
padding. Shapes: ``N`` new tokens of the call, ``D`` hidden size, ``H`` query heads, ``Hkv`` key/value heads,
``hd = D // H``, ``V`` vocabulary size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .attention import dense_attention, paged_attention
from .cache import PagedKVCache


def apply_rotary(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """``x`` ``[N, h, hd]`` rotated at ``positions`` ``[N]``: pair ``(i, i + hd/2)`` of each row turns by
    ``position * base ** (-2i / hd)`` (part 2's rotate-half layout), so ``q_m . k_n`` depends on ``m - n`` only
    and a key rotated once serves every later query."""
    half = x.shape[-1] // 2
    inverse = base ** (-torch.arange(half, dtype=torch.float64, device=x.device) * 2 / x.shape[-1])
    angles = positions.to(torch.float64)[:, None, None] * inverse  # [N, 1, hd/2]
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    first, second = x[..., :half], x[..., half:]
    return torch.cat([first * cos - second * sin, second * cos + first * sin], dim=-1)


@dataclass
class Batch:
    """What every layer needs to know about one forward call's ``N`` new tokens.

    ``positions`` ``[N]``: each token's position in its sequence. Without a
    cache, or with a dense one, ``visible`` ``[N, T]`` says which keys each
    token may attend to. With a :class:`PagedKVCache`: ``slots`` ``[N]``
    (where :meth:`PagedKVCache.append` put each token), and each sequence's
    block table, length (its new tokens included) and number of new tokens.
    """

    positions: torch.Tensor
    cache: object = None
    visible: torch.Tensor | None = None
    slots: torch.Tensor | None = None
    block_tables: list[list[int]] | None = None
    context_lens: list[int] | None = None
    query_lens: list[int] | None = None


class Attention(nn.Module):
    """Causal self-attention with ``num_kv_heads`` key/value heads shared by groups of query heads."""

    def __init__(self, hidden_dim: int, num_heads: int, num_kv_heads: int, layer_idx: int,
                 rope_base: float | None = 10000.0) -> None:
        super().__init__()
        if hidden_dim % num_heads or num_heads % num_kv_heads:
            raise ValueError(f"hidden_dim {hidden_dim} must be a multiple of num_heads {num_heads}, and num_heads "
                             f"a multiple of num_kv_heads {num_kv_heads}")
        self.num_heads, self.num_kv_heads = num_heads, num_kv_heads
        self.head_dim = hidden_dim // num_heads
        self.layer_idx = layer_idx
        self.rope_base = rope_base
        self.Wq = nn.Linear(hidden_dim, hidden_dim)
        self.Wk = nn.Linear(hidden_dim, num_kv_heads * self.head_dim)
        self.Wv = nn.Linear(hidden_dim, num_kv_heads * self.head_dim)
        self.Wo = nn.Linear(hidden_dim, hidden_dim)

    def forward(self, x: torch.Tensor, batch: Batch) -> torch.Tensor:
        """``x`` ``[N, D]`` -> ``[N, D]``: project, rotate at ``batch.positions``, store (with a cache), attend."""
        count = x.shape[0]
        q = self.Wq(x).view(count, self.num_heads, self.head_dim)
        k = self.Wk(x).view(count, self.num_kv_heads, self.head_dim)
        v = self.Wv(x).view(count, self.num_kv_heads, self.head_dim)
        if self.rope_base is not None:
            q = apply_rotary(q, batch.positions, self.rope_base)
            k = apply_rotary(k, batch.positions, self.rope_base)
        if batch.slots is not None:
            batch.cache.write(self.layer_idx, batch.slots, k, v)
            pool = batch.cache.allocator
            out = paged_attention(q, pool.keys[self.layer_idx], pool.values[self.layer_idx], batch.block_tables,
                                  batch.context_lens, batch.query_lens)
        else:
            if batch.cache is not None:
                k, v = batch.cache.update(self.layer_idx, k, v)
            out = dense_attention(q, k, v, batch.visible)
        return self.Wo(out.reshape(count, -1))


class MLP(nn.Module):
    """Position-wise feed-forward layer: ``D -> 4D -> D`` with GELU."""

    def __init__(self, hidden_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(hidden_dim, 4 * hidden_dim)
        self.proj = nn.Linear(4 * hidden_dim, hidden_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, D]`` -> ``[N, D]``."""
        return self.proj(F.gelu(self.fc(x), approximate="tanh"))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, hidden_dim: int, num_heads: int, num_kv_heads: int, layer_idx: int,
                 rope_base: float | None) -> None:
        super().__init__()
        self.norm1 = nn.RMSNorm(hidden_dim)
        self.attn = Attention(hidden_dim, num_heads, num_kv_heads, layer_idx, rope_base)
        self.norm2 = nn.RMSNorm(hidden_dim)
        self.mlp = MLP(hidden_dim)

    def forward(self, x: torch.Tensor, batch: Batch) -> torch.Tensor:
        """``[N, D]`` -> ``[N, D]``."""
        x = x + self.attn(self.norm1(x), batch)
        return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):
    """Decoder-only language model: token embedding, blocks, final norm, unembedding (positions only by rotation)."""

    def __init__(self, depth: int, hidden_dim: int, vocab_size: int, num_heads: int = 4,
                 num_kv_heads: int | None = None, rope_base: float | None = 10000.0) -> None:
        super().__init__()
        self.depth, self.hidden_dim, self.vocab_size = depth, hidden_dim, vocab_size
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads or num_heads
        self.head_dim = hidden_dim // num_heads
        self.emb = nn.Embedding(vocab_size, hidden_dim)
        self.layers = nn.ModuleList(Block(hidden_dim, num_heads, self.num_kv_heads, i, rope_base)
                                    for i in range(depth))
        self.norm = nn.RMSNorm(hidden_dim)
        self.unemb = nn.Linear(hidden_dim, vocab_size, bias=False)

    def forward(self, tokens: list[list[int]], cache=None, seq_ids: list[int] | None = None) -> torch.Tensor:
        """Logits ``[N, V]`` of the new tokens of every sequence, sequence after sequence.

        - ``cache=None``: each ``tokens[b]`` is a whole sequence (positions
          ``0 ..``), attending to its own earlier tokens only: the model
          without a cache, the oracle of every cache.
        - a :class:`PagedKVCache`: ``tokens[b]`` are the next tokens of
          sequence ``seq_ids[b]``. The model first calls ``cache.append(seq_ids[b],
          len(tokens[b]))`` for every sequence (so the caller makes sure the
          pool has room: :meth:`PagedKVCache.blocks_needed`), then each layer
          writes its keys and values into the slots ``append`` returned and
          attends through the block tables (:func:`paged_attention`).
        - a :class:`KVCache` or :class:`Int8KVCache`: one sequence
          (``tokens`` holds one list), stored from ``cache.current_length``
          on; the model advances ``current_length`` after its last layer.
        """
        counts = [len(seq) for seq in tokens]
        if not counts or min(counts) < 1:
            raise ValueError("every sequence of a forward call needs at least one new token")
        flat = torch.tensor([token for seq in tokens for token in seq], dtype=torch.long,
                            device=self.emb.weight.device)
        if isinstance(cache, PagedKVCache):
            batch = self.paged_batch(cache, seq_ids, counts)
        elif cache is not None:
            if len(tokens) != 1:
                raise ValueError(f"a dense cache holds one sequence, got {len(tokens)}")
            start = cache.current_length
            positions = torch.arange(start, start + counts[0], device=flat.device)
            visible = torch.arange(start + counts[0], device=flat.device)[None, :] <= positions[:, None]
            batch = Batch(positions, cache, visible)
        else:
            positions = torch.cat([torch.arange(n, device=flat.device) for n in counts])
            owner = torch.repeat_interleave(torch.arange(len(counts), device=flat.device),
                                            torch.tensor(counts, device=flat.device))
            visible = (owner[:, None] == owner[None, :]) & (positions[None, :] <= positions[:, None])
            batch = Batch(positions, None, visible)
        x = self.emb(flat)
        for layer in self.layers:
            x = layer(x, batch)
        if cache is not None and batch.slots is None:
            cache.advance(counts[0])
        return self.unemb(self.norm(x))

    @staticmethod
    def paged_batch(cache: PagedKVCache, seq_ids: list[int] | None, counts: list[int]) -> Batch:
        """Append every sequence's new positions to ``cache`` and describe them for the layers."""
        if seq_ids is None or len(seq_ids) != len(counts) or len(set(seq_ids)) != len(seq_ids):
            raise ValueError("a paged forward needs one distinct seq_id per sequence of tokens")
        starts = [cache.lengths[seq] for seq in seq_ids]
        slots = [slot for seq, n in zip(seq_ids, counts) for slot in cache.append(seq, n)]
        positions = torch.cat([torch.arange(start, start + n) for start, n in zip(starts, counts)])
        device = cache.allocator.keys.device
        return Batch(positions.to(device), cache, slots=torch.tensor(slots, dtype=torch.long, device=device),
                     block_tables=[cache.block_tables[seq] for seq in seq_ids],
                     context_lens=[cache.lengths[seq] for seq in seq_ids], query_lens=counts)

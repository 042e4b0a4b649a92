"""A decoder with grouped-query attention and rotary positions (the Llama family's layout, small).

Shapes: ``B`` batch, ``S`` new tokens in this call, ``T`` keys attended over,
``D`` hidden size, ``H`` query heads, ``Hkv`` key/value heads (``H`` a
multiple of it), ``hd = D // H`` head size, ``G = H // Hkv`` query heads per
key/value head.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .cache import KVCache, SinkWindowCache
from .rotary import apply_rotary


def visibility(query_index: torch.Tensor, key_index: torch.Tensor, sinks: int | None = None,
               window: int | None = None, key_valid: torch.Tensor | None = None) -> torch.Tensor:
    """Which keys each new token may attend to: ``[B or 1, 1, S, T]`` bool (True: visible).

    ``query_index`` ``[S]`` and ``key_index`` ``[T]`` are sequence indices. Key
    ``k`` is visible to query ``q`` when ``k <= q``; with a ``window``, also
    only when ``k < sinks`` or ``q - k < window``; with ``key_valid`` ``[B, T]``,
    only when it is True (padding is not). A query always sees its own key, so
    no row is empty (a padding token's output is then finite, and never used).
    """
    q, k = query_index[:, None], key_index[None, :]
    visible = k <= q
    if window is not None:
        visible = visible & ((k < (sinks or 0)) | (q - k < window))
    visible = visible[None, None]
    if key_valid is not None:
        visible = visible & key_valid[:, None, None, :]
    return visible | (k == q)[None, None]


class Attention(nn.Module):
    """Causal self-attention with ``num_kv_heads`` key/value heads shared by groups of query heads."""

    def __init__(self, hidden_dim: int, num_heads: int, num_kv_heads: int | None = None, layer_idx: int = 0,
                 rope_base: float | None = 10000.0, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        num_kv_heads = num_kv_heads or num_heads
        if hidden_dim % num_heads or num_heads % num_kv_heads:
            raise ValueError(f"hidden_dim {hidden_dim} must be a multiple of num_heads {num_heads}, and num_heads "
                             f"a multiple of num_kv_heads {num_kv_heads}")
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.groups = num_heads // num_kv_heads
        self.head_dim = hidden_dim // num_heads
        self.layer_idx = layer_idx
        self.rope_base = rope_base
        kv_dim = num_kv_heads * self.head_dim
        self.Wq = nn.Linear(hidden_dim, hidden_dim, device=device, dtype=dtype)
        self.Wk = nn.Linear(hidden_dim, kv_dim, device=device, dtype=dtype)
        self.Wv = nn.Linear(hidden_dim, kv_dim, device=device, dtype=dtype)
        self.Wo = nn.Linear(hidden_dim, hidden_dim, device=device, dtype=dtype)

    def split_heads(self, x: torch.Tensor, heads: int) -> torch.Tensor:
        """``[B, S, heads * hd]`` -> ``[B, heads, S, hd]``."""
        batch, seq, _ = x.shape
        return x.view(batch, seq, heads, self.head_dim).transpose(1, 2)

    def merge_heads(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, H, S, hd]`` -> ``[B, S, H * hd]``."""
        batch, _, seq, _ = x.shape
        return x.transpose(1, 2).reshape(batch, seq, self.num_heads * self.head_dim)

    def forward(self, x: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor,
                kv_cache: KVCache | SinkWindowCache | None = None) -> torch.Tensor:
        """Attend from the new tokens over the keys and values the cache holds for them.

        Args:
            x: ``[B, S, D]``, the new tokens only.
            positions: ``[B, S]`` each new token's position (for the rotation).
            mask: ``[B or 1, 1, S, T]`` bool, True where a new token may attend
                to a key (the model builds it with :func:`visibility`).
            kv_cache: when given, it stores this layer's new keys and values
                through ``kv_cache.update(self.layer_idx, k, v)`` and returns the
                ``T`` keys and values to attend over; when None, ``T = S`` and the
                new tokens attend over their own keys and values.

        The steps: ``q = Wq(x)`` as ``[B, H, S, hd]``, ``k = Wk(x)`` and ``v =
        Wv(x)`` as ``[B, Hkv, S, hd]``; when ``rope_base`` is not None, ``q``
        and ``k`` are rotated at ``positions`` with :func:`apply_rotary` (so the
        cache stores rotated keys, never rotated again); the cache receives
        ``k`` and ``v`` with their ``Hkv`` heads (never expanded to ``H``);
        after reading, query head ``h`` attends over key/value head ``h // G``;
        scores ``q k^T / sqrt(hd)``, masked where ``mask`` is False, softmax,
        times the values; heads merged; ``Wo``. This layer leaves
        ``kv_cache.current_length`` alone (the model advances it).

        Returns:
            ``[B, S, D]``.
        """
        raise NotImplementedError('TODO 1: Attention.forward - store the Hkv rotated key/value heads in the cache; expand them to the query heads only after reading')


class MLP(nn.Module):
    """Position-wise feed-forward layer: ``D -> 4D -> D`` with GELU."""

    def __init__(self, hidden_dim: int, device=None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.fc = nn.Linear(hidden_dim, 4 * hidden_dim, device=device, dtype=dtype)
        self.proj = nn.Linear(4 * hidden_dim, hidden_dim, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, S, D]`` -> ``[B, S, D]``."""
        return self.proj(F.gelu(self.fc(x), approximate="tanh"))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, hidden_dim: int, num_heads: int, num_kv_heads: int, layer_idx: int,
                 rope_base: float | None, device=None, dtype=torch.float32) -> None:
        super().__init__()
        self.norm1 = nn.RMSNorm(hidden_dim, device=device, dtype=dtype)
        self.attn = Attention(hidden_dim, num_heads, num_kv_heads, layer_idx, rope_base, device=device, dtype=dtype)
        self.norm2 = nn.RMSNorm(hidden_dim, device=device, dtype=dtype)
        self.mlp = MLP(hidden_dim, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor, kv_cache=None) -> torch.Tensor:
        """``[B, S, D]`` -> ``[B, S, D]``."""
        x = x + self.attn(self.norm1(x), positions, mask, kv_cache)
        return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):
    """Decoder-only language model: token embedding, blocks, final norm, unembedding.

    Positions enter only through the rotation of queries and keys (there is no table of learned positions), so a
    model built with ``rope_base=None`` sees no positions at all: only the causal mask orders its tokens.

    ``sinks`` and ``window`` (both or neither) set the attention rule: a token
    at index ``q`` sees key ``k <= q`` only when ``k < sinks`` or ``q - k <
    window``; a :class:`SinkWindowCache` with the same ``sinks`` and
    ``window`` keeps exactly what that rule can still see.
    """

    def __init__(self, depth: int, hidden_dim: int, vocab_size: int, num_heads: int = 4,
                 num_kv_heads: int | None = None, rope_base: float | None = 10000.0, sinks: int | None = None,
                 window: int | None = None, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if (sinks is None) != (window is None):
            raise ValueError("give both sinks and window, or neither")
        self.depth = depth
        self.hidden_dim = hidden_dim
        self.vocab_size = vocab_size
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads or num_heads
        self.sinks, self.window = sinks, window
        self.emb = nn.Embedding(vocab_size, hidden_dim, device=device, dtype=dtype)
        self.layers = nn.ModuleList(
            Block(hidden_dim, num_heads, self.num_kv_heads, i, rope_base, device=device, dtype=dtype)
            for i in range(depth)
        )
        self.norm = nn.RMSNorm(hidden_dim, device=device, dtype=dtype)
        self.unemb = nn.Linear(hidden_dim, vocab_size, bias=False, device=device, dtype=dtype)

    def forward(self, tokens: torch.Tensor, kv_cache: KVCache | SinkWindowCache | None = None,
                positions: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits for the new tokens.

        Args:
            tokens: ``[B, S]`` token ids, the new tokens only; with a cache holding
                ``L = kv_cache.current_length`` positions they are sequence indices
                ``L .. L + S - 1``.
            kv_cache: a :class:`KVCache`, or a :class:`SinkWindowCache` whose sinks
                and window match this model's rule; advanced by ``S`` once every
                layer has stored its keys and values.
            positions: ``[B, S]`` the tokens' positions for the rotation (default:
                their sequence indices, the same for every row).
            attention_mask: ``[B, L + S]``, 1 (or True) for a real token, 0 for
                padding, over every sequence index so far (not with a
                :class:`SinkWindowCache`).

        Returns:
            ``[B, S, vocab_size]`` logits.
        """
        batch, seq = tokens.shape
        past = 0 if kv_cache is None else kv_cache.current_length
        bounded = getattr(kv_cache, "window", None) is not None  # a SinkWindowCache keeps only what its rule sees
        if bounded and (kv_cache.sinks, kv_cache.window) != (self.sinks, self.window):
            raise ValueError(f"a SinkWindowCache of sinks={kv_cache.sinks}, window={kv_cache.window} needs a model "
                             f"with the same rule, not sinks={self.sinks}, window={self.window}")
        query_index = torch.arange(past, past + seq, device=tokens.device)
        if positions is None:
            positions = query_index.expand(batch, seq)
        key_index = query_index if kv_cache is None else kv_cache.key_index(seq)
        key_valid = None
        if attention_mask is not None:
            if tuple(attention_mask.shape) != (batch, past + seq):
                raise ValueError(f"attention_mask must be [B={batch}, L + S={past + seq}], got "
                                 f"{tuple(attention_mask.shape)}")
            key_valid = attention_mask.bool()[:, key_index]
        mask = visibility(query_index, key_index, self.sinks, self.window, key_valid)
        x = self.emb(tokens)
        for layer in self.layers:
            x = layer(x, positions, mask, kv_cache)
        if kv_cache is not None:
            kv_cache.advance(seq)
        return self.unemb(self.norm(x))

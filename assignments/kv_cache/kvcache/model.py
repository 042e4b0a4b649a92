"""A GPT-2-architecture decoder: learned positions, pre-LayerNorm blocks, GELU MLP.

Shapes: ``B`` batch, ``S`` new tokens in this call, ``L`` positions already in
the cache, ``D`` hidden size, ``H`` heads, ``hd = D // H`` head size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .cache import KVCache


class Attention(nn.Module):
    """Multi-head causal self-attention that can read and extend a :class:`KVCache`."""

    def __init__(
        self,
        hidden_dim: int,
        nheads: int,
        layer_idx: int = 0,
        causal: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if hidden_dim % nheads:
            raise ValueError(f"hidden_dim {hidden_dim} is not divisible by nheads {nheads}")
        self.nheads = nheads
        self.head_dim = hidden_dim // nheads
        self.layer_idx = layer_idx
        self.causal = causal
        self.Wq = nn.Linear(hidden_dim, hidden_dim, device=device, dtype=dtype)
        self.Wk = nn.Linear(hidden_dim, hidden_dim, device=device, dtype=dtype)
        self.Wv = nn.Linear(hidden_dim, hidden_dim, device=device, dtype=dtype)
        self.Wo = nn.Linear(hidden_dim, hidden_dim, device=device, dtype=dtype)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, S, D]`` -> ``[B, H, S, hd]``."""
        batch, seq, _ = x.shape
        return x.view(batch, seq, self.nheads, self.head_dim).transpose(1, 2)

    def merge_heads(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, H, S, hd]`` -> ``[B, S, D]``."""
        batch, _, seq, _ = x.shape
        return x.transpose(1, 2).reshape(batch, seq, self.nheads * self.head_dim)

    def forward(self, x: torch.Tensor, kv_cache: KVCache | None = None) -> torch.Tensor:
        """Attend from the new tokens to every position seen so far.

        Args:
            x: ``[B, S, D]``, the new tokens only.
            kv_cache: when given, it already holds ``L = kv_cache.current_length``
                earlier positions. This call stores the new tokens' keys and
                values in it (through ``kv_cache.update(self.layer_idx, ...)``)
                and attends over all ``L + S`` positions: the keys and values
                that ``update`` returns. New token ``i`` sits at absolute
                position ``L + i`` and, when ``causal``, sees positions
                ``0 .. L + i``; otherwise it sees all ``L + S``. This layer
                leaves ``kv_cache.current_length`` alone (the model advances
                it). When ``kv_cache`` is None, ``L = 0``.

        Returns:
            ``[B, S, D]``: the attention output through ``Wo``.
        """
        raise NotImplementedError('TODO 2: Attention.forward - store K/V through the cache and attend over every cached position with an offset causal mask')


class MLP(nn.Module):
    """Position-wise feed-forward layer: ``D -> 4D -> D`` with tanh-approximated GELU (as GPT-2)."""

    def __init__(self, hidden_dim: int, device=None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.fc = nn.Linear(hidden_dim, 4 * hidden_dim, device=device, dtype=dtype)
        self.proj = nn.Linear(4 * hidden_dim, hidden_dim, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, S, D]`` -> ``[B, S, D]``."""
        return self.proj(F.gelu(self.fc(x), approximate="tanh"))


class Block(nn.Module):
    """Pre-LayerNorm transformer block: ``x + attn(ln1(x))``, then ``x + mlp(ln2(x))``."""

    def __init__(self, hidden_dim: int, nheads: int, layer_idx: int, device=None, dtype=torch.float32) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(hidden_dim, device=device, dtype=dtype)
        self.attn = Attention(hidden_dim, nheads, layer_idx=layer_idx, device=device, dtype=dtype)
        self.ln2 = nn.LayerNorm(hidden_dim, device=device, dtype=dtype)
        self.mlp = MLP(hidden_dim, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor, kv_cache: KVCache | None = None) -> torch.Tensor:
        """``[B, S, D]`` -> ``[B, S, D]``."""
        x = x + self.attn(self.ln1(x), kv_cache=kv_cache)
        return x + self.mlp(self.ln2(x))


class Transformer(nn.Module):
    """Decoder-only language model with the GPT-2 layout.

    ``emb`` maps token ids to ``[B, S, D]``, ``pos_emb`` maps position ids to
    ``[S, D]``, ``layers`` is a list of :class:`Block` (each with ``.attn``),
    ``ln_f`` is the final LayerNorm and ``unemb`` maps ``[B, S, D]`` to logits
    ``[B, S, vocab_size]``.
    """

    def __init__(
        self,
        depth: int,
        hidden_dim: int,
        vocab_size: int,
        max_seq_len: int,
        nheads: int = 4,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.depth = depth
        self.hidden_dim = hidden_dim
        self.vocab_size = vocab_size
        self.max_seq_len = max_seq_len
        self.emb = nn.Embedding(vocab_size, hidden_dim, device=device, dtype=dtype)
        self.pos_emb = nn.Embedding(max_seq_len, hidden_dim, device=device, dtype=dtype)
        self.layers = nn.ModuleList(
            Block(hidden_dim, nheads, layer_idx=i, device=device, dtype=dtype) for i in range(depth)
        )
        self.ln_f = nn.LayerNorm(hidden_dim, device=device, dtype=dtype)
        self.unemb = nn.Linear(hidden_dim, vocab_size, bias=False, device=device, dtype=dtype)

    def forward(self, tokens: torch.Tensor, kv_cache: KVCache | None = None) -> torch.Tensor:
        """Logits for the new tokens.

        Args:
            tokens: ``[B, S]`` token ids, the new tokens only.
            kv_cache: when given, it holds ``L = kv_cache.current_length``
                earlier positions; the new tokens sit at positions
                ``L .. L + S - 1``. Every layer stores its keys and values in
                it, and once all layers have done so this call advances
                ``kv_cache.current_length`` by ``S`` (once per call, not per
                layer). When ``kv_cache`` is None, ``L = 0``.

        Returns:
            ``[B, S, vocab_size]`` logits.
        """
        raise NotImplementedError('TODO 3: Transformer.forward - position ids start at the cache length; advance current_length once, after the last layer')

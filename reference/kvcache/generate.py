"""Greedy text generation with a KV cache: one prefill, then one token per step."""

from __future__ import annotations

import torch

from .cache import KVCache
from .model import Transformer


class TransformerGenerator:
    """Greedy decoding for a :class:`Transformer`, with a fresh cache per call."""

    def __init__(self, model: Transformer, max_seq_len: int) -> None:
        if max_seq_len > model.max_seq_len:
            raise ValueError(
                f"max_seq_len {max_seq_len} is longer than the model's {model.max_seq_len} positions"
            )
        self.model = model
        self.max_seq_len = max_seq_len
        self.device = next(model.parameters()).device

    def new_cache(self, batch_size: int = 1) -> KVCache:
        """An empty cache sized for this model and ``max_seq_len`` positions."""
        attn = self.model.layers[0].attn
        return KVCache(
            num_layers=self.model.depth,
            batch_size=batch_size,
            num_heads=attn.nheads,
            head_dim=attn.head_dim,
            max_seq_len=self.max_seq_len,
            device=self.device,
            dtype=next(self.model.parameters()).dtype,
        )

    @torch.no_grad()
    def generate(self, prompt: list[int], max_new_tokens: int) -> list[int]:
        """Extend ``prompt`` by ``max_new_tokens`` greedily chosen token ids.

        The whole prompt goes through the model in one call (prefill); the
        first new token is the argmax of that call's last logits. Each later
        token comes from one call that feeds only the token chosen just
        before it. So ``N`` new tokens take one prefill and ``N - 1`` decode
        calls (the last new token is never fed), and ``max_new_tokens = 0``
        calls the model not at all. Every call of ``generate`` starts from a
        new, empty cache.

        Returns:
            ``prompt + new_tokens``, a new list of ``len(prompt) + max_new_tokens``
            Python ints; the caller's ``prompt`` list is left unchanged.

        Raises:
            ValueError: the prompt is empty, ``max_new_tokens`` is negative, or
                ``len(prompt) + max_new_tokens`` exceeds ``max_seq_len``.
        """
        ### BEGIN SOLUTION
        if not prompt:
            raise ValueError("prompt is empty: give at least one token id")
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        if len(prompt) + max_new_tokens > self.max_seq_len:
            raise ValueError(
                f"prompt ({len(prompt)}) + max_new_tokens ({max_new_tokens}) exceeds max_seq_len "
                f"({self.max_seq_len}); shorten one or make a generator with a longer max_seq_len"
            )
        out = list(prompt)
        if max_new_tokens == 0:
            return out
        cache = self.new_cache(batch_size=1)
        tokens = torch.tensor([prompt], dtype=torch.long, device=self.device)
        for step in range(max_new_tokens):
            logits = self.model(tokens, kv_cache=cache)
            next_token = int(logits[0, -1].argmax())
            out.append(next_token)
            if step + 1 < max_new_tokens:
                tokens = torch.tensor([[next_token]], dtype=torch.long, device=self.device)
        return out
        ### END SOLUTION

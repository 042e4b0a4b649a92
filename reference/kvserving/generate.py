"""Greedy generation: one prompt (:class:`Generator`) or a batch of prompts of different lengths
(:class:`BatchGenerator`), each with a fresh :class:`KVCache` per call."""

from __future__ import annotations

import torch

from .cache import KVCache
from .model import Transformer


def _check_request(prompts: list[list[int]], max_new_tokens: int, max_seq_len: int) -> None:
    """``ValueError`` for no prompt, an empty one, a negative count or a request longer than ``max_seq_len``."""
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token id")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    longest = max(len(p) for p in prompts)
    if longest + max_new_tokens > max_seq_len:
        raise ValueError(f"the longest prompt ({longest}) + max_new_tokens ({max_new_tokens}) exceeds max_seq_len "
                         f"({max_seq_len})")


class Generator:
    """Greedy decoding of one prompt: a prefill, then one token per call (part 1's generator)."""

    def __init__(self, model: Transformer, max_seq_len: int) -> None:
        self.model = model
        self.max_seq_len = max_seq_len
        self.device = next(model.parameters()).device

    def new_cache(self, batch_size: int = 1) -> KVCache:
        """An empty :class:`KVCache` sized for this model and ``max_seq_len`` positions."""
        attn = self.model.layers[0].attn
        return KVCache(self.model.depth, batch_size, attn.num_kv_heads, attn.head_dim, self.max_seq_len,
                       device=self.device, dtype=next(self.model.parameters()).dtype)

    @torch.no_grad()
    def generate(self, prompt: list[int], max_new_tokens: int) -> list[int]:
        """``prompt + new_tokens``: ``max_new_tokens`` greedily chosen ids, as a new list of Python ints.

        ``N`` new tokens take one prefill (the whole prompt) and ``N - 1``
        decode calls of one token (the last new token is never fed);
        ``max_new_tokens = 0`` returns a copy of the prompt without calling
        the model.

        Raises:
            ValueError: the prompt is empty, ``max_new_tokens`` is negative, or ``len(prompt) + max_new_tokens``
                exceeds ``max_seq_len``.
        """
        _check_request([prompt], max_new_tokens, self.max_seq_len)
        out = list(prompt)
        cache = self.new_cache()
        tokens = torch.tensor([prompt], dtype=torch.long, device=self.device)
        for _ in range(max_new_tokens):
            next_token = int(self.model(tokens, kv_cache=cache)[0, -1].argmax())
            out.append(next_token)
            tokens = torch.tensor([[next_token]], dtype=torch.long, device=self.device)
        return out


class BatchGenerator(Generator):
    """Greedy decoding of several prompts at once, left-padded into one batch."""

    def __init__(self, model: Transformer, max_seq_len: int, pad_id: int = 0) -> None:
        super().__init__(model, max_seq_len)
        self.pad_id = pad_id

    @torch.no_grad()
    def generate_batch(self, prompts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
        """Extend every prompt by ``max_new_tokens`` greedy tokens, all rows in one batch.

        With ``P`` the longest prompt's length and ``B = len(prompts)``:

        - row ``b`` of the batch is ``prompts[b]`` after ``P - len(prompts[b])``
          copies of ``pad_id`` (left padding, so every row's next token is in the
          last column);
        - one fresh cache of batch ``B`` (``new_cache``); one prefill call on the
          ``[B, P]`` batch, then one call feeding ``[B, 1]`` (the tokens chosen
          just before) per further new token: ``N`` new tokens take one prefill
          and ``N - 1`` decode calls (the last new tokens are never fed), and
          ``max_new_tokens = 0`` calls the model not at all;
        - every call passes ``attention_mask`` ``[B, L + S]``: 1 for each real
          token so far, 0 for padding;
        - and ``positions`` ``[B, S]``: a real token's position counts the real
          tokens before it in its row (each row's first real token is at 0),
          padding gets 0.

        Returns:
            For each prompt, in order, a new list ``prompt + its new tokens``
            (Python ints, no padding): equal, token for token, to
            ``generate(prompt, max_new_tokens)`` of that prompt alone. The
            callers' lists are left unchanged.

        Raises:
            ValueError: no prompts, an empty prompt, a negative
                ``max_new_tokens``, or ``P + max_new_tokens > max_seq_len``.
        """
        ### BEGIN SOLUTION
        _check_request(prompts, max_new_tokens, self.max_seq_len)
        outs = [list(p) for p in prompts]
        if max_new_tokens == 0:
            return outs
        longest = max(len(p) for p in prompts)
        rows = [[self.pad_id] * (longest - len(p)) + list(p) for p in prompts]
        real = torch.tensor([[0] * (longest - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        tokens = torch.tensor(rows, dtype=torch.long, device=self.device)
        positions = (real.cumsum(dim=1) - 1).clamp(min=0)
        cache = self.new_cache(len(prompts))
        for _ in range(max_new_tokens):
            logits = self.model(tokens, kv_cache=cache, positions=positions, attention_mask=real)
            next_tokens = logits[:, -1].argmax(dim=-1)
            for out, token in zip(outs, next_tokens.tolist()):
                out.append(int(token))
            tokens = next_tokens[:, None]
            positions = positions[:, -1:] + 1
            real = torch.cat([real, torch.ones_like(real[:, :1])], dim=1)
        return outs
        ### END SOLUTION

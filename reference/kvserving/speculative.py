"""Speculative decoding: a small draft model proposes tokens, the target checks them all in one call.

The output is exactly the target's greedy decoding; what changes is how many
target calls it takes. Both models keep a :class:`KVCache`; after each round
the target's cache is rolled back (:meth:`KVCache.crop`) to the tokens that
were accepted, so the rejected drafts' keys and values are overwritten next.
"""

from __future__ import annotations

import torch

from .generate import Generator, _check_request
from .model import Transformer


class SpeculativeDecoder:
    """Greedy decoding of ``target`` sped up by ``draft`` (same vocabulary), ``draft_tokens`` proposals a round."""

    def __init__(self, target: Transformer, draft: Transformer, max_seq_len: int, draft_tokens: int = 4) -> None:
        if target.vocab_size != draft.vocab_size:
            raise ValueError(f"the draft's vocabulary ({draft.vocab_size}) differs from the target's "
                             f"({target.vocab_size})")
        if draft_tokens < 1:
            raise ValueError(f"draft_tokens must be >= 1, got {draft_tokens}")
        self.target, self.draft = Generator(target, max_seq_len), Generator(draft, max_seq_len)
        self.max_seq_len = max_seq_len
        self.draft_tokens = draft_tokens
        self.device = self.target.device
        self.stats: dict[str, int] = {}

    def _ids(self, ids: list[int]) -> torch.Tensor:
        return torch.tensor([ids], dtype=torch.long, device=self.device)

    @torch.no_grad()
    def generate(self, prompt: list[int], max_new_tokens: int) -> list[int]:
        """``prompt`` plus ``max_new_tokens`` tokens, equal to the target's greedy decoding of it.

        - One fresh cache per model per call (``self.target.new_cache()``,
          ``self.draft.new_cache()``). The target runs on the whole prompt once
          (prefill); the argmax of its last logits is the first new token.
        - Then rounds, while tokens are missing, with ``k = min(draft_tokens,
          missing - 1)``: the draft proposes ``d_1 .. d_k`` greedily in ``k``
          calls (the first feeds the committed tokens it has not seen yet, each
          later one the proposal before); the target runs **once** on ``[last
          committed token, d_1 .. d_k]`` (``k + 1`` tokens): its argmax ``g_j``
          after each says what it would generate there. The proposals are accepted while ``d_{j+1} ==
          g_j``; then ``g_m`` (the target's own choice at the first mismatch,
          or after ``d_k`` when all ``m = k`` match) is committed too, so every
          round commits ``m + 1`` tokens and costs one target call.
        - After each round the target's cache is cropped to hold the committed
          tokens but the last (which the next round feeds), and the draft's to
          ``min(its length, that)``: rejected proposals leave nothing behind.

        ``self.stats`` then holds ``target_calls`` (the prefill included),
        ``draft_calls``, ``proposed`` and ``accepted`` (proposals, over all
        rounds), set anew by every call. ``max_new_tokens = 1`` takes the
        prefill only (``target_calls == 1``, no round); ``max_new_tokens = 0``
        calls neither model and leaves all four counts at 0.

        Returns:
            A new list ``prompt + new_tokens`` of Python ints.

        Raises:
            ValueError: an empty prompt, a negative ``max_new_tokens`` or
                ``len(prompt) + max_new_tokens > max_seq_len``.
        """
        ### BEGIN SOLUTION
        _check_request([prompt], max_new_tokens, self.max_seq_len)
        out = list(prompt)
        self.stats = {"target_calls": 0, "draft_calls": 0, "proposed": 0, "accepted": 0}
        if max_new_tokens == 0:
            return out
        target_cache, draft_cache = self.target.new_cache(), self.draft.new_cache()
        logits = self.target.model(self._ids(out), kv_cache=target_cache)
        self.stats["target_calls"] += 1
        out.append(int(logits[0, -1].argmax()))
        while len(out) - len(prompt) < max_new_tokens:
            k = min(self.draft_tokens, max_new_tokens - (len(out) - len(prompt)) - 1)
            proposals: list[int] = []
            unseen = out[draft_cache.current_length:]
            for _ in range(k):
                draft_logits = self.draft.model(self._ids(unseen), kv_cache=draft_cache)
                self.stats["draft_calls"] += 1
                proposals.append(int(draft_logits[0, -1].argmax()))
                unseen = proposals[-1:]
            logits = self.target.model(self._ids(out[-1:] + proposals), kv_cache=target_cache)
            self.stats["target_calls"] += 1
            choices = logits[0].argmax(dim=-1).tolist()
            accepted = 0
            while accepted < k and proposals[accepted] == choices[accepted]:
                accepted += 1
            self.stats["proposed"] += k
            self.stats["accepted"] += accepted
            out += proposals[:accepted] + [int(choices[accepted])]
            target_cache.crop(len(out) - 1)
            draft_cache.crop(min(draft_cache.current_length, len(out) - 1))
        return out
        ### END SOLUTION

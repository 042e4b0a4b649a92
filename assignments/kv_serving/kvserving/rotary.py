"""Rotary position embeddings (RoPE): positions enter attention as rotations of the queries and keys.

Head dimension ``hd`` is split in two halves; pair ``i`` is ``(x[..., i], x[...,
i + hd/2])`` (the "rotate half" layout of GPT-NeoX and of Llama in
``transformers``), rotated by the angle ``position * base ** (-2 i / hd)``.
Then ``q_m . k_n`` depends on the positions only through ``m - n``, which is
why a key can be rotated once, stored, and reused by every later query.
"""

from __future__ import annotations

import torch


def apply_rotary(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """``x`` rotated at ``positions``.

    Args:
        x: ``[B, h, S, hd]`` queries or keys (any number of heads ``h``);
            ``hd`` must be even.
        positions: ``[B, S]`` integer positions (each row its own: with left
            padding the rows differ).
        base: the rotary base.

    Returns:
        A new tensor of ``x``'s shape and dtype: for ``i < hd/2`` and angle
        ``a = positions[b, s] * base ** (-2 i / hd)``,
        ``out[..., i] = x[..., i] cos a - x[..., i + hd/2] sin a`` and
        ``out[..., i + hd/2] = x[..., i + hd/2] cos a + x[..., i] sin a``.
        Position 0 leaves ``x`` as it is. ``x`` itself is not changed.

    Raises:
        ValueError: ``hd`` is odd, or ``positions`` is not ``[B, S]`` for
            ``x``'s ``B`` and ``S``.
    """
    raise NotImplementedError('TODO 2: apply_rotary - rotate each pair (i, i + hd/2) of x by position * base ** (-2i / hd)')

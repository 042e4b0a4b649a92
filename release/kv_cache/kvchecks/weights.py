"""Deterministic weights, so every implementation is checked on the same model.

The checks never rely on the student's own initialisation code: after the
model is built, every parameter is overwritten from a seeded generator.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def fill_parameters(model: nn.Module, seed: int) -> None:
    """Overwrite every parameter of ``model`` from ``seed``, in name order.

    Linear weights ``[out, in]`` get ``N(0, 1/in)``, embeddings ``N(0, 1)``,
    LayerNorm scales ``1 + N(0, 0.1^2)`` and biases ``N(0, 0.1^2)``. The
    unembedding is scaled up so greedy choices are far from ties.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            noise = torch.randn(param.shape, generator=generator, dtype=torch.float64)
            if name.endswith("bias"):
                value = 0.1 * noise
            elif param.dim() == 1:
                value = 1.0 + 0.1 * noise
            elif "emb" in name and not name.startswith("unemb"):
                value = noise
            else:
                value = noise / math.sqrt(param.shape[1])
                if name.startswith("unemb"):
                    value = 4.0 * value
            param.copy_(value.to(param.dtype))


def seeded_tensor(shape: list[int], seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A standard-normal tensor of ``shape`` drawn from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype)


def seeded_tokens(batch: int, length: int, vocab_size: int, seed: int) -> torch.Tensor:
    """Token ids ``[batch, length]`` drawn uniformly from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab_size, (batch, length), generator=generator)

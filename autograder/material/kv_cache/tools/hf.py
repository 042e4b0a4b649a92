"""Copy a ``transformers`` GPT-2 model into a ``kvcache.Transformer``.

GPT-2's ``Conv1D`` stores its weight as ``[in, out]`` (it computes ``x @ W + b``);
``nn.Linear`` stores ``[out, in]``, so every Conv1D weight is transposed. The
fused ``c_attn`` (``[D, 3D]``) splits along its output axis into query, key and
value, in that order. ``unemb`` is tied to the token embedding, as in GPT-2.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from kvkit.errors import UsageError

_TANH_GELUS = {"gelu_new", "gelu_pytorch_tanh"}


def check_config(config) -> None:
    """Raise ``UsageError`` if ``config`` describes a model ``kvcache.Transformer`` cannot represent."""
    problems = []
    if config.activation_function not in _TANH_GELUS:
        problems.append(f"activation {config.activation_function!r} (the kit uses tanh GELU, 'gelu_new')")
    if config.n_inner not in (None, 4 * config.n_embd):
        problems.append(f"n_inner={config.n_inner} (the kit's MLP is 4 x n_embd)")
    if not config.scale_attn_weights or config.scale_attn_by_inverse_layer_idx:
        problems.append("attention scaling other than 1/sqrt(head_dim)")
    if config.add_cross_attention:
        problems.append("cross-attention")
    if problems:
        raise UsageError("this GPT-2 checkpoint does not fit kvcache.Transformer: " + "; ".join(problems))


def _copy_conv1d(linear: nn.Linear, weight: torch.Tensor, bias: torch.Tensor) -> None:
    """Conv1D ``weight [in, out]``, ``bias [out]`` -> ``linear`` (``weight [out, in]``)."""
    linear.weight.copy_(weight.t())
    linear.bias.copy_(bias)


def _copy_layernorm(ln: nn.LayerNorm, source: nn.LayerNorm) -> None:
    """Scale ``[D]``, shift ``[D]`` and epsilon."""
    ln.weight.copy_(source.weight)
    ln.bias.copy_(source.bias)
    ln.eps = source.eps


@torch.no_grad()
def from_gpt2(kvcache: ModuleType, hf_model, device: torch.device | str | None = None):
    """A ``kvcache.Transformer`` (in eval mode) with the weights of a ``GPT2LMHeadModel``.

    Args:
        kvcache: the ``kvcache`` module whose ``Transformer`` to build (see :mod:`kvkit.impl`).
        hf_model: a ``transformers.GPT2LMHeadModel``; it is not modified.
        device: where to build the copy (default: CPU).

    Returns:
        ``Transformer(depth=n_layer, hidden_dim=n_embd, vocab_size, max_seq_len=n_positions,
        nheads=n_head)`` whose logits equal ``hf_model``'s for the same token ids.
    """
    config = hf_model.config
    check_config(config)
    gpt = hf_model.transformer
    if not torch.equal(hf_model.lm_head.weight, gpt.wte.weight):
        raise UsageError("this GPT-2 checkpoint's lm_head is not tied to its token embedding; the kit ties them")
    dtype = gpt.wte.weight.dtype
    model = kvcache.Transformer(
        depth=config.n_layer,
        hidden_dim=config.n_embd,
        vocab_size=config.vocab_size,
        max_seq_len=config.n_positions,
        nheads=config.n_head,
        device=device,
        dtype=dtype,
    )
    model.emb.weight.copy_(gpt.wte.weight)
    model.pos_emb.weight.copy_(gpt.wpe.weight)
    d = config.n_embd
    for block, source in zip(model.layers, gpt.h):
        _copy_layernorm(block.ln1, source.ln_1)
        _copy_layernorm(block.ln2, source.ln_2)
        w, b = source.attn.c_attn.weight, source.attn.c_attn.bias  # [D, 3D], [3D]
        for i, linear in enumerate((block.attn.Wq, block.attn.Wk, block.attn.Wv)):
            _copy_conv1d(linear, w[:, i * d : (i + 1) * d], b[i * d : (i + 1) * d])
        _copy_conv1d(block.attn.Wo, source.attn.c_proj.weight, source.attn.c_proj.bias)
        _copy_conv1d(block.mlp.fc, source.mlp.c_fc.weight, source.mlp.c_fc.bias)
        _copy_conv1d(block.mlp.proj, source.mlp.c_proj.weight, source.mlp.c_proj.bias)
    _copy_layernorm(model.ln_f, gpt.ln_f)
    model.unemb.weight = model.emb.weight
    return model.eval()


def load_pretrained(path: Path | str):
    """``GPT2LMHeadModel`` from a local checkpoint folder (never downloads), in eval mode."""
    try:
        from transformers import GPT2LMHeadModel
        from transformers.utils import logging
    except ImportError as err:
        raise UsageError("transformers is not installed: pip install -e '.[hf]'") from err
    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise UsageError(f"{folder} is not a local GPT-2 checkpoint folder (no config.json): give a save_pretrained folder")
    model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    if model_type != "gpt2":
        raise UsageError(f"{folder} holds a {model_type!r} model, not GPT-2: give a GPT-2 save_pretrained folder")
    logging.disable_progress_bar()
    try:
        model = GPT2LMHeadModel.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot load a GPT-2 checkpoint from {folder}: {str(err).splitlines()[0]}") from err
    return model.eval()

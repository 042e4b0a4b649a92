"""What every part-2 probe shares: calling the student's code, building seeded models and caches.

A probe builds objects from the student's ``kvserving`` package (``kv``),
drives them through one scenario and returns what it observed. It never
judges. ``NotImplementedError`` always propagates, so an unfinished TODO
fails its checks by name.
"""

from __future__ import annotations

import torch

from kvchecks.failures import describe, student_files_of
from kvchecks.weights import fill_parameters


def describe_error(err: BaseException, kv) -> dict:
    """What a test needs to know about an exception the student's code raised (see ``failures.describe``)."""
    overflow = getattr(kv, "CacheOverflowError", None)
    return {
        **describe(err, student_files_of(kv)),
        "value_error": isinstance(err, ValueError),
        "index_error": isinstance(err, IndexError),
        "overflow": isinstance(overflow, type) and isinstance(err, overflow),
    }


def attempt(kv, fn, *args, **kwargs) -> dict:
    """``{"value": result}`` or ``{"error": description}``; ``NotImplementedError`` propagates."""
    try:
        return {"value": fn(*args, **kwargs)}
    except NotImplementedError:
        raise
    except Exception as err:  # the student's code may raise anything; the test judges it
        return {"error": describe_error(err, kv)}


def build_model(kv, config: dict, seed: int):
    """A ``Transformer`` of ``config`` (``depth``, ``hidden_dim``, ``vocab_size``, ``num_heads`` and optionally
    ``num_kv_heads``, ``rope_base``, ``sinks``, ``window``) with every parameter drawn from ``seed``."""
    model = kv.Transformer(config["depth"], config["hidden_dim"], config["vocab_size"],
                           num_heads=config["num_heads"], num_kv_heads=config.get("num_kv_heads"),
                           rope_base=config.get("rope_base", 10000.0), sinks=config.get("sinks"),
                           window=config.get("window"))
    fill_parameters(model, seed)
    return model.eval()


def head_dim(config: dict) -> int:
    return config["hidden_dim"] // config["num_heads"]


def kv_heads(config: dict) -> int:
    return config.get("num_kv_heads") or config["num_heads"]


def new_cache(kv, config: dict, batch: int, max_seq_len: int):
    """An empty ``KVCache`` for a model of ``config``."""
    return kv.KVCache(config["depth"], batch, kv_heads(config), head_dim(config), max_seq_len)


def greedy_margin(last_logits: list[torch.Tensor]) -> float:
    """The smallest gap between the best and the second-best logit over greedy steps (how far from a tie)."""
    margin = float("inf")
    for logits in last_logits:
        top = torch.topk(logits, 2).values
        margin = min(margin, float(top[0] - top[1]))
    return margin

"""What every part-2 probe shares: seeded models and caches (calling the student's code: :mod:`kvchecks.probing`).

A probe builds objects from the student's ``kvserving`` package (``kv``),
drives them through one scenario and returns what it observed. It never
judges.
"""

from __future__ import annotations

from kvchecks.weights import fill_parameters


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

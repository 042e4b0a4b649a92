"""Probes: the only code that runs a student's ``kvcache`` package.

A probe builds objects from the student's package, drives them through one
scenario and returns what it observed (tensors, numbers, error names). It
never judges: the tests compare observations with the reference's saved
observations, in a process the student's code cannot reach when grading.

``kv`` is the student's package (a module or namespace with ``KVCache``,
``CacheOverflowError``, ``Attention``, ``Transformer`` and
``TransformerGenerator``). ``NotImplementedError`` always propagates, so an
unfinished TODO fails its checks by name.
"""

from __future__ import annotations

import torch

from kvchecks.probing import attempt, count_rows, greedy_chat, greedy_margin
from kvchecks.replay import replay_updates
from kvchecks.standins import ListCache
from kvchecks.weights import fill_parameters, seeded_tensor, seeded_tokens


def cache_ops(kv, config: dict, ops: list[dict], fill: float = -7.0, buffers: str = "each") -> dict:
    """Run ``KVCache.update`` through a list of operations and watch the buffers (:func:`kvchecks.replay.
    replay_updates`, whose operations these are).

    ``config``: the ``KVCache`` constructor's arguments. Every buffer starts filled with ``fill``. An update's tag is
    its ``"tag"``, else its layer + 1. What came back is kept as it came back (the tensors themselves).
    """
    shape = (config["batch_size"], config["num_heads"], config["head_dim"])
    return replay_updates(kv, kv.KVCache(**config), ops, shape, fill,
                          tag_of=lambda op, i: op.get("tag", op["layer"] + 1), buffers=buffers)


def attention_steps(kv, config: dict, seed: int, batch: int, length: int, chunks: list[int] | None = None,
                    layer_idx: int = 0, tamper_after: int | None = None, causal: bool = True) -> dict:
    """Run one ``Attention`` layer (built with ``causal``) over ``length`` positions, without or with a cache.

    ``config``: ``hidden_dim`` and ``nheads``. The input ``x`` is
    ``[batch, length, hidden_dim]`` from ``seed + 1``. With ``chunks=None``
    the layer sees all of ``x`` in one uncached call; otherwise it is fed
    chunk after chunk with a :class:`ListCache` (whose stored entries are
    tampered with after chunk ``tamper_after``, to show whether later
    chunks really read the cache). Returns the output ``[batch, length,
    hidden_dim]``, the positions each of ``Wq``/``Wk``/``Wv`` saw per call,
    the cache's update calls and its ``current_length`` right after each call
    (the probe, standing in for the model, then advances it).
    """
    attn = kv.Attention(config["hidden_dim"], config["nheads"], layer_idx=layer_idx, causal=causal)
    fill_parameters(attn, seed)
    attn.eval()
    x = seeded_tensor([batch, length, config["hidden_dim"]], seed + 1)
    rows: dict[str, list[int]] = {"Wq": [], "Wk": [], "Wv": []}
    for name, log in rows.items():
        count_rows(getattr(attn, name), log)
    updates, lengths = [], []
    with torch.no_grad():
        if chunks is None:
            out = attn(x)
        else:
            cache = ListCache(layer_idx + 2)
            outs, pos = [], 0
            for i, size in enumerate(chunks):
                outs.append(attn(x[:, pos:pos + size], kv_cache=cache))
                lengths.append(cache.current_length)
                pos += size
                cache.current_length = pos
                if tamper_after == i:
                    cache.tamper(layer_idx)
            out = torch.cat(outs, dim=1) if all(isinstance(o, torch.Tensor) for o in outs) else outs
            updates = cache.calls
    return {"out": out, "rows": rows, "updates": updates, "lengths_after": lengths}


def _build_model(kv, config: dict, seed: int):
    model = kv.Transformer(config["depth"], config["hidden_dim"], config["vocab_size"], config["max_seq_len"],
                           nheads=config["nheads"])
    fill_parameters(model, seed)
    return model.eval()


def _new_cache(kv, config: dict, batch: int):
    return kv.KVCache(num_layers=config["depth"], batch_size=batch, num_heads=config["nheads"],
                      head_dim=config["hidden_dim"] // config["nheads"], max_seq_len=config["max_seq_len"])


def _stub_attention(model, seen: list[list]) -> None:
    """Replace every layer's attention with one that returns zeros and records the cache length it saw."""
    for index, layer in enumerate(model.layers):
        def forward(x, kv_cache=None, _index=index):
            seen.append([_index, None if kv_cache is None else kv_cache.current_length])
            return torch.zeros_like(x)
        layer.attn.forward = forward


def model_run(kv, config: dict, seed: int, batch: int = 1, length: int | None = None,
              tokens: list[list[int]] | None = None, chunks: list[int] | None = None,
              stub_attention: bool = False, change_kv_weights_after_first: bool = False) -> dict:
    """Run the whole ``Transformer`` over a token sequence, without or with a ``KVCache``.

    ``config``: ``depth``, ``hidden_dim``, ``nheads``, ``vocab_size``,
    ``max_seq_len``. Tokens ``[batch, length]`` come from ``seed + 1`` unless
    given. With ``chunks=None`` one uncached call sees them all; otherwise
    they are fed chunk after chunk on one cache. ``stub_attention`` swaps
    every attention layer for one that returns zeros (checks of
    ``Transformer.forward`` alone); ``change_kv_weights_after_first`` alters
    every ``Wk``/``Wv`` after the first chunk (a cache keeps the old keys; a
    recomputation would not). Returns logits ``[batch, length, vocab]``,
    ``current_length`` after each chunk, the position ids ``pos_emb`` saw
    per call, the positions each layer's ``Wk``/``Wv`` saw per call, and,
    with stubs, ``[layer, current_length]`` as each layer was called.
    """
    model = _build_model(kv, config, seed)
    if tokens is None:
        tokens_t = seeded_tokens(batch, length, config["vocab_size"], seed + 1)
    else:
        tokens_t = torch.tensor(tokens, dtype=torch.long)
    positions: list[list[int]] = []
    model.pos_emb.register_forward_hook(lambda _m, inputs, _out: positions.append(inputs[0].reshape(-1).tolist()))
    kv_rows: list[list[int]] = [[] for _ in model.layers]
    for layer, log in zip(model.layers, kv_rows):
        count_rows(layer.attn.Wk, log)
        count_rows(layer.attn.Wv, log)
    stub_seen: list[list] = []
    if stub_attention:
        _stub_attention(model, stub_seen)
    lengths = []
    with torch.no_grad():
        if chunks is None:
            logits = model(tokens_t)
        else:
            cache = _new_cache(kv, config, tokens_t.shape[0])
            parts, pos = [], 0
            for i, size in enumerate(chunks):
                parts.append(model(tokens_t[:, pos:pos + size], kv_cache=cache))
                pos += size
                lengths.append(cache.current_length)
                if change_kv_weights_after_first and i == 0:  # new weights of the same scale
                    for j, layer in enumerate(model.layers):
                        for proj in (layer.attn.Wk, layer.attn.Wv):
                            change = seeded_tensor(list(proj.weight.shape), seed + 1000 + j)
                            proj.weight.add_(change / proj.weight.shape[1] ** 0.5)
            logits = torch.cat(parts, dim=1) if all(isinstance(p, torch.Tensor) for p in parts) else parts
    return {"logits": logits, "lengths": lengths, "positions": positions, "kv_rows": kv_rows, "stub_seen": stub_seen}


def conversation(kv, config: dict, seed: int, turns: list[list[int]], reply_tokens: int) -> dict:
    """A chat on one warm cache: each turn feeds its new tokens in one call, then decodes a reply greedily.

    A turn's call carries the previous reply's last token (not yet in the
    cache) and the turn's user tokens; each further reply token takes one
    call of one token. Returns the whole ``history`` (the last reply token is
    never fed), the logits of every fed position ``[1, len(history) - 1,
    vocab]``, ``current_length`` after each turn and the greedy ``margin``
    (see :func:`greedy_margin`).
    """
    chat = greedy_chat(_build_model(kv, config, seed), _new_cache(kv, config, 1), turns, reply_tokens,
                       observe=lambda cache: cache.current_length)
    lengths = chat.pop("observed")[reply_tokens - 1::reply_tokens]  # after each turn
    return {**chat, "lengths": lengths}


def generate_scripted(kv, config: dict, prompt: list[int], max_new_tokens: int, generator_len: int | None = None,
                      repeats: int = 1, salt: int = 0) -> dict:
    """Run ``TransformerGenerator.generate`` on a model whose forward is scripted (TODO 4 on its own).

    The scripted forward predicts ``(7 * token + 3 * position + 1 + salt) %
    vocab`` after each token at each absolute position (one-hot logits
    ``[B, S, vocab]``), so a token fed at a wrong position or a token that
    does not come from the last logits shows; it advances the cache it is
    given by ``S`` as a finished ``Transformer.forward`` would, and records
    each call: the token ids, which cache object (numbered by first
    appearance, ``None`` for no cache), whether it is a ``KVCache`` and its
    length at the call. ``generate`` is called ``repeats`` times, each time on
    a new list holding ``prompt``; ``prompts_after`` is what those lists hold
    afterwards (the caller's object must be left alone) and ``same_object``
    whether each call returned that very list.
    """
    model = kv.Transformer(config["depth"], config["hidden_dim"], config["vocab_size"], config["max_seq_len"],
                           nheads=config["nheads"])
    vocab = config["vocab_size"]
    calls: list[dict] = []
    caches: list[object] = []

    def forward(tokens, kv_cache=None):
        if kv_cache is not None and not any(kv_cache is c for c in caches):
            caches.append(kv_cache)
        start = 0 if kv_cache is None else kv_cache.current_length
        calls.append({
            "tokens": tokens.tolist(),
            "cache": None if kv_cache is None else next(i for i, c in enumerate(caches) if c is kv_cache),
            "is_kvcache": isinstance(kv_cache, kv.KVCache),
            "length": start,
        })
        positions = torch.arange(start, start + tokens.shape[1])
        predicted = (7 * tokens + 3 * positions + 1 + salt) % vocab
        if kv_cache is not None:
            kv_cache.current_length = start + len(positions)
        return 10.0 * torch.nn.functional.one_hot(predicted, vocab).float()

    model.forward = forward
    generator = kv.TransformerGenerator(model, generator_len or config["max_seq_len"])
    given = [list(prompt) for _ in range(repeats)]
    results = [attempt(kv, generator.generate, mine, max_new_tokens) for mine in given]
    same = [result.get("value") is mine for result, mine in zip(results, given)]
    return {"results": results, "calls": calls, "prompts_after": given, "same_object": same}


def generate_real(kv, config: dict, seed: int, prompt: list[int], max_new_tokens: int) -> dict:
    """``TransformerGenerator.generate`` on a real seeded model: the token ids it returns."""
    generator = kv.TransformerGenerator(_build_model(kv, config, seed), config["max_seq_len"])
    return attempt(kv, generator.generate, list(prompt), max_new_tokens)


def greedy_uncached(kv, config: dict, seed: int, prompt: list[int], max_new_tokens: int) -> dict:
    """Greedy decoding without a cache: every step re-runs the whole sequence.

    Returns the token ids and the smallest gap between the best and the
    second-best logit over the steps (how far the choices are from a tie).
    """
    model = _build_model(kv, config, seed)
    tokens = list(prompt)
    steps = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            steps.append(model(torch.tensor([tokens], dtype=torch.long))[0, -1])
            tokens.append(int(steps[-1].argmax()))
    return {"tokens": tokens, "margin": greedy_margin(steps)}


PROBES = {
    fn.__name__: fn
    for fn in (cache_ops, attention_steps, model_run, conversation, generate_scripted, generate_real, greedy_uncached)
}
